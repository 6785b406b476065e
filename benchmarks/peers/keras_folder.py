"""What Keras does with an image folder, for the tests of cnnlab's Keras rule: run in the peers' venv.

``keras_folder.py resize IN.npz OUT.npz``: IN holds uint8 images ``a0, a1, ...`` and their target sizes
``size0, size1, ...``; OUT gets ``tf.image.resize`` of each with every interpolation (``i-rule``) and
Keras's ``smart_resize`` (``i-rule-crop``), as ``image_dataset_from_directory`` resizes with and without
``crop_to_aspect_ratio``.

``keras_folder.py train FOLDER H W FRACTION SEED OUT``: trains a small CNN (Rescaling first) on
``image_dataset_from_directory(FOLDER, validation_split=FRACTION, subset="training", seed=SEED,
image_size=(H, W))``, saves it as OUT/model.keras and writes OUT/keras.json: the class names, the training
and validation files (relative paths, in Keras's order), ``model.evaluate``'s accuracy on the validation
subset and every validation file's predicted class (``model.predict`` on an unshuffled pass), and
OUT/pixels.npz: the validation images as Keras feeds them (float32), in the order of the files.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

RULES = ("bilinear", "nearest", "area", "lanczos3", "lanczos5")


def resize(source: Path, out: Path) -> None:
    arrays, results = np.load(source), {}
    for i in range(sum(1 for k in arrays.files if k.startswith("a"))):
        a, size = arrays[f"a{i}"], tuple(int(n) for n in arrays[f"size{i}"])
        for rule in RULES:
            results[f"{i}-{rule}"] = tf.image.resize(a, size, method=rule, antialias=False).numpy()
            cropped = keras.preprocessing.image.smart_resize(tf.constant(a), size, interpolation=rule)
            results[f"{i}-{rule}-crop"] = np.asarray(cropped)
    np.savez(out, **results)


def train(folder: Path, size: tuple[int, int], fraction: float, seed: int, out: Path) -> None:
    keras.utils.set_random_seed(seed)

    def read(**how):
        return keras.utils.image_dataset_from_directory(folder, image_size=size, batch_size=32, **how)

    split = {"validation_split": fraction, "seed": seed}
    fit, held = read(subset="training", **split), read(subset="validation", **split)
    names = fit.class_names
    model = keras.Sequential(
        [
            keras.Input((*size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(len(names)),
        ]
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss, metrics=["accuracy"])
    model.fit(fit, epochs=4, verbose=0)
    model.save(out / "model.keras")
    _, accuracy = model.evaluate(held, verbose=0)
    held_files = [Path(p).relative_to(folder).as_posix() for p in held.file_paths]
    unshuffled = read(shuffle=False)  # the same files in a fixed order: one prediction and one image each
    every = [Path(p).relative_to(folder).as_posix() for p in unshuffled.file_paths]
    pixels = np.concatenate([x.numpy() for x, _ in unshuffled])
    predicted = np.argmax(model.predict(unshuffled, verbose=0), axis=1)
    where = {f: i for i, f in enumerate(every)}
    result = {
        "classes": names,
        "train_files": [Path(p).relative_to(folder).as_posix() for p in fit.file_paths],
        "test_files": held_files,
        "accuracy": float(accuracy),
        "predicted": {f: names[int(predicted[where[f]])] for f in held_files},
    }
    (out / "keras.json").write_text(json.dumps(result))
    np.savez(out / "pixels.npz", x=pixels[[where[f] for f in held_files]])


if __name__ == "__main__":
    if sys.argv[1] == "resize":
        resize(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        folder, h, w, fraction, seed, out = sys.argv[2:8]
        train(Path(folder), (int(h), int(w)), float(fraction), int(seed), Path(out))
