"""``make keras-check``: Keras on TensorFlow loads the .keras files cnnlab writes and computes what TensorFlow
computed for the originals. Run in the peers' venv on the folder that ``cnnlab export`` filled."""

import sys
from pathlib import Path

import keras
import numpy as np

folder, fixtures = Path(sys.argv[1]), Path(sys.argv[2])
worst = 0.0
for path in sorted(folder.glob("*.keras")):
    model = keras.saving.load_model(path)
    reference = np.load(fixtures / f"{path.stem}.npz")
    last = [k for k in reference.files if k not in ("x", "keras_params")][-1]
    diff = float(np.abs(model.predict(reference["x"], verbose=0) - reference[last]).max())
    worst = max(worst, diff)
    print(f"{path.name}: keras.saving.load_model ok, {model.count_params():,} params, max |difference| {diff:.2e}")
sys.exit(0 if worst < 1e-4 else 1)
