"""Keras 3 ``.keras`` files read without TensorFlow or Keras: ``zipfile`` for the archive, ``json`` for the
architecture, ``h5py`` for the weights. Nothing in the file is ever executed: a layer that carries code
(``Lambda``, a custom class) is refused, as Keras's own safe mode refuses it.

A ``.keras`` file is a zip of ``config.json`` (the model: a ``Sequential`` with its layers' configs),
``metadata.json`` and ``model.weights.h5``. In the weights, each layer's variables sit under
``layers/<path>/vars/<i>``, where ``<path>`` is the snake_case class name, numbered from the second layer
of a class on (``conv2d``, ``conv2d_1``, ...), in the order of the layers. Writing them is
:mod:`cnnlab.nn.keras_write`.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.images import MAX_UPLOAD_PIXELS
from cnnlab.errors import InputError
from cnnlab.nn import layers as L
from cnnlab.nn.model import Sequential

SUPPORTED = (
    "InputLayer",
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "Flatten",
    "Dense",
    "Dropout",
    "BatchNormalization",
    "Activation",
    "ReLU",
    "Softmax",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Rescaling",
    "Reshape",
)
MAX_INPUT_CELLS = MAX_UPLOAD_PIXELS * 4  # a declared input beyond this is refused before anything is built


class KerasFileError(InputError):
    """A Keras file cannot be read as one (exit code 2: the file given was the problem)."""


def _vars_path(counts: dict[str, int], kind: str) -> str:
    """Where the next layer of class ``kind`` keeps its variables in model.weights.h5: ``layers/conv2d/vars``,
    then ``layers/conv2d_1/vars``, ...; ``counts`` tracks the layers of each class seen so far."""
    base = _snake(kind)
    n = counts.get(base, 0)
    counts[base] = n + 1
    return f"layers/{base}{'' if n == 0 else f'_{n}'}/vars"


def _snake(name: str) -> str:
    """Keras's generic object name for a class: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _activation(value, where: str):
    if value is None or isinstance(value, str):
        return None if value in (None, "linear") else value
    raise KerasFileError(f"{where}: activation {value!r} is not a built-in name; cnnlab runs no code from a file.")


def _layer(item: dict, path: Path):
    try:
        return _layer_from(item, path)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        name = (item.get("config") or {}).get("name") if isinstance(item, dict) else None
        raise KerasFileError(
            f"{path.name}: layer {name!r} has a config cnnlab cannot read ({type(e).__name__}: {e})."
        ) from None


def _layer_from(item: dict, path: Path):
    kind, cfg = item.get("class_name"), item.get("config") or {}
    name = cfg.get("name")
    where = f"{path.name}: layer {name!r} ({kind})"
    if kind not in SUPPORTED:
        why = " It carries code, and cnnlab runs no code from a file." if kind == "Lambda" else ""
        raise KerasFileError(f"{where} is not supported.{why} Supported: {', '.join(SUPPORTED)}.")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise KerasFileError(f"{where}: data_format {cfg['data_format']!r}; cnnlab reads channels_last models.")
    if kind == "Conv2D":
        if cfg.get("groups", 1) != 1:
            raise KerasFileError(f"{where}: groups={cfg['groups']}; grouped convolutions are not supported.")
        return L.Conv2D(
            cfg["filters"],
            tuple(cfg["kernel_size"]),
            tuple(cfg.get("strides", (1, 1))),
            cfg.get("padding", "valid"),
            tuple(cfg.get("dilation_rate", (1, 1))),
            _activation(cfg.get("activation"), where),
            cfg.get("use_bias", True),
            name=name,
        )
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        cls = L.MaxPooling2D if kind == "MaxPooling2D" else L.AveragePooling2D
        strides = cfg.get("strides")
        return cls(tuple(cfg["pool_size"]), tuple(strides) if strides else None, cfg.get("padding", "valid"), name=name)
    if kind == "Dense":
        return L.Dense(cfg["units"], _activation(cfg.get("activation"), where), cfg.get("use_bias", True), name=name)
    if kind == "Dropout":
        return L.Dropout(cfg.get("rate", 0.0), name=name)
    if kind == "BatchNormalization":
        return L.BatchNormalization(
            cfg.get("momentum", 0.99),
            cfg.get("epsilon", 1e-3),
            cfg.get("center", True),
            cfg.get("scale", True),
            name=name,
        )
    if kind == "Activation":
        return L.Activation(_activation(cfg.get("activation"), where) or "linear", name=name)
    if kind == "ReLU":
        if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
            raise KerasFileError(f"{where}: only the plain ReLU (no max_value, slope or threshold) is supported.")
        return L.ReLU(name=name)
    if kind == "Softmax":
        return L.Softmax(name=name)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        if cfg.get("keepdims"):
            raise KerasFileError(f"{where}: keepdims=True is not supported.")
        return (L.GlobalAveragePooling2D if kind == "GlobalAveragePooling2D" else L.GlobalMaxPooling2D)(name=name)
    if kind == "Rescaling":
        scale, offset = cfg.get("scale", 1.0), cfg.get("offset", 0.0)
        if not all(isinstance(v, (int, float)) for v in (scale, offset)):
            raise KerasFileError(f"{where}: only one scale and one offset for all channels are supported.")
        return L.Rescaling(scale, offset, name=name)
    if kind == "Reshape":
        return L.Reshape(tuple(cfg["target_shape"]), name=name)
    return L.Flatten(name=name)


