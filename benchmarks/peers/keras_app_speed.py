"""The peer for loading a keras.applications file and probing every layer: run in .venv-peers.

``python keras_app_speed.py FILE.keras X.npz ROUNDS`` prints one JSON object: the time of each
``keras.saving.load_model(FILE)`` after a first one (which also imports and builds what later loads reuse),
and the times of one image's outputs of every layer through a multi-output probe model, the way Keras users
look inside a model, after a warm-up.
"""

import json
import sys
import time

import keras
import numpy as np

path, x, rounds = sys.argv[1], np.load(sys.argv[2])["x"][:1], int(sys.argv[3])
loads = []
for _ in range(rounds + 1):
    t0 = time.perf_counter()
    model = keras.saving.load_model(path)
    loads.append(time.perf_counter() - t0)
shown = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
probe = keras.Model(model.inputs, [layer.output for layer in shown])
for _ in range(5):
    [m.numpy() for m in probe(x, training=False)]  # the eager call a notebook makes; warm up
maps = []
for _ in range(rounds * 5):
    t0 = time.perf_counter()
    [m.numpy() for m in probe(x, training=False)]
    maps.append(time.perf_counter() - t0)
print(json.dumps({"first_load_s": loads[0], "load_s": loads[1:], "maps_s": maps, "layers": len(shown)}))
