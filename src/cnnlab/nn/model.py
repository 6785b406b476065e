"""``Sequential``: a list of Keras-vocabulary layers, a chain-shaped :class:`cnnlab.nn.graph.Model`."""

from __future__ import annotations

import torch

from cnnlab.errors import InputError, ShapeError
from cnnlab.nn import functional
from cnnlab.nn.graph import Model, _layer_spec, name_layers
from cnnlab.nn.layers import Activation, Conv2D, Dense, Input, Layer, MaxPooling2D, shape_text


def _shrink_cause(layer) -> str:
    """Why a layer makes the map smaller: its stride, and/or a VALID window larger than 1."""
    causes = []
    window = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if getattr(layer, "padding", None) == "valid" and window and max(window) > 1:
        causes.append(f"{shape_text(window)} VALID")
    strides = getattr(layer, "strides", (1, 1))
    if max(strides) > 1:
        causes.append(f"strides={strides[0] if strides[0] == strides[1] else strides}")
    return f" ({', '.join(causes)})" if causes else ""


def _explain(error: ShapeError, layers, index: int, input_shape) -> str:
    """Add where the input came from and which layers shrank the map."""
    previous = layers[index - 1] if index else None
    came = f" (the output of '{previous.name}')" if previous else " (the model input)"
    steps = []
    shape = input_shape
    for layer in layers[:index]:
        out = layer.output_shape
        if len(shape) == 3 and len(out) == 3 and out[:2] != shape[:2]:
            steps.append(f"'{layer.name}' {shape_text(shape[:2])} -> {shape_text(out[:2])}{_shrink_cause(layer)}")
        shape = out
    msg = f"{str(error).rstrip('.')}{came}."  # "... receives 1,024 (the output of 'flatten')."
    if steps:
        msg += " The map shrinks at: " + "; ".join(steps) + "."
    layer = layers[index]
    if isinstance(layer, Dense) and layer.input_dim is not None:
        msg += f" Use strides=1 where it shrinks too much, or Dense input_dim={shape[0]:,}."
    return msg


def _relu_before(layer) -> bool:
    """True for a Conv2D with activation="relu" and for a ReLU (or Activation("relu")) layer."""
    return getattr(layer, "activation", None) == "relu" and isinstance(layer, (Conv2D, Activation))


def _hooked(layer) -> bool:
    return bool(layer._forward_hooks or layer._forward_pre_hooks)


class Sequential(Model):
    """``Sequential([Input((28, 28, 1)), Conv2D(32, 3, padding="same", activation="relu"), ...], name="m")``:
    a chain-shaped graph of the same engine as :class:`Model` (each layer called on the one before).

    Takes NCHW float images (channels_last memory is fastest) and returns what the last
    layer returns (logits for the zoo models). ``input_shape`` may be given instead of
    an ``Input``. Unnamed layers are named by kind and position: conv1, pool1, dense1, ...
    """

    def __init__(self, layers, name: str = "sequential", input_shape=None):
        layers = list(layers)
        if layers and isinstance(layers[0], Input):
            if input_shape is not None and tuple(input_shape) != layers[0].shape:
                raise InputError(f"Two input shapes given: Input{layers[0].shape} and input_shape={input_shape}.")
            input_shape = layers.pop(0).shape
        if input_shape is None:
            raise InputError("Sequential needs an input shape: start with Input((H, W, C)) or pass input_shape=.")
        if not layers:
            raise InputError("Sequential needs at least one layer after the Input.")
        for i, layer in enumerate(layers):
            if not isinstance(layer, (Layer, Model)):
                raise InputError(f"Item {i + 1} of the model is a {type(layer).__name__}, not a cnnlab layer.")
        name_layers(layers)
        x = inputs = Input(input_shape)  # one check: three whole numbers, each at least 1
        for i, layer in enumerate(layers):
            try:
                x = layer(x)
            except ShapeError as e:
                raise ShapeError(_explain(e, layers, i, inputs.shape)) from None
        super().__init__(inputs, x, name)

    def forward(self, x):
        if not self.training:
            for layer in self.body:
                x = layer(x)
            return x
        return self._train_forward(x)

    def _train_forward(self, x):
        """The same function, computed faster for training: a ReLU followed by a MaxPooling2D (a Conv2D with
        activation="relu", or a ReLU layer) is applied after the pooling, on a 4x smaller tensor. ReLU is
        monotone, so the max of the ReLUs is the ReLU of the max, and the gradient reaches the same cell (or
        is zero) either way: the outputs and gradients are identical, and one step of seed-fashion is about
        7% shorter. Layers with hooks attached (inspection) are always run one by one, so hooks see each
        layer's real output."""
        layers = self.body
        i = 0
        while i < len(layers):
            layer = layers[i]
            pool = layers[i + 1] if i + 1 < len(layers) else None
            if not (_relu_before(layer) and isinstance(pool, MaxPooling2D) and not (_hooked(layer) or _hooked(pool))):
                x = layer(x)
                i += 1
                continue
            if isinstance(layer, Conv2D):
                x = layer.convolve(x)
            x = torch.relu_(functional.max_pool2d_nchw(x, pool.pool_size, pool.strides, pool.padding))
            i += 2
        return x

    kind = "Sequential"

    def spec(self) -> dict:
        layers = [_layer_spec(lay) for lay in self.body]
        return {"name": self.name, "input_shape": list(self.input_shape), "layers": layers}


def appended(model: Model, layer) -> Model:
    """``model`` with ``layer`` called on its one output, its layers and weights shared (a Sequential stays one)."""
    if isinstance(model, Sequential):
        return Sequential([*model.layers, layer], name=model.name, input_shape=model.input_shape)
    return Model(model._inputs[0], layer(model._outputs[0]), name=model.name)
