"""The peer of benchmarks/folders.py: Keras reading and training on an image folder, in .venv-peers.

``keras_folder_speed.py pass FOLDER``: ``image_dataset_from_directory(FOLDER, image_size=(100, 100))`` and
one full pass over it (every file decoded and resized, in TensorFlow's parallel pipeline), in seconds and in
CPU seconds (all of TensorFlow's threads).
``keras_folder_speed.py fit FOLDER EPOCHS``: seed-catdog written in Keras (a Rescaling(1/255) first, as cnnlab
scales its uint8 input), ``model.fit`` on the training subset (validation_split=0.2, seed=0, batch 64,
prefetched), each epoch timed. Both print one JSON line: seconds, files and the process's peak memory.
"""

import json
import resource
import sys
import time

import keras
import tensorflow as tf

SIZE = (100, 100)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """The CPU seconds of this process so far, all its threads, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seed_catdog():
    layers = [keras.Input((*SIZE, 3)), keras.layers.Rescaling(1 / 255)]
    for filters in (32, 64, 64, 64):
        layers += [keras.layers.Conv2D(filters, 5, activation="relu"), keras.layers.MaxPooling2D(2)]
    layers += [keras.layers.Flatten()]
    layers += [keras.layers.Dense(n, activation="relu") for n in (128, 64, 32)]
    return keras.Sequential([*layers, keras.layers.Dense(2)])


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


def main():
    how, folder = sys.argv[1], sys.argv[2]
    t0, cpu0 = time.perf_counter(), cpu_s()
    if how == "pass":
        ds = keras.utils.image_dataset_from_directory(folder, image_size=SIZE, batch_size=64)
        indexed = time.perf_counter() - t0
        n = sum(int(x.shape[0]) for x, _ in ds.prefetch(tf.data.AUTOTUNE))
        result = {"index_s": indexed, "pass_s": time.perf_counter() - t0, "pass_cpu_s": cpu_s() - cpu0, "files": n}
    else:
        keras.utils.set_random_seed(0)
        split = {"validation_split": 0.2, "subset": "training", "seed": 0}
        ds = keras.utils.image_dataset_from_directory(folder, image_size=SIZE, batch_size=64, **split)
        model = seed_catdog()
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        timer = EpochTimer()
        model.fit(ds.prefetch(tf.data.AUTOTUNE), epochs=int(sys.argv[3]), verbose=0, callbacks=[timer])
        result = {"epoch_s": timer.times, "params": model.count_params(), "files": len(ds.file_paths)}
    print(json.dumps({**result, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
