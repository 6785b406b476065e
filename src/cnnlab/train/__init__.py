"""Training, run directories, evaluation, prediction.

``cnnlab.train`` is both this package and a function: ``cnnlab.train(data="mnist", ...)``
calls :func:`cnnlab.train.loop.train` (the module is made callable below), so the
call works whether or not the package was imported first.
"""

import sys
import types

from cnnlab.train.config import TrainConfig
from cnnlab.train.evaluate import Evaluation, evaluate, evaluate_run
from cnnlab.train.loop import train
from cnnlab.train.run import Run

__all__ = ["Evaluation", "Run", "TrainConfig", "evaluate", "evaluate_run", "train"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
