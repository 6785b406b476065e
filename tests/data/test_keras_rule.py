"""cnnlab reads a folder as Keras's ``image_dataset_from_directory`` does (``--resize``): checked against Keras on
TensorFlow itself, in the peers' venv that ``make test`` builds."""

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import cnnlab
from cnnlab import data
from cnnlab.cli import app
from cnnlab.data import keras_rule
from cnnlab.errors import InputError
from cnnlab.run.evaluate import evaluate_run

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"  # Keras on TensorFlow, built by `make test`
PEER = ROOT / "benchmarks" / "peers" / "keras_folder.py"
SIZE, FRACTION, SEED = (24, 32), 0.25, 7


def _peer(*args) -> None:
    assert PEER_PYTHON.exists(), f"Keras on TensorFlow is missing ({PEER_PYTHON}): `make test` builds it"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([str(PEER_PYTHON), str(PEER), *map(str, args)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]


def _photo(rng, label: int) -> np.ndarray:
    """A photo of mixed size whose colour leans towards its class, some of them barely."""
    h, w = rng.integers(20, 90, 2)
    lean = rng.uniform(-0.3, 1.0) * (1 if label else -1)
    a = rng.normal(128, 40, (h, w, 3))
    a[..., 0] -= 60 * lean
    a[..., 2] += 60 * lean
    return np.clip(a, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def keras_folder(tmp_path_factory):
    """A two-class folder as people have them (JPEG of mixed sizes and suffix cases, nested folders, gray
    JPEG, CMYK JPEG, PNG with alpha, BMP, GIF, an EXIF-turned JPEG, a hidden file, files and a class folder Keras
    skips), and what Keras made of it: keras.json, pixels.npz and model.keras (see keras_folder.py)."""
    root = tmp_path_factory.mktemp("kerasfolder")
    folder, out = root / "pets", root / "keras"
    rng = np.random.default_rng(0)
    for label, name in enumerate(("cats", "dogs")):
        for i in range(60):
            place = folder / name / ("nested" if i % 5 == 0 else "") / f"{name[0]}{i:02d}.{'JPG' if i % 7 else 'jpg'}"
            place.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_photo(rng, label)).save(place, "JPEG", quality=85)
        photo = _photo(rng, label)
        Image.fromarray(photo[..., 0]).save(folder / name / "gray.jpg", quality=90)
        Image.fromarray(np.dstack([photo, rng.integers(0, 256, photo.shape[:2], np.uint8)])).save(
            folder / name / "a.png"
        )
        Image.fromarray(photo).save(folder / name / "b.bmp")
        Image.fromarray(photo).convert("CMYK").save(folder / name / "print.jpg", quality=90)
        Image.fromarray(photo).convert("P").save(folder / name / "c.gif")
        turned = Image.fromarray(photo)
        exif = turned.getexif()
        exif[0x0112] = 6  # "rotate 90": Keras ignores it, and so does its rule here
        turned.save(folder / name / "turned.jpg", exif=exif)
        Image.fromarray(photo).save(folder / name / ".hidden.jpg")  # Keras reads hidden files
        Image.fromarray(photo).save(folder / name / "skipped.webp")  # a suffix Keras does not read
        (folder / name / "notes.txt").write_text("not an image")
    (folder / ".trash").mkdir()
    Image.fromarray(photo).save(folder / ".trash" / "x.jpg")  # a hidden class folder: not a class
    (folder / "README.txt").write_text("two classes")
    out.mkdir()
    _peer("train", folder, *SIZE, FRACTION, SEED, out)
    return folder, out, json.loads((out / "keras.json").read_text())


def test_resize_rules_match_tensorflow(tmp_path):
    """Every interpolation, with and without crop_to_aspect_ratio, on shrinking, growing and mixed shapes."""
    rng = np.random.default_rng(1)
    cases = [((37, 53), (16, 20)), ((100, 80), (100, 100)), ((13, 9), (40, 30)), ((250, 333), (100, 100))]
    arrays = {}
    for i, (shape, size) in enumerate(cases):
        arrays[f"a{i}"] = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        arrays[f"size{i}"] = np.array(size)
    np.savez(tmp_path / "in.npz", **arrays)
    _peer("resize", tmp_path / "in.npz", tmp_path / "out.npz")
    expected = np.load(tmp_path / "out.npz")
    for i, (_, size) in enumerate(cases):
        for rule in keras_rule.RULES:
            for crop in (False, True):
                want = expected[f"{i}-{rule}" + ("-crop" if crop else "")]
                got = keras_rule.resize(arrays[f"a{i}"], size, rule, crop)
                assert got.shape == want.shape and got.dtype == want.dtype, (i, rule, crop)
                # float32 in TensorFlow, float64 here: lanczos sums more terms than the others
                tolerance = 0 if rule == "nearest" else (1e-2 if rule.startswith("lanczos") else 1e-3)
                np.testing.assert_allclose(got, want, atol=tolerance, err_msg=f"{i} {rule} crop={crop}")


def test_files_split_and_pixels_are_keras_own(keras_folder):
    folder, out, keras = keras_folder
    ds = data.load(folder, size=SIZE, resize="bilinear", test_fraction=FRACTION, seed=SEED)
    assert ds.classes == tuple(keras["classes"]) == ("cats", "dogs")
    assert ds.info["files"] == {"train": keras["train_files"], "test": keras["test_files"]}
    every = keras["train_files"] + keras["test_files"]
    assert len(every) == 2 * 67 and not any(f.endswith((".webp", ".txt")) or f.startswith(".") for f in every)
    assert ds.train.x.dtype == np.uint8  # rounded for training, the same files in the same order
    exact = data.load(folder, size=SIZE, resize="bilinear", test_fraction=FRACTION, seed=SEED, exact_test=True)
    assert exact.test.x.dtype == np.float32 and len(exact.train) == 0
    np.testing.assert_allclose(exact.test.x, np.load(out / "pixels.npz")["x"], atol=1e-3)
    np.testing.assert_array_equal(ds.test.x, np.clip(np.rint(exact.test.x), 0, 255).astype(np.uint8))


def test_cnnlab_eval_of_a_keras_model_on_a_folder_is_keras_evaluate(keras_folder):
    """Accuracy and every predicted class as Keras's model.evaluate / model.predict gave them."""
    folder, out, keras = keras_folder
    runner = CliRunner()
    args = ["eval", str(out / "model.keras"), "--data", str(folder), "--precision", "fp32"]
    args += ["--test-fraction", str(FRACTION), "--split-seed", str(SEED), "-o", str(out)]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert [f["file"] for f in got["files"]] == keras["test_files"]
    assert {f["file"]: f["predicted"] for f in got["files"]} == keras["predicted"]
    assert len(set(keras["predicted"].values())) == 2  # a model that tells the classes apart, not a constant
    assert got["accuracy"] == pytest.approx(keras["accuracy"], abs=1e-6)
    assert any("Keras's rule: interpolation='bilinear'" in n for n in got["notes"])
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "note: resized by Keras's rule" in r.stdout, r.output


def test_a_file_that_fails_is_left_out_after_the_split(keras_folder, tmp_path):
    folder, _, keras = keras_folder
    copy = tmp_path / "pets"
    shutil.copytree(folder, copy)
    broken = keras["test_files"][0]
    whole = (copy / broken).read_bytes()
    (copy / broken).write_bytes(whole[: len(whole) // 3])
    ds = data.load(copy, size=SIZE, resize="bilinear", test_fraction=FRACTION, seed=SEED, cache=False)
    assert ds.info["files"]["test"] == keras["test_files"][1:]  # the others where Keras puts them
    assert [Path(b["path"]).name for b in ds.info["bad_files"]] == [Path(broken).name]


def test_training_with_a_keras_rule_is_kept_and_evaluated_with_it(keras_folder, tmp_path, monkeypatch):
    folder, _, keras = keras_folder
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    run_dir = tmp_path / "run"
    argv = ["train", "--data", str(folder), "--model", "seed-mnist5x5", "--size", "28,28", "--resize", "area"]
    r = CliRunner().invoke(app, [*argv, "--epochs", "1", "--out", str(run_dir)])
    assert r.exit_code == 0, r.output
    run = cnnlab.Run.load(run_dir)
    assert run.train_config["resize"] == "area"
    ev, _ = evaluate_run(run)
    assert any("interpolation='area'" in n for n in ev.notes)
    keras_split = data.load(folder, size=(28, 28), resize="area").info["files"]["test"]  # its split at seed 0
    assert list(ev.files) == keras_split and keras_split != keras["test_files"]


def test_unknown_rules_and_rules_for_registered_datasets_are_refused(home):
    assert keras_rule.check_rule("Lanczos") == "lanczos3" and keras_rule.check_rule("cnnlab") is None
    with pytest.raises(InputError, match="Unknown resize rule 'bicubic'. Expected one of: cnnlab, bilinear"):
        keras_rule.check_rule("bicubic")
    with pytest.raises(InputError, match="is a rule for image folders; digits is a registered dataset"):
        data.load("digits", resize="bilinear")
    r = CliRunner().invoke(app, ["train", "--data", "digits", "--resize", "cubic"])
    assert r.exit_code == 2 and "Unknown resize rule 'cubic'" in r.output


def test_index_follows_keras_order_without_keras(tmp_path):
    """Class folders sorted, hidden ones skipped; files directory by directory, sorted, any suffix case."""
    for rel in ("b/z.jpg", "b/a/y.PNG", "a/2.bmp", "a/1.gif", "a/.h.jpeg", "a/skip.webp", ".x/q.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(io.BytesIO(b"x").getvalue())
    files, labels, classes = keras_rule.index(tmp_path)
    assert classes == ("a", "b")
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a/.h.jpeg",
        "a/1.gif",
        "a/2.bmp",
        "b/z.jpg",
        "b/a/y.PNG",
    ]
    assert labels == [0, 0, 0, 1, 1]
