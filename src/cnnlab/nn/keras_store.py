"""What a Keras file holds besides its graph: the archive or HDF5 file opened within bounds, and each layer's
variables found and checked before they are read.

Weights: in a ``.keras`` file's ``model.weights.h5``, a model's layers keep their variables under
``layers/<snake_case class>[_<n>]/vars/<i>``, numbered by class in the order of the model's layers
(``conv2d``, ``conv2d_1``, ...), a nested model's under its own ``layers/<class>/layers/...``. In a Keras 2
full-model ``.h5``, under ``model_weights/<layer>`` in the order of its ``weight_names`` (a nested model's
group holds all of its layers', each name's last folder naming the layer). Every step into the HDF5 file is
a hard link (an external or soft link could lead to another file), every variable a dataset stored in the
file, of numbers, no larger than its layer's weights, and finite (:mod:`cnnlab.limits`).
"""

from __future__ import annotations

import contextlib
import math
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from cnnlab import limits
from cnnlab.errors import InputError

MODELS = ("Sequential", "Functional", "Model")


class KerasFileError(InputError):
    """A Keras file cannot be read as one (exit code 2: the file given was the problem)."""


def _snake(name: str) -> str:
    """Keras's generic object name for a class: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def vars_path(counts: dict[str, int], kind: str) -> str:
    """Where the next layer of class ``kind`` of a model keeps its variables in model.weights.h5:
    ``layers/conv2d``, then ``layers/conv2d_1``, ...; ``counts`` tracks the layers of each class seen so far."""
    base = _snake(kind)
    n = counts.get(base, 0)
    counts[base] = n + 1
    return f"layers/{base}{'' if n == 0 else f'_{n}'}"


def _member(group, key: str, what: str):
    """``group[key]`` (a path of folders), every step a link within the file: an HDF5 external or soft link
    (which Keras never writes) could lead to another file, and is refused before it is followed."""
    import h5py

    for part in [p for p in key.split("/") if p]:
        if not isinstance(group, h5py.Group):
            raise KerasFileError(f"{what}: {key!r} passes through a dataset where a group belongs.")
        link = group.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise KerasFileError(
                f"{what}: {key!r} is a {type(link).__name__}; cnnlab reads only weights stored in the file itself."
            )
        group = group[part]
    return group


def _attribute(obj, name: str, what: str):
    """An HDF5 attribute, its stored size checked before it is read (at most ``limits.MAX_TEXT_BYTES``)."""
    if name not in obj.attrs:
        return None
    try:
        size = obj.attrs.get_id(name).get_storage_size()
    except RuntimeError:  # a variable-length string: no size before it is read, and no larger than the file
        size = 0
    if size > limits.MAX_TEXT_BYTES:
        raise KerasFileError(f"{what}: the attribute {name} stores {limits.megabytes(size)}; refused.")
    value = obj.attrs[name]
    if len(value) > limits.MAX_TEXT_BYTES if isinstance(value, (str, bytes)) else False:
        raise KerasFileError(f"{what}: the attribute {name} is longer than {limits.megabytes(limits.MAX_TEXT_BYTES)}.")
    return value


class _KerasWeights:
    """The variables of one model's layers in a ``.keras`` file's weights, in the order of its layers."""

    def __init__(self, group, what: str = ""):
        self.group, self.counts, self.what = group, {}, what

    def take(self, name: str, kind: str) -> tuple[list, _KerasWeights | None]:
        """The next layer's variables, and the weights of its own layers (for a nested model)."""
        where = vars_path(self.counts, kind)
        group = _member(self.group, where, self.what) if self.group is not None else None
        if group is None:
            return [], _KerasWeights(None, self.what)
        found = _member(group, "vars", self.what)
        keys = list(found) if found is not None else []
        if any(not k.isdigit() for k in keys):
            raise KerasFileError(f"{self.what}: {where}/vars holds {keys[:5]}; Keras numbers variables 0, 1, ...")
        values = [_member(found, k, self.what) for k in sorted(keys, key=int)]
        return values, _KerasWeights(group, self.what)


class _H5Weights:
    """The variables of one model's layers in a Keras 2 full-model ``.h5`` file (``model_weights``)."""

    def __init__(self, group, names=None, what: str = ""):
        self.group, self.names, self.what = group, names, what  # names: within a nested model, its weight_names

    def take(self, name: str, kind: str) -> tuple[list, _H5Weights | None]:
        if self.names is not None:  # inside a nested model's group: the names whose last folder is this layer
            own = [n for n in self.names if n.split("/")[-2:-1] == [name]]
            if kind in MODELS:
                inner = [n for n in self.names if name in n.split("/")[:-1]] or self.names
                return [], _H5Weights(self.group, inner, self.what)
            return [_member(self.group, n, self.what) for n in own], None
        group = _member(self.group, name, self.what) if self.group is not None else None
        if group is None:
            return [], _H5Weights(None, [], self.what)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _attribute(group, "weight_names", self.what)]
        if kind in MODELS:
            return [], _H5Weights(group, names, self.what)
        return [_member(group, n, self.what) for n in names], None


