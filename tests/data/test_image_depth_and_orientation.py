"""Issue 14 #10: 16-bit, 32-bit and float images scaled by their range, and phone photos turned upright,
for files, uploads and folder datasets alike. Expected values are computed here from the definitions."""

import numpy as np
import pytest
from PIL import Image

from cnnlab import data
from cnnlab.data import images

EXIF_ORIENTATION = 0x0112


def stretched(a: np.ndarray) -> np.ndarray:
    """[min, max] -> [0, 255], rounded: what a high-depth image outside 0..255 must become."""
    a = a.astype(np.float64)
    return np.round((a - a.min()) * 255 / (a.max() - a.min())).astype(np.uint8)


def ramp(lo, hi, shape=(12, 16)):
    return np.linspace(lo, hi, shape[0] * shape[1]).reshape(shape)


@pytest.mark.parametrize(
    ("values", "mode", "suffix", "note"),
    [
        (ramp(0, 4095).astype(np.uint16), "I;16", ".png", "is a 16-bit image (values 0..4095); scaled to 0..255"),
        (ramp(300, 65535).astype(np.uint16), "I;16", ".tif", "16-bit image (values 300..65535)"),
        (ramp(-1000, 100_000).astype(np.int32), "I", ".tif", "is a 32-bit image (values -1000..100000)"),
        (ramp(-2.5, 7.25).astype(np.float32), "F", ".tif", "is a float image (values -2.5..7.25)"),
    ],
    ids=["png-12-bit", "tiff-16-bit", "tiff-32-bit", "tiff-float"],
)
def test_high_depth_images_are_stretched_from_their_range_with_a_note(tmp_path, values, mode, suffix, note):
    path = tmp_path / f"deep{suffix}"
    img = Image.fromarray(values)  # the array's dtype decides the mode
    assert img.mode == mode
    img.save(path)
    notes = []
    got = images.decode(path, notes=notes)
    assert got.dtype == np.uint8 and got.shape == (*values.shape, 1)
    assert np.abs(got[:, :, 0].astype(int) - stretched(values)).max() <= 1  # rounding of float32 ramps
    assert got.max() == 255 and got.min() == 0  # clipping would have made most of it 255
    assert [n for n in notes if note in n], notes


def test_float_images_in_0_1_are_scaled_by_255_and_8_bit_values_are_kept(tmp_path):
    unit = ramp(0, 1).astype(np.float32)
    Image.fromarray(unit).save(tmp_path / "unit.tif")
    notes = []
    got = images.decode(tmp_path / "unit.tif", notes=notes)
    assert np.array_equal(got[:, :, 0], np.round(unit.astype(np.float64) * 255).astype(np.uint8))
    assert notes == ["unit.tif is a float image with values in [0, 1]; scaled by 255"]
    small = ramp(3, 200).astype(np.uint16)  # a 16-bit container holding 8-bit values: nothing to scale
    Image.fromarray(small).save(tmp_path / "small.png")
    notes = []
    assert np.array_equal(images.decode(tmp_path / "small.png", notes=notes)[:, :, 0], small.astype(np.uint8))
    assert notes == []


def test_nan_in_a_float_image_takes_the_lowest_value(tmp_path):
    a = ramp(0, 1000).astype(np.float32)
    a[0, 0] = np.nan
    Image.fromarray(a).save(tmp_path / "nan.tif")
    got = images.decode(tmp_path / "nan.tif")[:, :, 0]
    assert got[0, 0] == 0 and got.max() == 255


def upright_block() -> np.ndarray:
    """A 30x20 gray image, dark, with a bright block at its top-left: which way it faces is plain to see."""
    a = np.full((30, 20), 20, np.uint8)
    a[2:10, 2:8] = 235
    return a


def photographed(path, upright: np.ndarray, orientation: int, fmt: str) -> None:
    """What a phone writes: the sensor's pixels as they came, and an EXIF tag saying how to turn them.
    Orientation 6 means 'turn 90 degrees clockwise to view', so the stored pixels are the upright image
    turned 90 degrees counter-clockwise; 3 is a half turn; 8 is the opposite of 6 (EXIF 2.3, tag 0x0112)."""
    stored = {1: upright, 3: np.rot90(upright, 2), 6: np.rot90(upright, 1), 8: np.rot90(upright, -1)}[orientation]
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(np.ascontiguousarray(stored)).save(path, format=fmt, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_phone_photo_is_turned_upright(tmp_path, orientation, fmt):
    path = tmp_path / f"photo.{fmt.lower()}"
    photographed(path, upright_block(), orientation, fmt)
    assert images.open_header(path)[1] == (30, 20)  # the header already says how it stands
    notes = []
    got = images.decode(path, notes=notes)[:, :, 0]
    assert got.shape == (30, 20) and np.array_equal(got > 127, upright_block() > 127)  # JPEG is lossy
    assert notes == [f"photo.{fmt.lower()} turned upright, as its EXIF orientation ({orientation}) says"]
    assert np.array_equal(images.decode_bytes(path.read_bytes(), "upload"), images.decode(path))


def test_a_folder_of_turned_photos_loads_upright(tmp_path):
    for label in ("a", "b"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i, orientation in enumerate((1, 6, 8, 3)):
            photographed(tmp_path / "photos" / label / f"{i}.png", upright_block(), orientation, "PNG")
    ds = data.load(tmp_path / "photos", test_fraction=0.25)
    every = np.concatenate([ds.train.x, ds.test.x])
    assert every.shape == (8, 30, 20, 1)
    assert all(np.array_equal(img[:, :, 0], upright_block()) for img in every)


def test_cnnlab_predict_turns_the_photo_and_says_so(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import cnnlab
    from cnnlab.cli import app

    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    cnnlab.train(data="digits", model="seed-fashion", epochs=1, out=str(tmp_path / "run"), verbose=False)
    photographed(tmp_path / "photo.jpg", upright_block(), 6, "JPEG")
    r = CliRunner().invoke(app, ["predict", str(tmp_path / "run"), str(tmp_path / "photo.jpg"), "--json"])
    assert r.exit_code == 0, r.output
    assert "photo.jpg turned upright, as its EXIF orientation (6) says" in r.stdout
