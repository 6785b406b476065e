"""Keras files for cnnlab's Keras-import tests, made by real Keras on TensorFlow (run in the peers' venv:
``make keras-fixtures``). Writes small ``.keras`` models covering the supported layers, and for fixed inputs
the output of every layer as TensorFlow computes it (``<name>.npz``), so the tests need no TensorFlow.

With the Fashion-MNIST arrays (an ``.npz`` with x_train, y_train, x_test, y_test, uint8 NHWC) as the second
argument, it also trains ``fashion_cnn`` the tutorials' way (``x / 255.0``, Adam, sparse categorical
cross-entropy, 3 epochs) and saves it with the test images' layer outputs, its ``model.evaluate`` accuracy
and its predicted class for every test image: a model a user would really have on disk."""

import sys
from pathlib import Path

import keras
import numpy as np
from keras import layers

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/keras")


def sequential_bn():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv2"),
            layers.Activation("relu", name="act2"),
            layers.AveragePooling2D(2, padding="same", name="avg2"),
            layers.Dropout(0.3, name="drop"),
            layers.Flatten(name="flatten"),
            layers.Dense(16, activation="relu", name="fc1"),
            layers.Dense(10, name="logits"),
            layers.Softmax(name="probs"),
        ],
        name="seq_bn",
    )


def sequential_gap():
    return keras.Sequential(
        [
            keras.Input((20, 20, 3)),
            layers.Conv2D(6, 5, padding="valid", dilation_rate=2, name="dilated"),
            layers.ReLU(name="relu"),
            layers.MaxPooling2D(pool_size=3, strides=2, padding="same", name="pool"),
            layers.BatchNormalization(center=False, epsilon=0.01, name="bn"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(4, activation="softmax", name="probs"),
        ],
        name="seq_gap",
    )


def functional_chain():
    """The tutorials' other way to write the same kind of model: a functional chain."""
    inputs = keras.Input((16, 16, 1), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.AveragePooling2D(2, name="avg")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    outputs = layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="func_chain")


def sequential_rescaling():
    """Raw 0..255 pixels in: Rescaling first, as the newer Keras tutorials do; global max pooling, a Reshape."""
    return keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            layers.Rescaling(1 / 255, name="rescale"),
            layers.Conv2D(4, 3, activation="relu", name="conv"),
            layers.Reshape((10, 10, 4), name="same_shape"),
            layers.GlobalMaxPooling2D(name="gmp"),
            layers.Dense(3, name="logits"),
        ],
        name="seq_rescale",
    )


def functional_branch():
    """Two branches added together: not a chain, which cnnlab refuses naming the layer."""
    inputs = keras.Input((8, 8, 1), name="image")
    a = layers.Conv2D(2, 3, padding="same", name="left")(inputs)
    b = layers.Conv2D(2, 1, name="right")(inputs)
    x = layers.Add(name="join")([a, b])
    outputs = layers.Dense(2, name="out")(layers.Flatten(name="flat")(x))
    return keras.Model(inputs, outputs, name="func_branch")


def fashion_cnn():
    """A small Fashion-MNIST CNN as a tutorial writes it (BatchNorm, Dropout, global pooling, softmax out)."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv2"),
            layers.BatchNormalization(name="bn2"),
            layers.ReLU(name="relu2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dropout(0.2, name="drop"),
            layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="fashion_cnn",
    )


def trained_fashion(arrays: Path):
    data = np.load(arrays)
    x_train, x_test = data["x_train"] / 255.0, data["x_test"] / 255.0
    keras.utils.set_random_seed(0)
    model = fashion_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, data["y_train"], epochs=3, batch_size=64, verbose=2)
    _, accuracy = model.evaluate(x_test, data["y_test"], verbose=0)
    predicted = model.predict(x_test, verbose=0).argmax(1).astype("uint8")
    make(model, None, x=x_test[:4].astype("float32"), test_accuracy=accuracy, test_predicted=predicted)


def keras2_chain():
    """A model saved by Keras 2 (tf.keras as the tf-keras package keeps it) in its own .h5 format: the
    layers declare ``batch_input_shape`` and the weights sit at Keras 2's paths."""
    import tf_keras

    tl = tf_keras.layers
    inputs = tf_keras.Input((14, 14, 1), name="image")
    x = tl.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = tl.BatchNormalization(name="bn1")(x)
    x = tl.AveragePooling2D(2, name="avg1")(x)
    x = tl.Conv2D(6, 3, strides=2, padding="same", use_bias=False, name="conv2")(x)
    x = tl.ReLU(name="relu2")(x)
    x = tl.MaxPooling2D(2, padding="same", name="pool2")(x)
    x = tl.Flatten(name="flatten")(x)
    x = tl.Dropout(0.25, name="drop")(x)
    outputs = tl.Dense(5, activation="softmax", name="probs")(x)
    return tf_keras.Model(inputs, outputs, name="keras2_chain"), tf_keras


def make(model, seed, legacy=False, x=None, api=keras, suffixes=(".keras",), **extra):
    if x is not None:  # a trained model, shown real images
        return _save(model, x, legacy, extra)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # weights and moving statistics that are not the identity
        if layer.weights:
            values = [rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()]
            if type(layer).__name__ == "BatchNormalization":  # the last one is the moving variance: positive
                values[-1] = np.abs(values[-1]) + 0.5
            layer.set_weights(values)
    high = 255 if model.layers[0].name == "rescale" else 1  # a Rescaling model takes raw pixel values
    x = rng.uniform(0, high, (3, *model.input_shape[1:])).astype("float32")
    return _save(model, x, legacy, {}, api, suffixes)


def _save(model, x, legacy, extra, api=keras, suffixes=(".keras",)):
    shown = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    probe = api.Model(model.inputs, [layer.output for layer in shown])
    outputs = probe.predict(x, verbose=0)
    for suffix in (*suffixes, ".h5") if legacy else suffixes:  # .h5: the Keras 2 / tf.keras full-model format
        model.save(OUT / f"{model.name}{suffix}")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    counts = np.array([model.count_params(), trainable, model.count_params() - trainable])  # as Keras's summary
    by_layer = {layer.name: out for layer, out in zip(shown, outputs, strict=True)}
    np.savez_compressed(OUT / f"{model.name}.npz", x=x, keras_params=counts, **by_layer, **extra)
    print(f"{model.name}: {model.count_params():,} params, layers {[layer.name for layer in shown]}")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make(sequential_bn(), 0, legacy=True)
    make(sequential_gap(), 1)
    make(functional_chain(), 2, legacy=True)
    make(functional_branch(), 3)
    make(sequential_rescaling(), 4)
    keras2, tf_keras = keras2_chain()
    make(keras2, 5, api=tf_keras, suffixes=(".h5",))
    if len(sys.argv) > 2:
        trained_fashion(Path(sys.argv[2]))
