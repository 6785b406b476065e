"""The peer: seed-fashion written in Keras on TensorFlow, timed the way benchmarks/train.py times cnnlab.

Runs in .venv-peers (tensorflow-cpu). Reads the arrays cnnlab exported (uint8 NHWC, int64 labels) and
prints one JSON object: per batch size, the wall time of each epoch and the test accuracy.
With ``--fit-only BATCH`` it is the whole-process peer of ``cnnlab train``: load the arrays, fit, evaluate,
print the test accuracy, exit (timed from outside, start-up included).
With ``--curve BATCH SEED`` it trains the tutorial way (Adam 1e-3, shuffled batches) and evaluates the test set
after every epoch: each epoch's fit seconds (the evaluation not included) and test accuracy.
"""

import json
import sys
import time

import numpy as np
import tensorflow as tf
from tensorflow import keras


def seed_fashion():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


def compiled():
    model = seed_fashion()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main():
    data = np.load(sys.argv[1])
    epochs = int(sys.argv[2])
    x_train, y_train = data["x_train"].astype("float32") / 255, data["y_train"]
    x_test, y_test = data["x_test"].astype("float32") / 255, data["y_test"]
    if sys.argv[3] == "--fit-only":
        keras.utils.set_random_seed(0)
        model = compiled()
        model.fit(x_train, y_train, batch_size=int(sys.argv[4]), epochs=epochs, verbose=0, shuffle=True)
        print(json.dumps({"test_accuracy": float(model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1])}))
        return
    if sys.argv[3] == "--curve":
        keras.utils.set_random_seed(int(sys.argv[5]))
        model, timer, accuracy = compiled(), EpochTimer(), []
        timer.times = []
        tested = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: accuracy.append(
                float(model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1])
            )
        )
        model.fit(x_train, y_train, batch_size=int(sys.argv[4]), epochs=epochs, verbose=0, shuffle=True,
                  callbacks=[timer, tested])  # fmt: skip
        print(json.dumps({"keras": keras.__version__, "epoch_s": timer.times, "test_accuracy": accuracy}))
        return
    batch_sizes = [int(b) for b in sys.argv[3].split(",")]
    result = {"tensorflow": tf.__version__, "keras": keras.__version__, "params": None, "train": {}}
    for bs in batch_sizes:
        keras.utils.set_random_seed(0)
        model = compiled()
        result["params"] = model.count_params()
        timer = EpochTimer()
        timer.times = []
        model.fit(x_train, y_train, batch_size=bs, epochs=epochs, verbose=0, callbacks=[timer], shuffle=True)
        _, acc = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        result["train"][str(bs)] = {"epoch_s": timer.times, "test_accuracy": float(acc)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
