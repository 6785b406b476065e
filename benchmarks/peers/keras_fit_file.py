"""The peer for training a model cnnlab exported: run in .venv-peers.

``python keras_fit_file.py MODEL.keras ARRAYS.npz EPOCHS BATCH`` loads the file with
``keras.saving.load_model`` (Keras's own layers, built from the config cnnlab wrote), trains it the tutorials'
way (x / 255, Adam 1e-3, sparse categorical cross-entropy on its probabilities) and prints one JSON object:
the wall time of each epoch and the test accuracy.
"""

import json
import sys
import time

import keras
import numpy as np

path, arrays, epochs, batch = sys.argv[1], np.load(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x_train, x_test = arrays["x_train"].astype("float32") / 255, arrays["x_test"].astype("float32") / 255
keras.utils.set_random_seed(0)
model = keras.saving.load_model(path)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


timer = EpochTimer()
model.fit(x_train, arrays["y_train"], batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer])
_, accuracy = model.evaluate(x_test, arrays["y_test"], verbose=0)
print(json.dumps({"epoch_s": timer.times, "test_accuracy": float(accuracy)}))