def _weights(layer, kind: str, cfg: dict, values: list[np.ndarray], where: str) -> None:
    """Copy a Keras layer's variables into the cnnlab layer, checking every shape."""

    def put(param, value, what: str):
        expected = tuple(param.shape)
        if tuple(value.shape) != expected:
            raise KerasFileError(
                f"{where}: the {what} in the weights is {tuple(value.shape)} but the config makes it {expected}."
            )
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(param.dtype).reshape(param.shape))

    if kind == "Conv2D":  # Keras HWIO -> PyTorch OIHW
        put(layer.weight, values[0].transpose(3, 2, 0, 1), "kernel")
        if layer.bias is not None:
            put(layer.bias, values[1], "bias")
    elif kind == "Dense":  # Keras (in, out) -> PyTorch (out, in)
        put(layer.weight, values[0].T, "kernel")
        if layer.bias is not None:
            put(layer.bias, values[1], "bias")
    elif kind == "BatchNormalization":
        names = [n for n, on in (("gamma", cfg.get("scale", True)), ("beta", cfg.get("center", True))) if on]
        names += ["moving_mean", "moving_variance"]
        if len(values) != len(names):
            raise KerasFileError(f"{where}: {len(values)} variables in the weights; the config makes {len(names)}.")
        targets = {"gamma": layer.weight, "beta": layer.bias, "moving_mean": layer.running_mean}
        targets["moving_variance"] = layer.running_var
        for n, v in zip(names, values, strict=True):
            put(targets[n], v, n)


def _inputs_of(item: dict) -> list[str]:
    """The layers whose outputs a functional layer takes: the names in its inbound nodes' keras_history
    (Keras 3), or the first item of each ``[layer, node, tensor, kwargs]`` of a node (Keras 2)."""
    names = []
    for node in item.get("inbound_nodes") or []:
        if isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            names += [entry[0] for entry in node if isinstance(entry, list) and entry and isinstance(entry[0], str)]
            continue
        stack = list(node.get("args", [])) if isinstance(node, dict) else []
        while stack:
            arg = stack.pop(0)
            if isinstance(arg, list):
                stack[:0] = arg
            elif isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
                names.append(arg["config"]["keras_history"][0])
    return names


def _check_chain(items: list[dict], path: Path) -> None:
    """A functional model is read when it is a chain: each layer takes the one before it, and only it."""
    for before, item in zip(items, items[1:], strict=False):
        takes = _inputs_of(item)
        name, previous = item.get("config", {}).get("name"), before.get("config", {}).get("name")
        if takes != [previous]:
            raise KerasFileError(
                f"{path.name}: layer {name!r} ({item.get('class_name')}) takes {takes or 'no input'}, not just the "
                f"layer before it ({previous!r}): the model branches, and cnnlab reads chains of layers."
            )


