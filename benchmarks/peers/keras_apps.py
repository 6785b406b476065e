"""keras.applications models for cnnlab's Keras-import tests, built by real Keras on TensorFlow with
``weights=None`` (nothing is downloaded) at a small input size (64x64; 75x75 for InceptionV3), and saved with
the output of every layer for a fixed input (``<name>.npz``, as :mod:`keras_fixtures` writes them). Run in the
peers' venv by the test suite into a temporary folder: ``python keras_apps.py OUT [NAME ...]``. The files are
large (up to 100 MB), so they are made during the test session, never committed.

The weights are Keras's own initialization; the normalization statistics are drawn at random (near the
identity), so that a reader which ignored them would be caught."""

import sys
from pathlib import Path

import keras
import keras_fixtures
import numpy as np
from keras import applications as A
from keras import layers

SMALL = (64, 64, 3)  # the last blocks still have 2x2 maps (Grad-CAM's)


def transfer():
    """The shape of TensorFlow's transfer-learning tutorial: an augmentation Sequential, Rescaling to [-1, 1], a
    frozen MobileNetV2 without its top, global pooling, dropout and a one-unit logit."""
    augment = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.2)], name="augment")
    base = A.MobileNetV2(input_shape=SMALL, include_top=False, weights=None)
    base.trainable = False
    base.name = "mobilenetv2"
    inputs = keras.Input(SMALL)
    x = augment(inputs)
    x = layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(x)
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.2, name="drop")(x)
    return keras.Model(inputs, layers.Dense(1, name="logit")(x), name="transfer")


def layer_tour():
    """Every layer and activation of cnnlab's Keras vocabulary that the applications above do not use, with
    arguments away from their defaults."""
    inputs = keras.Input((12, 12, 4))
    x = layers.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, name="sep")(inputs)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw2")(x)
    x = layers.Conv2D(6, 3, groups=3, padding="same", dilation_rate=2, name="grouped")(x)
    x = layers.LeakyReLU(0.1, name="leaky")(x)
    same = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="deconv_same")(x)  # 24x24
    valid = layers.Conv2DTranspose(4, 3, strides=2, output_padding=1, name="deconv_valid")(x)  # 26x26
    valid = layers.Cropping2D(((2, 0), (1, 1)), name="crop")(valid)
    x = layers.Concatenate(axis=3, name="cat")([same, valid])
    x = layers.ELU(0.5, name="elu")(x)
    x = layers.PReLU(shared_axes=[1, 2], name="prelu")(x)
    x = layers.LayerNormalization(name="ln")(x)
    x = layers.MaxPooling2D(4, name="pool")(x)  # 6x6
    x = layers.UpSampling2D(2, interpolation="bilinear", name="up_bilinear")(x)
    x = layers.ZeroPadding2D(((1, 0), (0, 2)), name="pad")(x)
    x = layers.UpSampling2D((2, 1), name="up_nearest")(x)
    x = layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5, name="relu_args")(x)
    names = ["gelu", "selu", "softplus", "hard_sigmoid", "hard_swish", "relu6", "tanh", "sigmoid", "elu", "mish"]
    branches = [layers.Activation(a, name=f"act_{a}")(x) for a in names]
    spread = layers.Subtract(name="subtract")(
        [layers.Maximum(name="max")(branches[:3]), layers.Minimum(name="min")(branches[3:6])]
    )
    x = layers.Add(name="add")([layers.Average(name="average")(branches), spread])
    x = layers.Multiply(name="multiply")([x, layers.Identity(name="identity")(x)])
    x = layers.Dense(3, name="dense_map")(x)  # on the channels of every cell
    x = layers.GlobalMaxPooling2D(keepdims=True, name="gmp")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="probs")(x), name="layers")


APPS = {
    "layers": layer_tour,
    "vgg16": lambda: A.VGG16(weights=None, input_shape=SMALL, include_top=False, pooling="max"),
    "resnet50": lambda: A.ResNet50(weights=None, input_shape=SMALL, classes=10),
    "mobilenetv2": lambda: A.MobileNetV2(weights=None, input_shape=SMALL, classes=10),
    "mobilenetv3small": lambda: A.MobileNetV3Small(weights=None, input_shape=SMALL, classes=10),
    "efficientnetb0": lambda: A.EfficientNetB0(weights=None, input_shape=SMALL, classes=10),
    "densenet121": lambda: A.DenseNet121(weights=None, input_shape=SMALL, classes=10),
    "inceptionv3": lambda: A.InceptionV3(weights=None, input_shape=(75, 75, 3), classes=10),
    "transfer": transfer,
    "convnexttiny": lambda: A.ConvNeXtTiny(weights=None, input_shape=SMALL, include_top=False, name="convnexttiny"),
}
HDF5 = ("mobilenetv2", "transfer")  # also saved as Keras 2 full-model .h5 files


