"""PyTorch side of cnnlab: tf.nn-style ops, Keras-vocabulary layers, the functional API (Input, Model) and
Sequential, specs, the zoo, summaries."""

from cnnlab.nn import functional, zoo
from cnnlab.nn.graph import Model
from cnnlab.nn.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ReLU,
    Reshape,
    Softmax,
)
from cnnlab.nn.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from cnnlab.nn.model import Sequential
from cnnlab.nn.resolve import resolve
from cnnlab.nn.spec import from_spec, read_spec
from cnnlab.nn.summary import summarize

__all__ = [
    "Activation",
    "Add",
    "Average",
    "Concatenate",
    "Maximum",
    "Minimum",
    "Model",
    "Multiply",
    "Subtract",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "Input",
    "MaxPooling2D",
    "ReLU",
    "Reshape",
    "Sequential",
    "Softmax",
    "from_spec",
    "functional",
    "read_spec",
    "resolve",
    "summarize",
    "zoo",
]