def _from_zip(path: Path) -> tuple[dict, callable, object]:
    """config.json, a weights reader and the open weights file, from a Keras 3 ``.keras`` archive."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise KerasFileError(f"{path} is not a .keras file (not a zip archive: {e}).") from None
    with archive:
        names = set(archive.namelist())
        for needed in ("config.json", "model.weights.h5"):
            if needed not in names:
                raise KerasFileError(f"{path} has no {needed}; a .keras file holds config.json and model.weights.h5.")
        try:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise KerasFileError(f"{path} is damaged ({type(e).__name__}: {e}).") from None
    store = _hdf5(io.BytesIO(weights), f"{path}: model.weights.h5")
    counts: dict[str, int] = {}

    def values(name: str, kind: str) -> list[np.ndarray]:  # layers/<snake class name>[_n]/vars/<i>
        group = store.get(_vars_path(counts, kind))
        return [np.asarray(group[k]) for k in sorted(group, key=int)] if group is not None else []

    return config, values, store


def _from_h5(path: Path) -> tuple[dict, callable, object]:
    """The model config, a weights reader and the open file, from a Keras 2 / tf.keras full-model ``.h5`` file."""
    store = _hdf5(path, str(path))
    raw = store.attrs.get("model_config")
    if raw is None:
        store.close()
        raise KerasFileError(f"{path} holds weights only (no model_config); save the whole model with model.save().")
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError as e:
        store.close()
        raise KerasFileError(f"{path}: model_config is not JSON ({e}).") from None
    weights = store.get("model_weights", store)

    def values(name: str, kind: str) -> list[np.ndarray]:  # model_weights/<layer>/<each of weight_names>
        group = weights.get(name)
        if group is None:
            return []
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
        return [np.asarray(group[n]) for n in names]

    return config, values, store


def _hdf5(source, what: str):
    import h5py

    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as e:
        raise KerasFileError(f"{what} is not readable HDF5 ({e}).") from None


def _input_shape(items: list[dict], path: Path) -> tuple[list[dict], list]:
    """The layers after the input, and the declared input shape: an InputLayer's batch_shape (Keras 3) or
    batch_input_shape (Keras 2), or the first layer's batch_input_shape (a Keras 2 Sequential)."""
    first = items[0].get("config", {}) if items else {}
    if items and items[0].get("class_name") == "InputLayer":
        return items[1:], (first.get("batch_shape") or first.get("batch_input_shape") or [None])[1:]
    if first.get("batch_input_shape"):
        return items, first["batch_input_shape"][1:]
    raise KerasFileError(f"{path} declares no input shape (no InputLayer, no batch_input_shape).")


def read_keras(path) -> tuple[Sequential, dict]:
    """A Keras file (``.keras``, or a Keras 2 full-model ``.h5``) as a cnnlab :class:`Sequential` with the
    Keras layer names and weights, and ``{"name", "input_shape"}``."""
    path = Path(path)
    config, values, store = _from_h5(path) if path.suffix.lower() in (".h5", ".hdf5") else _from_zip(path)
    with store:  # the HDF5 file is closed however reading ends
        return _build(path, config, values)


def _build(path: Path, config, values) -> tuple[Sequential, dict]:
    kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
    if kind not in ("Sequential", "Functional", "Model"):
        raise KerasFileError(f"{path} holds a {kind} model; cnnlab reads Sequential and functional models.")
    items = config.get("config", {}).get("layers", [])
    if kind != "Sequential":
        _check_chain(items, path)
    body, shape = _input_shape(items, path)
    if len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape) or np.prod(shape) > MAX_INPUT_CELLS:
        raise KerasFileError(f"{path} declares the input {shape}; expected (height, width, channels) within limits.")
    layers = [_layer(item, path) for item in body]
    model = Sequential(layers, name=config["config"].get("name", path.stem), input_shape=tuple(shape)).eval()
    for layer, item in zip(model.layers, body, strict=True):
        kind = item["class_name"]
        where = f"{path.name}: layer {layer.name!r} ({kind})"
        if kind in ("Conv2D", "Dense", "BatchNormalization"):
            found = values(layer.name, kind)
            if not found:
                raise KerasFileError(f"{where} has no weights in the file.")
            _weights(layer, kind, item.get("config", {}), found, where)
        else:
            values(layer.name, kind)  # keeps the .keras numbering of layers of the same class in step
    return model, {"name": model.name, "input_shape": tuple(shape)}
