"""What a model's output means: logits, or probabilities for a model that ends in softmax (a Keras model with
``activation="softmax"`` on its last layer). The one place that tells the two apart."""

from __future__ import annotations

import torch
import torch.nn.functional as F

TINY = 1e-12  # the least probability whose log is taken: log(0) would be -inf


def ends_in_softmax(model: torch.nn.Module) -> bool:
    """True when ``model`` outputs probabilities rather than logits (``outputs_probabilities``)."""
    return bool(getattr(model, "outputs_probabilities", False))


def log_probabilities(output: torch.Tensor, softmaxed: bool) -> torch.Tensor:
    """(N, classes) log-probabilities of an output: log_softmax of logits, or the log of probabilities."""
    return torch.log(output.clamp_min(TINY)) if softmaxed else F.log_softmax(output, dim=1)


def probabilities(output: torch.Tensor, softmaxed: bool) -> torch.Tensor:
    """(N, classes) probabilities of an output: softmax of logits, or the probabilities as they are."""
    return output if softmaxed else torch.softmax(output, dim=1)


def class_score(output: torch.Tensor, target: int, softmaxed: bool) -> torch.Tensor:
    """(N,) what attributions differentiate: the class's logit, or for a softmax model the log of its
    probability (the logit up to a term shared by all classes; a saturated probability hides nothing in it)."""
    return torch.log(output[:, target].clamp_min(TINY)) if softmaxed else output[:, target]
