"""The peer for what a user calls after training: Keras's model.predict and a multi-output feature-map model.

Runs in .venv-peers (tensorflow-cpu). Reads the arrays cnnlab exported and prints one JSON object:
test-set throughput of model.predict at each batch size tried (steady state, the median of 3 after a
warm-up call), and the median time of one image's feature maps of every layer through a Keras model
whose outputs are all the layers' outputs (the tutorials' way to "plot the feature maps of pool1").

With a third argument (a folder), the model is also saved there as ``seed-fashion.keras`` with
``model.save``; the JSON then adds the median time of ``keras.saving.load_model`` on it, and the folder
gets ``seed-fashion-maps.npz``: the first test image and every layer's output for it, for cnnlab to
load the same file and compare.
"""

import json
import statistics
import sys
import time

import numpy as np
from keras_seed_fashion import seed_fashion
from tensorflow import keras

data = np.load(sys.argv[1])
batch_sizes = [int(b) for b in sys.argv[2].split(",")]
x_test = data["x_test"].astype("float32") / 255

keras.utils.set_random_seed(0)
model = seed_fashion()
result = {"predict_images_per_s": {}}
for bs in batch_sizes:
    model.predict(x_test[: 2 * bs], batch_size=bs, verbose=0)  # warm up (builds the predict function)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict(x_test, batch_size=bs, verbose=0)
        runs.append(time.perf_counter() - t0)
    result["predict_images_per_s"][str(bs)] = len(x_test) / statistics.median(runs)

maps = keras.Model(model.inputs, [layer.output for layer in model.layers])
one = x_test[:1]
for _ in range(20):
    maps(one, training=False)  # the eager call a notebook makes; warm up
times = []
for _ in range(200):
    t0 = time.perf_counter()
    [m.numpy() for m in maps(one, training=False)]
    times.append(time.perf_counter() - t0)
result["feature_maps_ms"] = statistics.median(times) * 1000

if len(sys.argv) > 3:
    path = f"{sys.argv[3]}/seed-fashion.keras"
    model.save(path)
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        keras.models.load_model(path)
        loads.append(time.perf_counter() - t0)
    result["load_ms"] = statistics.median(loads) * 1000
    outputs = [m.numpy() for m in maps(one, training=False)]
    np.savez(
        f"{sys.argv[3]}/seed-fashion-maps.npz",
        x=one,
        **{layer.name: o for layer, o in zip(model.layers, outputs, strict=True)},
    )
print(json.dumps(result))
