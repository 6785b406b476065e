"""A model's train/eval mode, changed for a block and restored after it (a model can be shared)."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def modes_restored(model: torch.nn.Module):
    """Whatever the block does to train/eval mode, every submodule's mode is as it was afterwards, also after
    an error (a model can be shared: by the server's requests, or by a user who is still training it)."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def evaluating(model: torch.nn.Module):
    """Eval mode for the block, and every submodule's mode as it was afterwards (:func:`modes_restored`)."""
    with modes_restored(model):
        if model.training:  # eval() walks every module: skip it when already in eval mode (a server calls this a lot)
            model.eval()
        yield model
