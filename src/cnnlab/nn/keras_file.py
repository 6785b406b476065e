"""Keras files read without TensorFlow or Keras: ``zipfile`` for a ``.keras`` archive, ``json`` for the
architecture, ``h5py`` for the weights. Nothing in the file is ever executed: a layer that carries code
(``Lambda``, a custom class) is refused, as Keras's own safe mode refuses it.

The reader only walks the graph: each layer class reads its own Keras config and variables
(:meth:`cnnlab.nn.base.Layer.from_keras`, :meth:`~cnnlab.nn.base.Layer.load_keras_arrays`). A model's config
lists its layers (nested models among them, with their own lists) and each layer's inbound nodes: the
tensors it was called on, ``keras_history = [layer, node, tensor]``, where ``node`` counts the calls of that
layer within this model. Keras 3 also saves operation nodes (``x + 3.0`` is ``keras.src.ops.numpy.Add``).

Opening the file and reading the weights is :mod:`cnnlab.nn.keras_store`; writing is
:mod:`cnnlab.nn.keras_write`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from cnnlab import limits
from cnnlab.errors import InputError, ShapeError
from cnnlab.nn.budget import built_within_budget
from cnnlab.nn.graph import Model
from cnnlab.nn.keras_store import MODELS, KerasFileError, load_weights, open_h5, open_keras, where_in
from cnnlab.nn.layers import VOCABULARY, Input
from cnnlab.nn.merging import OPERATIONS, Operation
from cnnlab.nn.model import Sequential
from cnnlab.nn.reshaping import AUGMENTATIONS, Augmentation

READERS = {cls.keras_class or cls.kind: cls.from_keras for cls, _ in VOCABULARY if cls not in (Augmentation, Operation)}
READERS.update({name: functools.partial(Augmentation.from_keras, keras_class=name) for name in AUGMENTATIONS})


def _activation(value, where: str):
    if value is None or isinstance(value, str):
        return value
    raise KerasFileError(f"{where}: activation {value!r} is not a built-in name; cnnlab runs no code from a file.")


def _layer(item: dict, path: Path):
    """One layer from its Keras config, by its class's own reader."""
    kind, cfg = item.get("class_name"), item.get("config") or {}
    where = where_in(path, item)
    if not isinstance(cfg, dict):
        raise KerasFileError(f"{where}: its config is a {type(cfg).__name__}; Keras writes an object.")
    if _is_operation(item):
        return _operation(item, where)
    if kind not in READERS:
        why = " It carries code, and cnnlab runs no code from a file." if kind == "Lambda" else ""
        raise KerasFileError(f"{where} is not supported.{why} Supported: {', '.join(sorted(READERS))}.")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise KerasFileError(f"{where}: data_format {cfg['data_format']!r}; cnnlab reads channels_last models.")
    if "activation" in cfg:
        cfg = {**cfg, "activation": _activation(cfg["activation"], where)}
    if kind == "LeakyReLU" and "alpha" in cfg and "negative_slope" not in cfg:  # Keras 2's name
        cfg = {**cfg, "negative_slope": cfg["alpha"]}
    try:
        layer = READERS[kind](cfg)
    except InputError as e:
        raise KerasFileError(f"{where}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise KerasFileError(f"{where} has a config cnnlab cannot read ({type(e).__name__}: {e}).") from None
    return layer.freeze() if cfg.get("trainable") is False else layer


def _operation(item: dict, where: str) -> Operation:
    """A Keras 3 operation node: numbers stay in their places, tensors become the node's inputs."""
    kind = item.get("class_name")
    nodes = item.get("inbound_nodes") or []
    if kind not in OPERATIONS or len(nodes) != 1 or nodes[0].get("kwargs"):
        raise KerasFileError(
            f"{where}: the operation {kind} is not one cnnlab computes. Supported: {', '.join(OPERATIONS)} of "
            "tensors and numbers."
        )
    operands = [None if _is_tensor(a) else a for a in nodes[0].get("args", [])]
    try:
        return Operation(kind, operands, name=(item.get("config") or {}).get("name"))
    except InputError as e:
        raise KerasFileError(f"{where}: {e}") from None


def _is_operation(item: dict) -> bool:
    """A Keras 3 operation node (``keras.src.ops...``), not a layer."""
    return str(item.get("module", "")).startswith("keras.src.ops")


def _is_tensor(arg) -> bool:
    return isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__"


def _calls(item: dict) -> list[list[tuple[str, int, int]]]:
    """Each call of a layer within its model: the tensors it took, as (layer, node, tensor). Keras 3 keeps a
    call's ``args`` (its first is a tensor, or a list of them for a merge); Keras 2 keeps a list of
    ``[layer, node, tensor, kwargs]``."""
    calls = []
    for node in item.get("inbound_nodes") or []:
        if isinstance(node, list):  # Keras 2
            calls.append([(e[0], int(e[1]), int(e[2])) for e in node if isinstance(e, list) and len(e) >= 3])
            continue
        args = node.get("args", []) if isinstance(node, dict) else []
        found, stack = [], list(args if _is_operation(item) else args[:1])
        while stack:
            arg = stack.pop(0)
            if isinstance(arg, list):
                stack[:0] = arg
            elif _is_tensor(arg):
                history = arg["config"]["keras_history"]
                found.append((history[0], int(history[1]), int(history[2])))
        calls.append(found)
    return calls


def _shape_of(cfg: dict, where: str) -> tuple[int, ...]:
    shape = (cfg.get("batch_shape") or cfg.get("batch_input_shape") or [None]) if isinstance(cfg, dict) else None
    shape = shape[1:] if isinstance(shape, list) else None
    fits = isinstance(shape, list) and len(shape) == 3
    if not fits or not all(type(v) is int and v > 0 for v in shape) or math.prod(shape) > limits.MAX_INPUT_CELLS:
        raise KerasFileError(
            f"{where} declares the input {shape}; expected [height, width, channels] of at most "
            f"{limits.MAX_INPUT_CELLS:,} values."
        )
    return tuple(shape)


def _model(item: dict, path: Path):
    """A Keras model config (Sequential or functional, nested ones within) as a cnnlab model, and its layers'
    configs in the order the weights follow: [(layer, item)], a nested model's item with its own list."""
    kind, cfg = item.get("class_name"), item.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise KerasFileError(f"{path.name} holds a {kind} model without a list of layers.")
    items = [i for i in cfg["layers"] if isinstance(i, dict)]
    name = cfg.get("name") or path.stem
    if kind == "Sequential":
        return _sequential(items, path, name, cfg)
    return _functional(items, path, name, cfg)


def _sequential(items, path, name, cfg):
    first, input_shape = (items[0].get("config", {}) if items else {}), None
    if items and items[0].get("class_name") == "InputLayer":
        input_shape, items = _shape_of(first, f"{path.name}: model {name!r}"), items[1:]
    elif first.get("batch_input_shape") or cfg.get("build_input_shape"):
        input_shape = _shape_of(
            first if first.get("batch_input_shape") else {"batch_shape": cfg["build_input_shape"]}, path.name
        )
    if input_shape is None:
        raise KerasFileError(f"{path.name} declares no input shape (no InputLayer, no batch_input_shape).")
    built = [_any(i, path) for i in items]
    try:
        model = Sequential([b[0] for b in built], name=name, input_shape=input_shape)
    except ShapeError as e:
        raise KerasFileError(f"{path.name}: {e}") from None
    return model, [(b[0], i, b[1]) for b, i in zip(built, items, strict=True)]


def _any(item, path):
    """A layer or a nested model, and (for a nested model) its own weights order."""
    if item.get("class_name") in MODELS:
        model, order = _model(item, path)
        return (model.freeze() if item["config"].get("trainable") is False else model), order
    return _layer(item, path), None


def _functional(items, path, name, cfg):
    made: dict[tuple[str, int, int], object] = {}
    inputs, built, pending = {}, {}, []
    for item in items:
        layer_name = (item.get("config") or {}).get("name") or item.get("name")
        if item.get("class_name") == "InputLayer":
            inputs[layer_name] = made[(layer_name, 0, 0)] = Input(_shape_of(item["config"], where_in(path, item)))
            continue
        built[layer_name] = _any(item, path)
        pending += [(layer_name, k, call) for k, call in enumerate(_calls(item))]
    while pending:  # every call whose tensors are made, until none is left (a shared layer's later calls wait)
        ready = [p for p in pending if all(t in made for t in p[2])]
        if not ready:
            layer_name, _, call = pending[0]
            missing = next(t for t in call if t not in made)
            raise KerasFileError(f"{path.name}: layer {layer_name!r} takes {missing[0]!r}, which no layer makes.")
        for layer_name, k, call in ready:
            layer = built[layer_name][0]
            tensors = [made[t] for t in call]
            try:
                made[(layer_name, k, 0)] = layer(
                    tensors if getattr(layer, "takes_many", False) or len(tensors) != 1 else tensors[0]
                )
            except (ShapeError, InputError) as e:
                raise KerasFileError(f"{path.name}: {e}") from None
        pending = [p for p in pending if p not in ready]
    ends = [_ends(cfg.get(key), path, key) for key in ("input_layers", "output_layers")]
    try:
        ins, outs = ([made[t] for t in e] for e in ends)
    except KeyError as e:
        raise KerasFileError(
            f"{path.name}: the model's inputs or outputs name {e.args[0]!r}, which no layer makes."
        ) from None
    model = Model(ins if len(ins) > 1 else ins[0], outs if len(outs) > 1 else outs[0], name=name)
    order = []
    for item in items:
        layer_name = (item.get("config") or {}).get("name") or item.get("name")
        if item.get("class_name") != "InputLayer" and not _is_operation(item):
            order.append((built[layer_name][0], item, built[layer_name][1]))
    return model, order


def _ends(value, path: Path, key: str) -> list[tuple[str, int, int]]:
    if not isinstance(value, list) or not value:
        raise KerasFileError(f"{path.name}: the model config has no {key}.")
    entries = value if isinstance(value[0], list) else [value]
    return [(e[0], int(e[1]), int(e[2])) for e in entries]


def read_keras(path, allow_nonfinite: bool = False) -> tuple[Model, dict]:
    """A Keras file (``.keras``, or a Keras 2 full-model ``.h5``) as a cnnlab model (a Sequential, or a graph
    :class:`Model` with nested models) with the Keras layer names and weights, and ``{"name", "input_shape"}``.
    The model is counted before it is built (:mod:`cnnlab.nn.budget`) and every weight is checked before it is
    read; NaN or infinite weights are refused unless ``allow_nonfinite`` (then a warning)."""
    path = Path(path)
    if not path.is_file():
        raise KerasFileError(f"{path} does not exist or is not a file. Expected a .keras or .h5 Keras file.")
    config, weights, store = open_h5(path) if path.suffix.lower() in (".h5", ".hdf5") else open_keras(path)
    with store:  # the HDF5 file is closed however reading ends
        kind = config.get("class_name") if isinstance(config, dict) else f"JSON {type(config).__name__}"
        if kind not in MODELS:
            raise KerasFileError(f"{path.name} holds a {kind} model; cnnlab reads Sequential and functional models.")
        try:
            model, order = built_within_budget(
                lambda: _model(config, path), path.name, KerasFileError, model_of=lambda built: built[0]
            )
            load_weights(order, weights, path, allow_nonfinite)
        except InputError:
            raise  # cnnlab's own words for what is wrong
        except limits.MALFORMED as e:  # a config or weights file of a form Keras never writes
            raise KerasFileError(
                f"{path.name} is not a Keras model file cnnlab can read: its config or weights have a form Keras "
                f"does not write ({limits.what_went_wrong(e)})."
            ) from None
    model.eval()
    return model, {"name": model.name, "input_shape": tuple(model.input_shape)}
