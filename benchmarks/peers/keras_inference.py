"""The peer for what a user calls after training: Keras's model.predict and a multi-output feature-map model.

Runs in .venv-peers (tensorflow-cpu). Reads the arrays cnnlab exported and prints one JSON object:
test-set throughput of model.predict at each batch size tried (steady state, the median of 3 after a
warm-up call), and the median time of one image's feature maps of every layer through a Keras model
whose outputs are all the layers' outputs (the tutorials' way to "plot the feature maps of pool1").
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
print(json.dumps(result))
