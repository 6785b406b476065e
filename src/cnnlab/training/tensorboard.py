"""``cnnlab train --tensorboard DIR``: the run as TensorBoard event files, for people who already look there.

PyTorch's ``SummaryWriter`` writes, after every epoch: the epoch's scalars (loss, accuracy, the held-out
split's loss and accuracy, the learning rate), the training loss and accuracy at every steps.jsonl point, a
histogram of every parameter, the training statistics of each watched step (``--stats on``: every layer's
activation histogram, the zeros after each ReLU, gradient norms and update ratios), the first held-out
images with their true and predicted classes, and the confusion matrix of the held-out split as an image
(drawn by ``cnnlab.viz``, found by name: training draws nothing itself). Only the training process of
rank 0 writes.
"""

from __future__ import annotations

import importlib
import io
from pathlib import Path

import numpy as np
import torch

from cnnlab.compute.outputs import probabilities
from cnnlab.compute.tensors import rows_of
from cnnlab.errors import InputError
from cnnlab.run.inference import outputs_of
from cnnlab.training.stats import bucket_edges

IMAGES = 8  # held-out images shown with their predictions


def _parameters(model):
    """(layer/parameter, tensor) by the layers' own names (conv1/weight) for a cnnlab model, else torch's."""
    from cnnlab.nn.graph import Model

    if not isinstance(model, Model):
        yield from model.named_parameters()
        return
    for name, layer in model.walk():
        for own, p in layer.named_parameters(recurse=False):
            yield f"{name}/{own}", p


class TensorBoardLog:
    def __init__(self, folder):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer needs the tensorboard package for its protobufs
            raise InputError("--tensorboard needs the tensorboard package: pip install tensorboard.") from None
        self.folder = Path(folder)
        self.writer = SummaryWriter(str(self.folder))
        self.steps_written = 0
        self.stats_written = 0

    def epoch(self, s, row: dict, model) -> None:
        """One epoch's events: ``row`` (metrics.jsonl's), the steps since the last call, the model's weights
        and its predictions on the held-out split (``model``: the one evaluated, the EMA's with --ema)."""
        w, epoch = self.writer, row["epoch"]
        held = "val" if "val_loss" in row else "test"
        for key in ("loss", "accuracy", f"{held}_loss", f"{held}_accuracy", "lr"):
            w.add_scalar(f"epoch/{key}", row[key], epoch)
        for point in s.steps[self.steps_written :]:
            w.add_scalar("steps/loss", point["loss"], point["step"])
            w.add_scalar("steps/accuracy", point["accuracy"], point["step"])
        self.steps_written = len(s.steps)
        for name, p in _parameters(model):
            w.add_histogram(f"weights/{name}", p.detach().float().cpu(), epoch)
        for line in s.stats[self.stats_written :]:
            if line.get("kind") == "step":
                self._health(line)
        self.stats_written = len(s.stats)
        _, x, y = s.held
        out = outputs_of(model, x, s.device, s.precision)
        predicted = probabilities(out, s.ends_in_softmax).argmax(1).cpu().numpy()
        truth = y.cpu().numpy()
        classes = s.ds.classes
        shown = np.asarray(rows_of(x, torch.arange(min(IMAGES, len(truth)))).cpu())  # uint8 NHWC
        w.add_images(f"{held}/images", shown, epoch, dataformats="NHWC")
        lines = [f"{i}: {classes[truth[i]]} -> {classes[predicted[i]]}" for i in range(len(shown))]
        w.add_text(f"{held}/predictions", "  \n".join(lines), epoch)
        k = len(classes)
        matrix = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
        fig = importlib.import_module("cnnlab.viz.train").confusion(matrix, classes, None, f"{held}, epoch {epoch}")
        png = importlib.import_module("cnnlab.viz.style").png(fig)
        from PIL import Image

        w.add_image(
            f"{held}/confusion", np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), epoch, dataformats="HWC"
        )
        w.flush()

    def _health(self, line: dict) -> None:
        """One watched step of stats.jsonl (:mod:`cnnlab.training.stats`): each layer's activation histogram as
        it was recorded (its own bins, its count, sum and sum of squares from the mean and std), the zeros after
        each ReLU, and each weight's gradient norm and update ratio as scalars."""
        w, step = self.writer, line["step"]
        for name, a in line.get("layers", {}).items():
            counts = a["hist"]
            n = float(sum(counts))
            w.add_histogram_raw(
                f"activations/{name}",
                min=a["min"],
                max=a["max"],
                num=n,
                sum=a["mean"] * n,
                sum_squares=(a["std"] ** 2 + a["mean"] ** 2) * n,
                bucket_limits=bucket_edges(a)[1:],
                bucket_counts=counts,
                global_step=step,
            )
            if "zeros" in a:
                w.add_scalar(f"zeros/{name}", a["zeros"], step)
        for name, p in line.get("weights", {}).items():
            w.add_scalar(f"grad_norm/{name}", p["grad_norm"], step)
            if "update_ratio" in p:
                w.add_scalar(f"update_ratio/{name}", p["update_ratio"], step)

    def close(self) -> None:
        self.writer.close()