def statistics(model, rng):
    """Normalization statistics near the identity but not it, in this model and the models nested in it."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            statistics(layer, rng)
        elif isinstance(layer, (layers.BatchNormalization, layers.Normalization)) and layer.weights:
            values = []
            for w in layer.weights:
                n = w.path.rsplit("/", 1)[-1]
                shape = tuple(w.shape)
                if n in ("gamma", "moving_variance", "variance"):
                    values.append(rng.uniform(0.5, 1.5, shape))
                elif n == "count":
                    values.append(np.asarray(w))
                else:
                    values.append(rng.normal(0, 0.1, shape))
            for w, v in zip(layer.weights, values, strict=True):
                w.assign(np.asarray(v, dtype=w.dtype))
            if isinstance(layer, layers.Normalization):
                layer.finalize_state()  # Normalization computes with copies it makes of its variables


def outputs(model, x, prefix="") -> dict:
    """The output of every layer of ``model`` for ``x``, by name; the layers of a nested model as
    ``outer/inner``, computed by the nested model on what reaches it."""
    shown = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    made = [layer._inbound_nodes[-1].output_tensors[0] for layer in shown]  # this model's call of each layer
    values = keras.Model(model.inputs, made).predict(x, verbose=0)
    found = {prefix + layer.name: value for layer, value in zip(shown, values, strict=True)}
    for layer in shown:
        if isinstance(layer, keras.Model):
            source = layer._inbound_nodes[-1].input_tensors[0]
            feed = x if source is model.inputs[0] else found[prefix + source._keras_history[0].name]
            found.update(outputs(layer, feed, f"{prefix}{layer.name}/"))
    return found


def save(model, x, legacy: bool) -> None:
    by_layer = outputs(model, x)
    for suffix in (".keras", ".h5") if legacy else (".keras",):  # .h5: the Keras 2 / tf.keras full-model format
        model.save(keras_fixtures.OUT / f"{model.name}{suffix}")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    counts = np.array([model.count_params(), trainable, model.count_params() - trainable])  # as Keras's summary
    np.savez(keras_fixtures.OUT / f"{model.name}.npz", x=x, keras_params=counts, **by_layer)
    print(f"{model.name}: {model.count_params():,} params, {len(by_layer)} layer outputs")


def keras2(out: Path) -> None:
    """MobileNetV2 built and saved by Keras 2 (tf-keras): a branching model in the Keras 2 full-model .h5 format,
    with Keras 2's inbound nodes and weight names."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.applications.MobileNetV2(weights=None, input_shape=SMALL, classes=10)
    model._name = "mobilenetv2_keras2"
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            near = [rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape), rng.normal(0, 0.1, m.shape)]
            layer.set_weights([*near, rng.uniform(0.5, 1.5, v.shape)])
    x = rng.uniform(0, 255, (2, *SMALL)).astype("float32")
    shown = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    values = tf_keras.Model(model.inputs, [layer.output for layer in shown]).predict(x, verbose=0)
    model.save(out / "mobilenetv2_keras2.h5")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    counts = np.array([model.count_params(), trainable, model.count_params() - trainable])
    by_layer = {layer.name: value for layer, value in zip(shown, values, strict=True)}
    np.savez(out / "mobilenetv2_keras2.npz", x=x, keras_params=counts, **by_layer)
    print(f"mobilenetv2_keras2: {model.count_params():,} params, {len(by_layer)} layer outputs")


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    keras_fixtures.OUT = out
    for name in sys.argv[2:] or [*APPS, "mobilenetv2_keras2"]:
        if name == "mobilenetv2_keras2":
            keras2(out)
            continue
        if name == "convnexttiny":  # only its file: cnnlab refuses it (LayerScale), so no outputs are compared
            APPS[name]().save(out / "convnexttiny.keras")
            continue
        keras.utils.set_random_seed(0)
        model = APPS[name]()
        model.name = name
        rng = np.random.default_rng(0)
        statistics(model, rng)
        x = np.round(rng.uniform(0, 255, (2, *model.input_shape[1:]))).astype("float32")  # whole pixel values
        if name == "layers":  # no preprocessing: numbers around 1, weights drawn at random (PReLU's too)
            x = rng.normal(0, 1, x.shape).astype("float32")
            for w in model.weights:
                w.assign(rng.normal(0, 0.4, tuple(w.shape)).astype("float32"))
        save(model, x, name in HDF5)


if __name__ == "__main__":
    main()
