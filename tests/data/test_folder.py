import numpy as np
import pytest
from PIL import Image

from cnnlab import data
from cnnlab.data import folder, images
from cnnlab.errors import DataError


def _img(path, mode, size, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


@pytest.fixture
def messy(tmp_path):
    """cats/dogs with PNG and JPEG, gray and RGB, two sizes, a text file and a truncated JPEG."""
    root = tmp_path / "pets"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
    for i in range(5):
        _img(root / "cat" / f"c{i}.png", "RGB", (40, 50), i)
        _img(root / "dog" / f"d{i}.jpg", "RGB", (60, 60), 10 + i)
    _img(root / "cat" / "gray.png", "L", (40, 50), 99)
    (root / "dog" / "notes.txt").write_text("not an image")
    _img(root / "dog" / "whole.jpg", "RGB", (60, 60), 42)
    whole = (root / "dog" / "whole.jpg").read_bytes()
    (root / "dog" / "broken.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "dog" / "whole.jpg").unlink()
    return root


def test_messy_folder_loads_with_size_and_reports_bad_files(messy):
    ds = data.load(messy, size=(32, 32))
    assert ds.classes == ("cat", "dog")
    assert ds.image_shape == (32, 32, 3)  # majority RGB
    assert len(ds.train) + len(ds.test) == 11
    assert ds.train.x.dtype == np.uint8 and ds.train.y.dtype == np.int64
    bad = {b["path"].split("/")[-1]: b["problem"] for b in ds.info["bad_files"]}
    assert set(bad) == {"notes.txt", "broken.jpg"}
    assert "not an image file (.txt)" in bad["notes.txt"]
    assert "broken.jpg could not be decoded" in bad["broken.jpg"]
    assert any("mixed modes" in n for n in ds.info["notes"])


def test_mixed_sizes_without_size_lists_sizes(messy):
    with pytest.raises(DataError, match=r"holds images of 2 sizes: .*pass size=\(H, W\)") as e:
        data.load(messy)
    assert "40x50 (6 images)" in str(e.value) and "60x60 (6 images)" in str(e.value)


def test_gray_mode_and_stratified_deterministic_split(messy):
    a = data.load(messy, size=(16, 16), mode="gray", test_fraction=0.4, seed=3)
    b = data.load(messy, size=(16, 16), mode="gray", test_fraction=0.4, seed=3)
    assert a.image_shape == (16, 16, 1)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    assert a.test.counts(2) == [2, 2]  # round(6 * 0.4) cats, round(5 * 0.4) dogs


def test_train_test_subfolders(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                _img(tmp_path / split / c / f"{i}.png", "L", (8, 8), i)
    ds = data.load(tmp_path)
    assert (len(ds.train), len(ds.test)) == (6, 4)
    assert ds.info["splits"] == "train/test folders"


def test_one_class_or_no_images(tmp_path):
    (tmp_path / "only").mkdir()
    _img(tmp_path / "only" / "x.png", "L", (8, 8))
    with pytest.raises(DataError, match=r"has 1 class folder\(s\) \(only 'only'\). Expected at least two"):
        data.load(tmp_path)
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    with pytest.raises(DataError, match="holds no readable images"):
        data.load(empty)


def test_decompression_bomb_guard(tmp_path, monkeypatch):
    _img(tmp_path / "big.png", "L", (100, 100))
    monkeypatch.setattr(images, "MAX_PIXELS", 5000)
    with pytest.raises(DataError, match=r"big.png is 100x100 = 10,000 pixels, above the limit of 5,000"):
        images.decode(tmp_path / "big.png", "gray", None)


def test_check_report(messy):
    (messy / "cat" / "copy.png").write_bytes((messy / "cat" / "c0.png").read_bytes())
    r = folder.check_folder(messy)
    assert r.loads
    assert {p.name for p, _ in r.bad} == {"notes.txt", "broken.jpg"}
    assert [sorted(p.name for p in g) for g in r.duplicates] == [["c0.png", "copy.png"]]
    assert any("mixed sizes" in w for w in r.warnings)


def test_registered_dataset_conversion(home):
    ds = data.load("digits", size=(16, 16), mode="rgb")
    assert ds.image_shape == (16, 16, 3)


def test_convert_leaves_images_that_already_fit_alone():
    x = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    assert images.convert(x, (8, 8), "gray") is x  # no copy, no re-encoding
    assert images.convert(x, (4, 4), "gray").shape == (3, 4, 4, 1)
    assert images.convert(x, None, "rgb").shape == (3, 8, 8, 3)


def test_a_folder_named_like_a_dataset_does_not_shadow_it(tmp_path, monkeypatch, home):
    """`--out digits` makes a folder called digits; `digits` still means the dataset, `./digits` the folder."""
    for k in range(2):
        (tmp_path / "digits" / f"c{k}").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 4), 100 * k + i, np.uint8)).save(tmp_path / "digits" / f"c{k}" / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    ds = data.load("digits")
    assert len(ds.train) + len(ds.test) == 1797 and ds.image_shape == (8, 8, 1)
    folder = data.load("./digits")
    assert folder.classes == ("c0", "c1") and len(folder.train) + len(folder.test) == 6
    assert data.load(tmp_path / "digits").classes == ("c0", "c1")  # a Path is always a folder


def test_an_empty_class_folder_is_refused_on_load_and_reported_by_check(tmp_path, home):
    from typer.testing import CliRunner

    from cnnlab.cli import app
    from cnnlab.errors import DataError

    for k, n in (("cat", 3), ("dog", 3), ("fox", 0)):
        (tmp_path / "pets" / k).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((4, 4), 80 * i, np.uint8)).save(tmp_path / "pets" / k / f"{i}.png")
    with pytest.raises(DataError, match=r"class folder\(s\) 'fox' hold no readable images"):
        data.load(tmp_path / "pets")
    r = CliRunner().invoke(app, ["data", "check", str(tmp_path / "pets")])
    assert "'fox' hold no readable images" in r.output
