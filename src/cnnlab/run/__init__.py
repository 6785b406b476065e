"""What a finished run is: a trained model loaded from a run directory or a Keras file (:class:`Run`), its
inference, evaluation, prediction of image files, export, and the files of a run directory (``files``)."""

from cnnlab.run.evaluate import Evaluation, evaluate, evaluate_run
from cnnlab.run.run import Run, load

__all__ = ["Evaluation", "Run", "evaluate", "evaluate_run", "load"]
