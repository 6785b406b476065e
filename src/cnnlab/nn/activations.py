"""Activation layers, as Keras has them: ``Activation(name)``, ``ReLU(max_value, negative_slope, threshold)``,
``LeakyReLU``, ``ELU``, ``PReLU`` and ``Softmax``. The activation functions by name are
:data:`cnnlab.nn.base.ACTIVATIONS` (Keras 3's definitions)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import InputError
from cnnlab.nn.base import ACTIVATIONS, Layer, check_activation


def _number(value, what: str, minimum=None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what}={value!r}. Expected a finite number.")
    if minimum is not None and value < minimum:
        raise InputError(f"{what}={value!r}. Expected a number >= {minimum}.")
    return float(value)


class Activation(Layer):
    kind = "Activation"

    def __init__(self, activation: str, name: str | None = None):
        super().__init__(name)
        self.activation = check_activation(activation)

    def forward(self, x):
        fn = ACTIVATIONS[self.activation]
        return fn(x) if fn else x

    def config(self):
        return {"activation": self.activation}


class ReLU(Activation):
    """``ReLU(max_value=None, negative_slope=0, threshold=0)``, as Keras computes it: x above the threshold
    (clipped to ``max_value``), 0 below, minus ``negative_slope`` times how far below the threshold it is. With
    no arguments it is the plain ReLU (and ``activation == "relu"``, which the training fast path uses)."""

    kind = "ReLU"

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, name: str | None = None):
        self.max_value = None if max_value is None else _number(max_value, "ReLU max_value", 0)
        self.negative_slope = _number(negative_slope, "ReLU negative_slope", 0)
        self.threshold = _number(threshold, "ReLU threshold")
        plain = self.max_value is None and not self.negative_slope and not self.threshold
        super().__init__("relu" if plain else "linear", name)
        self.activation = "relu" if plain else "relu_variant"  # not "relu": no fast path may take it for one

    def forward(self, x):
        if self.activation == "relu":
            return F.relu(x)
        if self.max_value == 6 and not self.negative_slope and not self.threshold:
            return F.relu6(x)
        y = torch.where(x > self.threshold, x, torch.zeros_like(x))
        if self.max_value is not None:
            y = y.clamp(0, self.max_value)
        if self.negative_slope:
            y = y - self.negative_slope * F.relu(self.threshold - x)
        return y

    def config(self):
        return {k: v for k in ("max_value", "negative_slope", "threshold") if (v := getattr(self, k))}


class LeakyReLU(Layer):
    """``LeakyReLU(negative_slope=0.3)``: x, or ``negative_slope`` times x below 0 (Keras 2 called it alpha)."""

    kind = "LeakyReLU"

    def __init__(self, negative_slope=0.3, alpha=None, name: str | None = None):
        super().__init__(name)
        self.negative_slope = _number(negative_slope if alpha is None else alpha, "LeakyReLU negative_slope", 0)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def config(self):
        return {"negative_slope": self.negative_slope}


class ELU(Layer):
    """``ELU(alpha=1.0)``: x above 0, alpha·(exp(x) - 1) below."""

    kind = "ELU"

    def __init__(self, alpha=1.0, name: str | None = None):
        super().__init__(name)
        self.alpha = _number(alpha, "ELU alpha")

    def forward(self, x):
        return F.elu(x, self.alpha)

    def config(self):
        return {"alpha": self.alpha}


class PReLU(Layer):
    """``PReLU(shared_axes=None)``: x above 0, a learned alpha times x below; one alpha a cell of the input (of
    shape (H, W, C), as Keras keeps it) except along the ``shared_axes`` (1 and 2: one alpha a channel)."""

    kind = "PReLU"
    keras_variables = (("alpha", "vector", "alpha"),)

    def __init__(self, shared_axes=None, alpha_initializer: str = "zeros", name: str | None = None):
        super().__init__(name)
        axes = [shared_axes] if isinstance(shared_axes, int) else list(shared_axes or [])
        if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 1 for a in axes):
            raise InputError(f"PReLU shared_axes={shared_axes!r}. Expected axes >= 1, e.g. shared_axes=[1, 2].")
        self.shared_axes = tuple(sorted(set(axes)))

    def infer(self, shape):
        if any(a > len(shape) for a in self.shared_axes):
            raise InputError(f"PReLU '{self.name}' shared_axes={list(self.shared_axes)} for a {len(shape)}-D input.")
        return shape

    def create(self, shape):
        own = tuple(1 if i + 1 in self.shared_axes else n for i, n in enumerate(shape))
        self.alpha = nn.Parameter(torch.zeros(own))

    def forward(self, x):
        alpha = self.alpha.permute(2, 0, 1) if self.alpha.dim() == 3 else self.alpha  # (C, H, W) for NCHW
        return F.relu(x) - alpha * F.relu(-x)

    def config(self):
        return {"shared_axes": list(self.shared_axes)} if self.shared_axes else {}

    def formula(self):
        n = self.alpha.numel()
        return f"{'·'.join(str(d) for d in self.alpha.shape)} = {n:,}"


class Softmax(Activation):
    kind = "Softmax"
    keras_fixed = {"axis": (-1, 3, [-1], [3])}

    def __init__(self, name: str | None = None):
        super().__init__("softmax", name)

    def config(self):
        return {}


class TwoClasses(Layer):
    """A one-unit binary head as two classes (the cats-and-dogs tutorials' ``Dense(1)`` logit, or its sigmoid):
    a logit z becomes the logits (-z/2, z/2), whose softmax is (1 - sigmoid(z), sigmoid(z)), and either class's
    score has a gradient (explanations of the first class are those of the second, negated); a probability p becomes
    (1 - p, p). cnnlab puts it after a Keras model's one-unit output, so that predict, eval and every
    explanation see two classes; the Keras file cnnlab writes keeps Keras's one unit."""

    kind = "TwoClasses"

    def __init__(self, of: str = "logit", name: str | None = None):
        super().__init__(name)
        if of not in ("logit", "probability"):
            raise InputError(f"TwoClasses of={of!r}. Expected 'logit' or 'probability'.")
        self.of = of

    @property
    def outputs_probabilities(self) -> bool:
        return self.of == "probability"

    def infer(self, shape):
        if tuple(shape) != (1,):
            raise InputError(f"TwoClasses '{self.name}' takes one unit; it receives {shape}.")
        return (2,)

    def forward(self, x):
        return torch.cat([1 - x, x] if self.of == "probability" else [-x / 2, x / 2], dim=1)

    def config(self):
        return {"of": self.of}


def ends_in_relu(module) -> bool:
    """A layer whose output is a ReLU's: activation="relu"/"relu6" (Conv2D, Dense, Activation, plain ReLU) or
    torch's ReLU/ReLU6: where a 0 output means the unit did not fire."""
    return getattr(module, "activation", None) in ("relu", "relu6") or isinstance(
        module, torch.nn.ReLU | torch.nn.ReLU6
    )
