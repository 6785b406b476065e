"""A small ResNet in cnnlab's functional API (Keras's vocabulary): residual blocks with projection shortcuts,
trained on Fashion-MNIST, summarized with Keras's "Connected to" column, exported to Keras and ONNX.

    python examples/resnet_functional.py runs/resnet
"""

import sys

import cnnlab
from cnnlab.nn import Add, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D, Input, Model, ReLU


def block(x, filters: int, strides: int = 1, name: str = "block"):
    """conv-bn-relu, conv-bn, plus the input (through a 1x1 projection where the shape changes), relu."""
    y = Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = ReLU(name=f"{name}_relu1")(BatchNormalization(name=f"{name}_bn1")(y))
    y = Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = BatchNormalization(name=f"{name}_bn2")(y)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(x)
        shortcut = BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return ReLU(name=f"{name}_out")(Add(name=f"{name}_add")([y, shortcut]))


def resnet(input_shape=(28, 28, 1), classes: int = 10, width: int = 8) -> Model:
    inputs = Input(input_shape)
    x = Conv2D(width, 3, padding="same", activation="relu", name="stem")(inputs)
    x = block(x, width, name="block1")
    x = block(x, 2 * width, strides=2, name="block2")
    x = block(x, 4 * width, strides=2, name="block3")
    x = GlobalAveragePooling2D(name="gap")(x)
    return Model(inputs, Dense(classes, name="logits")(x), name="resnet")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/resnet"
    run = cnnlab.train(data="fashion-mnist", module=resnet(), epochs=1, lr=3e-3, out=out)
    for row in cnnlab.nn.summarize(run.model).rows:
        print(f"{row.name:16} {row.kind:20} {row.output_shape:20} {row.params:>6,}  {row.connected}")
