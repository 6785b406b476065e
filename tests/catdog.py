"""A folder shaped like Kaggle's Dogs vs. Cats, for the tutorial at full size (issue 27)."""

import os
from pathlib import Path

import numpy as np
from PIL import Image

CATDOG_BAD = ("cat/truncated.jpg", "cat/empty.jpg", "dog/notes.txt", "dog/broken.png")  # named once, skipped
CATDOG_SPECIAL = ("cat/gray.jpg", "cat/print.jpg", "dog/turned.jpg", "dog/alpha.png")  # odd, but photos


def make_catdog(root: Path) -> Path:
    """A folder shaped like Kaggle's Dogs vs. Cats (issue 27): 2,000 generated JPEGs of 250-500 px a side in
    cat/ and dog/ (the dogs bluer), a gray, a CMYK and an EXIF-turned JPEG, a PNG with alpha, and files people
    have lying around: truncated and zero-byte JPEGs, a text file, a PNG that is not one, hidden files."""
    rng = np.random.default_rng(27)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
    for i in range(2000):
        label = i % 2
        h, w = (int(v) for v in rng.integers(250, 501, 2))
        coarse = rng.normal(128, 45, (6, 8, 3))
        coarse[..., 2 * label] += 50  # cats redder, dogs bluer
        photo = Image.fromarray(coarse.clip(0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
        photo.save(root / ("cat", "dog")[label] / f"{i}.jpg", quality=80)
    photo = Image.open(root / "cat" / "0.jpg")
    photo.convert("L").save(root / "cat" / "gray.jpg")
    photo.convert("CMYK").save(root / "cat" / "print.jpg")
    exif = photo.getexif()
    exif[0x0112] = 6  # to be turned 90 degrees
    Image.open(root / "dog" / "1.jpg").save(root / "dog" / "turned.jpg", exif=exif)
    Image.open(root / "dog" / "3.jpg").convert("RGBA").save(root / "dog" / "alpha.png")
    whole = (root / "cat" / "2.jpg").read_bytes()
    (root / "cat" / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "dog" / "notes.txt").write_text("where these photos came from")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (root / "cat" / ".DS_Store").write_bytes(bytes(64))
    Image.open(root / "dog" / "5.jpg").save(root / "dog" / "._5.jpg")  # a hidden copy: never read
    old = os.stat(root / "cat" / "0.jpg").st_mtime - 10  # older than the cache's two "racy" seconds
    for p in root.rglob("*"):
        os.utime(p, (old, old))
    return root