def where_in(path: Path, item: dict) -> str:
    cfg = item.get("config") if isinstance(item, dict) else None
    name = cfg.get("name") if isinstance(cfg, dict) else None
    return f"{path.name}: layer {name!r} ({item.get('class_name') if isinstance(item, dict) else '?'})"


def _arrays(values: list, layer, where: str, allow_nonfinite: bool) -> list[np.ndarray]:
    """The layer's variables read from their HDF5 datasets, each checked before it is read: a dataset (not a
    group), stored in the file, of numbers, no larger than the layer's own weights; then finite."""
    import h5py

    room = sum(p.numel() for p in layer.parameters()) + sum(b.numel() for b in layer.buffers())
    arrays = []
    for v in values:
        if not isinstance(v, h5py.Dataset):
            raise InputError(f"a variable is a {type(v).__name__}, not a dataset of numbers")
        if v.external or v.is_virtual:
            raise InputError("a variable's values are stored outside the file; refused")
        if v.dtype.kind not in "fiub" or math.prod(v.shape) > max(room, 1):
            raise InputError(f"a variable is {v.shape} of {v.dtype}; the layer holds {room:,} numbers in all")
        try:
            arrays.append(np.asarray(v))
        except (OSError, ValueError, TypeError) as e:
            raise InputError(f"a variable cannot be read ({type(e).__name__}: {e})") from None
        if arrays[-1].dtype.kind == "f" and not np.isfinite(arrays[-1]).all():
            limits.refuse_nonfinite(f"{where}: a variable", allow_nonfinite, InputError)
    return arrays


def load_weights(order, weights, path: Path, allow_nonfinite: bool = False) -> None:
    """Each layer's variables, in the order of its model's layers (a nested model's within its own)."""
    for layer, item, inner in order:  # (InputLayers hold no variables and are numbered as a class of their own)
        values, own = weights.take(layer.name, item.get("class_name"))
        if inner is not None:
            load_weights(inner, own, path, allow_nonfinite)
            continue
        expected = [a for a, _, _ in layer.keras_variables if getattr(layer, a, None) is not None]
        if expected and not values:
            raise KerasFileError(f"{where_in(path, item)} has no weights in the file.")
        try:
            layer.load_keras_arrays(_arrays(values, layer, where_in(path, item), allow_nonfinite))
        except InputError as e:
            message = str(e).removeprefix(where_in(path, item) + ": ").rstrip(".")
            raise KerasFileError(f"{where_in(path, item)}: {message}.") from None


def open_keras(path: Path):
    """config.json and the open weights file, from a Keras 3 ``.keras`` archive: each member checked against
    its declared size and streamed with a cap; the weights go to a temporary file, not to memory."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise KerasFileError(f"{path.name} is not a .keras file (not a zip archive: {e}).") from None
    with archive:
        names = set(archive.namelist())
        for needed in ("config.json", "model.weights.h5"):
            if needed not in names:
                raise KerasFileError(
                    f"{path.name} has no {needed}; a .keras file holds config.json and model.weights.h5."
                )
        config = limits.parse(
            limits.read_member(archive, "config.json", path.name, KerasFileError),
            f"{path.name}: config.json",
            error=KerasFileError,
        )
        files = contextlib.ExitStack()  # the temporary file, removed when closed (or when cnnlab is killed)
        spool = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
        try:
            limits.copy_member(archive, "model.weights.h5", spool, limits.MAX_WEIGHTS_BYTES, path.name, KerasFileError)
            spool.seek(0)
            store = files.enter_context(_hdf5(spool, f"{path.name}: model.weights.h5"))
        except BaseException:
            files.close()
            raise
    return config, _KerasWeights(store, f"{path.name}: model.weights.h5"), files


def open_h5(path: Path):
    """The model config and the open file, from a Keras 2 / tf.keras full-model ``.h5`` file."""
    size = path.stat().st_size
    if size > limits.MAX_WEIGHTS_BYTES + limits.MAX_TEXT_BYTES:
        raise KerasFileError(f"{path.name} is {limits.megabytes(size)}, larger than any model cnnlab reads.")
    store = _hdf5(path, path.name)
    try:
        raw = _attribute(store, "model_config", path.name)
        if raw is None:
            raise KerasFileError(
                f"{path.name} holds weights only (no model_config); save the whole model with model.save()."
            )
        raw = raw.encode() if isinstance(raw, str) else raw
        if not isinstance(raw, bytes):
            raise KerasFileError(f"{path.name}: model_config is a {type(raw).__name__}, not JSON text.")
        config = limits.parse(raw, f"{path.name}: model_config", error=KerasFileError)
        weights = _member(store, "model_weights", path.name)
    except BaseException:
        store.close()
        raise
    return config, _H5Weights(weights if weights is not None else store, what=path.name), store


def _hdf5(source, what: str):
    import h5py

    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as e:
        raise KerasFileError(f"{what} is not readable HDF5 ({e}).") from None
