"""Issue 27, first part: a folder decoded in parallel worker processes gives exactly what one process gives, the
DCT-domain draft of a large JPEG is nearly the full decode resized, and the files are counted on a bar."""

import numpy as np
import pytest
from PIL import Image

from cnnlab import data
from cnnlab.data import decoding, images, jpeg


def photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth picture (as a photo is), not noise: gradients and a disc, so JPEG and resizing behave as on photos."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    a = np.stack([yy * 200 + 30, xx * 180 + 40, (yy + xx) * 90 + 20], -1)
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
    a[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.integers(0, 255, 3)
    return np.clip(a, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    """300 JPEGs of 40-90 px in two classes, a truncated one and an empty one: enough to go parallel."""
    root = tmp_path_factory.mktemp("pets")
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir()
    for i in range(300):
        h, w = rng.integers(40, 90, 2)
        Image.fromarray(photo(h, w, i)).save(root / ("cat", "dog")[i % 2] / f"{i:03d}.jpg", quality=90)
    whole = (root / "cat" / "000.jpg").read_bytes()
    (root / "cat" / "broken.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "dog" / "empty.jpg").write_bytes(b"")
    return root


def test_parallel_decoding_gives_exactly_what_one_process_gives(pets):
    paths = sorted(pets.rglob("*.jpg"))
    assert len(paths) >= decoding.PARALLEL_FROM
    one = decoding.decode_all(paths, "rgb", (32, 32), processes=1)
    many = decoding.decode_all(paths, "rgb", (32, 32), processes=2)
    np.testing.assert_array_equal(many[0], one[0])
    np.testing.assert_array_equal(many[1], one[1])
    assert [p.name for p, _ in many[2]] == [p.name for p, _ in one[2]] == ["broken.jpg", "empty.jpg"]
    # and each image is what decoding that one file gives
    for i in (0, 7, 150):
        k = int(np.flatnonzero(one[1] == i)[0]) if i in one[1] else None
        if k is not None:
            np.testing.assert_array_equal(one[0][k], images.decode(paths[i], "rgb", (32, 32), draft=True))


def test_a_folder_load_names_each_bad_file_once_and_keeps_every_other(pets):
    ds = data.load(pets, size=(32, 32), mode="rgb")
    assert len(ds.train) + len(ds.test) == 300
    names = sorted(b["path"].rsplit("/", 1)[-1] for b in ds.info["bad_files"])
    assert names == ["broken.jpg", "empty.jpg"]


def test_the_draft_of_a_large_jpeg_is_nearly_the_full_decode_resized(tmp_path):
    big = photo(960, 1280, 3)
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, quality=92)
    with Image.open(path) as im:  # the reference: every pixel decoded, then Pillow's bilinear resize
        full = np.asarray(im.convert("RGB").resize((80, 60), Image.Resampling.BILINEAR))
    drafted = images.decode(path, "rgb", (60, 80), draft=True)
    assert drafted.shape == full.shape == (60, 80, 3)
    assert np.abs(drafted.astype(int) - full).mean() < 2.0  # of 255 levels
    middle = tmp_path / "middle.jpg"  # under twice the target (libjpeg-turbo's 6/8 would do): decoded whole
    Image.fromarray(photo(100, 120, 4)).save(middle, quality=92)
    small = tmp_path / "small.jpg"  # no larger than the target: decoded whole
    Image.fromarray(photo(50, 70, 4)).save(small)
    for whole in (middle, small):  # exactly as without draft
        np.testing.assert_array_equal(
            images.decode(whole, "rgb", (60, 80), draft=True), images.decode(whole, "rgb", (60, 80))
        )


def test_a_jpeg_with_or_without_exif_or_in_cmyk_is_scaled_alike(tmp_path):
    """A JPEG saying nothing of its orientation skips Pillow's header pass; one with an EXIF block (here
    upright) goes through Pillow: the same pixels come out. A CMYK one is drafted by Pillow, still close."""
    pixels = photo(480, 640, 6)
    plain, tagged, cmyk = tmp_path / "plain.jpg", tmp_path / "tagged.jpg", tmp_path / "cmyk.jpg"
    exif = Image.Exif()
    exif[0x0112] = 1
    Image.fromarray(pixels).save(plain, quality=92)
    Image.fromarray(pixels).save(tagged, quality=92, exif=exif)
    Image.fromarray(pixels).convert("CMYK").save(cmyk, quality=92)
    assert plain.read_bytes() != tagged.read_bytes()
    a, b = (images.decode(p, "rgb", (90, 120), draft=True) for p in (plain, tagged))
    np.testing.assert_array_equal(a, b)
    gray = images.decode(plain, "gray", (90, 120), draft=True)
    assert gray.shape == (90, 120, 1)
    with Image.open(plain) as im:
        full = np.asarray(im.convert("L").resize((120, 90), Image.Resampling.BILINEAR))
    assert np.abs(gray[:, :, 0].astype(int) - full).mean() < 2.0
    with Image.open(cmyk) as im:
        full = np.asarray(im.convert("RGB").resize((120, 90), Image.Resampling.BILINEAR))
    assert np.abs(images.decode(cmyk, "rgb", (90, 120), draft=True).astype(int) - full).mean() < 2.0


def test_the_draft_keeps_an_exif_rotated_photo_upright(tmp_path):
    pixels = photo(640, 960, 5)  # stored wide; orientation 6 says: turn it a quarter to stand tall
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=92)
    drafted = images.decode(path, "rgb", (120, 80), draft=True)
    full = images.decode(path, "rgb", (120, 80))
    assert drafted.shape == full.shape == (120, 80, 3)
    assert np.abs(drafted.astype(int) - full).mean() < 2.0


class Bar:
    def __init__(self, seen, description, unit):
        self.seen, self.total = seen, None
        seen.update(description=description, unit=unit, done=0)

    def update(self, n):
        self.seen["done"] += n

    def close(self):
        self.seen["closed"] = self.total


def test_the_files_are_counted_on_a_progress_bar(pets):
    seen = {}
    data.load(pets, size=(16, 16), progress=lambda d, indeterminate=False, unit="bytes": Bar(seen, d, unit))
    assert seen["unit"] == "files" and seen["done"] == seen["closed"] == 300 + 1  # the empty file fails at scan
    assert "decoding 301 images" in seen["description"]


def test_cnnlab_train_shows_the_decoding_of_a_folder(pets, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cnnlab.cli import app

    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    argv = ["train", "--data", str(pets), "--size", "16,16", "--epochs", "1", "--out", str(tmp_path / "r")]
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 0, r.output
    assert "decoding 301 images" in r.stderr and "301/301" in r.stderr


def _jpeg(path, pixels, **save):
    Image.fromarray(pixels).save(path, quality=92, **save)
    return path


def test_a_jpeg_goes_past_pillow_only_when_no_header_of_it_can_turn_it(tmp_path):
    """The header walk sends a JPEG to Pillow exactly when Pillow would find an EXIF block or an XMP
    orientation in it; text that only looks like one (in a comment) does not count, as it does not for Pillow."""
    pixels = photo(300, 400, 7)
    turned = Image.Exif()
    turned[0x0112] = 6
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    files = {
        "plain": _jpeg(tmp_path / "plain.jpg", pixels),
        "exif": _jpeg(tmp_path / "exif.jpg", pixels, exif=turned),
        "xmp": _jpeg(tmp_path / "xmp.jpg", pixels, xmp=xmp),
        "comment": _jpeg(tmp_path / "comment.jpg", pixels, comment=b"Exif\x00\x00 tiff:Orientation"),
    }
    for name, path in files.items():
        with Image.open(path) as im:  # the reference: what Pillow's own header pass finds
            pillow_may_turn = "exif" in im.info or "tiff:Orientation" in str(im.info.get("xmp", ""))
        assert jpeg.says_upright(path.read_bytes()) is not pillow_may_turn, name
    assert jpeg.says_upright(files["plain"].read_bytes()[:40]) is False  # cut before its first scan
    assert jpeg.says_upright(b"\xff\xd8\x00\x00\x00\x00") is False  # not a marker where one belongs
    # the comment's look-alike text changes nothing: it decodes as the plain file does
    a, b = (images.decode(files[n], "rgb", (75, 100), draft=True) for n in ("plain", "comment"))
    np.testing.assert_array_equal(a, b)
    upright = images.decode(files["xmp"], "rgb", (100, 75), draft=True)  # the XMP's turn is kept
    assert upright.shape == (100, 75, 3)


def test_a_scaled_decode_is_libjpeg_turbos_scale_then_pillows_bilinear_resize(tmp_path):
    """The definition, step by step with the libraries themselves: the smallest of libjpeg-turbo's scales
    1/8-4/8 that covers the size (a side at M/8 is ceil(side * M / 8)), else the whole file, as RGB (or Pillow's
    gray of it), then Pillow's bilinear resize, to within 1 of 255 levels (cnnlab computes that resize with
    fast_image_resize, which rounds its own way)."""
    import simplejpeg

    path = _jpeg(tmp_path / "p.jpg", photo(333, 451, 8))
    cases = (("rgb", (60, 80), 2), ("rgb", (100, 100), 3), ("gray", (50, 70), 2), ("rgb", (160, 220), 4))
    cases += (("rgb", (200, 300), 8), ("rgb", (400, 500), 8))  # 5/8-7/8 would cover (200, 300): whole instead
    for mode, size, eighths in cases:
        side = -(-333 * eighths // 8)  # the scale's height: asking for it picks that scale
        scaled = simplejpeg.decode_jpeg(path.read_bytes(), colorspace="RGB", min_height=side, min_width=1)
        assert scaled.shape[0] == side
        im = Image.fromarray(scaled).convert("L" if mode == "gray" else "RGB")
        want = np.asarray(im.resize((size[1], size[0]), Image.Resampling.BILINEAR)).astype(int)
        got = images.decode(path, mode, size, draft=True).astype(int)
        assert np.abs((got[:, :, 0] if mode == "gray" else got) - want).max() <= 1


def _antialiased_bilinear(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of bilinear resampling with antialiasing, from its definition: output pixel i is
    centred at (i + 0.5) * n_in / n_out in the input; where the image shrinks, the triangle filter is widened
    by the scale (each output pixel averages the input pixels it covers); the weights sum to 1."""
    scale = n_in / n_out
    width = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale
    x = np.arange(n_in) + 0.5
    w = np.clip(1 - np.abs(x[None, :] - centre[:, None]) / width, 0, None)
    return w / w.sum(axis=1, keepdims=True)


def test_cnnlabs_resize_is_antialiased_bilinear_by_its_definition():
    """images.resize against NumPy's resampling by the weights above, up and down, gray and colour, on noise
    (where any misplaced weight shows): within 1 of 255 levels (the kernels round in fixed point)."""
    rng = np.random.default_rng(3)
    for (h, w, c), (th, tw) in [((37, 53, 3), (100, 100)), ((137, 135, 3), (100, 100)), ((300, 41, 1), (28, 90))]:
        a = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        rows, cols = _antialiased_bilinear(h, th), _antialiased_bilinear(w, tw)
        want = np.einsum("ij,jkc,lk->ilc", rows, a.astype(np.float64), cols)
        got = images.resize(a, (th, tw))
        assert got.shape == (th, tw, c) and got.dtype == np.uint8
        assert np.abs(got - want).max() <= 1.0
