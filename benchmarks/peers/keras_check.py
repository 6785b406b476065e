"""Keras on TensorFlow loads the .keras files cnnlab writes: run in the peers' venv by the test suite.

Every ``NAME.keras`` in the folder has a ``NAME.npz`` beside it with ``x`` (the input) and ``expected``
(what the model must output for it). Each file is loaded with ``keras.saving.load_model`` and run with
``model.predict``; one line per file gives its parameter count and largest absolute difference. Exit 1
when any difference is above the tolerance (the second argument, default 1e-4).
"""

import sys
from pathlib import Path

import keras
import numpy as np

folder = Path(sys.argv[1])
tolerance = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-4
worst = 0.0
for path in sorted(folder.glob("*.keras")):
    model = keras.saving.load_model(path)
    reference = np.load(path.with_suffix(".npz"))
    diff = float(np.abs(model.predict(reference["x"], verbose=0) - reference["expected"]).max())
    worst = max(worst, diff)
    print(f"{path.name}: keras.saving.load_model ok, {model.count_params():,} params, max |difference| {diff:.2e}")
sys.exit(0 if worst <= tolerance else 1)
