"""Training: the plan of a run (its options resolved once), the fit loop, checkpoints, recipes, augmentation
and several processes. ``cnnlab.train(...)`` is :func:`cnnlab.training.loop.train`."""

from cnnlab.training.loop import train
from cnnlab.training.plan import Plan, TrainConfig

__all__ = ["Plan", "TrainConfig", "train"]
