"""Model specs: a JSON or TOML list of layers with their Keras arguments, round-tripping with Sequential.

    {"name": "mine", "input_shape": [28, 28, 1],
     "layers": [{"type": "Conv2D", "filters": 32, "kernel_size": 3, "padding": "same", "activation": "relu"},
                {"type": "MaxPooling2D"}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]}

A layer may name the layers whose outputs it takes, ``"inputs": ["conv1", "conv2"]`` (``"input"`` is the
model input), which makes the spec a graph; a layer that names none takes the layer before it, so a chain
needs no ``inputs``. A bare list of layers is the same spec without a name or input shape
(``[{"type": "Conv2D", ...}, ...]``).
TOML: top-level ``name`` and ``input_shape``, then ``[[layers]]`` tables. An unknown
layer type or argument is an error that lists the valid ones.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from cnnlab import limits
from cnnlab.errors import InputError
from cnnlab.nn.budget import built_within_budget
from cnnlab.nn.graph import INPUT, Model, name_layers
from cnnlab.nn.layers import LAYERS, Input
from cnnlab.nn.model import Sequential


def layer_from_spec(item: dict, index: int):
    """One layer of a spec; ``"trainable": false`` freezes it, and ``{"type": "Model", "name", "spec": {...}}``
    is a nested model."""
    if not isinstance(item, dict) or "type" not in item:
        raise InputError(f'Layer {index + 1} of the spec has no \'type\'. Expected e.g. {{"type": "Conv2D", ...}}.')
    item = dict(item)
    trainable = item.pop("trainable", True)
    if not isinstance(trainable, bool):
        raise InputError(f"Layer {index + 1} has trainable={trainable!r}. Expected true or false.")
    layer = _layer_of(item, index)
    return layer if trainable else layer.freeze()


def _layer_of(item: dict, index: int):
    kind = item["type"]
    if kind == "Model":
        unknown = sorted(set(item) - {"type", "name", "spec"})
        if unknown or not isinstance(item.get("spec"), (dict, list)):
            raise InputError(
                f'Layer {index + 1} (Model) takes "name" and "spec" (a model spec); it has {sorted(item)}.'
            )
        inner = normalized(item["spec"], f"The spec of layer {index + 1} (Model)")
        return _from_spec({**inner, "name": item.get("name") or inner.get("name", "model")})
    cls = LAYERS.get(kind)
    if cls is None:
        raise InputError(
            f"Layer {index + 1} has unknown type {kind!r}. Expected one of: {', '.join(LAYERS)}, Model (nested)."
        )
    args = {k: v for k, v in item.items() if k != "type"}
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(args) - accepted)
    if unknown:
        raise InputError(
            f"Layer {index + 1} ({kind}) has unknown argument(s) {', '.join(unknown)}. "
            f"Expected some of: {', '.join(sorted(accepted))}."
        )
    try:
        return cls(**args)
    except InputError:
        raise  # the layer checked its arguments and says what is wrong
    except (TypeError, ValueError) as e:  # an argument of the wrong type that the layer did not check itself
        raise InputError(f"Layer {index + 1} ({kind}): {e}. Check its arguments' types.") from None


def normalized(spec, where: str = "The model spec") -> dict:
    """``spec`` as an object with "layers" (a list of objects): a bare list of layers is that list under "layers".
    Anything else is an InputError that says what was found and what a spec looks like."""
    if isinstance(spec, list):
        spec = {"layers": spec}
    if not isinstance(spec, dict):
        raise InputError(
            f"{where} is a {type(spec).__name__}. Expected a list of layers, or an object with "
            '"layers" (and optionally "name", "input_shape"): [{"type": "Conv2D", "filters": 32, ...}, ...].'
        )
    unknown = sorted(set(spec) - {"name", "input_shape", "layers"})
    if unknown:
        raise InputError(f"Unknown key(s) in {where}: {', '.join(unknown)}. Expected name, input_shape, layers.")
    layers = spec.get("layers", [])
    if not isinstance(layers, list):
        raise InputError(f'{where} has "layers" of type {type(layers).__name__}. Expected a list of layer objects.')
    return spec


def from_spec(spec, input_shape=None, num_classes: int | None = None, what: str = "The model spec") -> Model:
    """Build a model from a spec (an object, or a bare list of layers): a Sequential when no layer names its
    ``inputs``, else a graph :class:`Model`. ``input_shape`` overrides the spec's; ``num_classes`` replaces the
    units of the last Dense (for a zoo model on a dataset with another class count). The model is counted on
    the meta device first (:mod:`cnnlab.nn.budget`); ``what`` names the spec in errors."""
    try:
        return built_within_budget(lambda: _from_spec(spec, input_shape, num_classes), what)
    except InputError:
        raise
    except (AttributeError, TypeError, KeyError, ValueError, IndexError, RecursionError) as e:
        raise InputError(
            f"{what} has a value of the wrong kind ({limits.what_went_wrong(e)}). Expected "
            'layers such as {"type": "Conv2D", "filters": 32, "kernel_size": 3}.'
        ) from None


def _from_spec(spec, input_shape=None, num_classes: int | None = None) -> Model:
    spec = normalized(spec)
    for i, item in enumerate(spec.get("layers", [])):
        if not isinstance(item, dict):
            layer_from_spec(item, i)  # the error that says a layer is an object with a 'type'
    items = [dict(item) for item in spec.get("layers", [])]
    if num_classes is not None:
        dense = [i for i, item in enumerate(items) if item.get("type") == "Dense"]
        if not dense:
            raise InputError("The model has no Dense layer whose units could be set to the number of classes.")
        items[dense[-1]]["units"] = int(num_classes)
    wiring = [item.pop("inputs", None) for item in items]
    layers = [layer_from_spec(item, i) for i, item in enumerate(items)]
    shape = input_shape if input_shape is not None else spec.get("input_shape")
    if shape is None:
        raise InputError(
            'The model spec declares no input shape. Add "input_shape": [height, width, channels] to it, or give '
            "one: --input H,W,C (cnnlab train takes it from the data)."
        )
    if all(w is None for w in wiring):
        return Sequential(layers, name=spec.get("name", "sequential"), input_shape=shape)
    return _graph(layers, wiring, shape, spec.get("name", "model"))


def _graph(layers, wiring, shape, name: str) -> Model:
    """A graph spec: each layer takes the outputs of the layers its ``inputs`` name (``"input"`` is the model
    input), or of the layer before it; the last layer's output is the model's."""
    name_layers(layers)
    if any(layer.name == INPUT for layer in layers):
        raise InputError(f"A layer of a graph spec is named {INPUT!r}, which names the model input. Rename it.")
    made = {INPUT: Input(shape)}
    previous = INPUT
    for layer, wanted in zip(layers, wiring, strict=True):
        names = [previous] if wanted is None else wanted
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise InputError(f"Layer '{layer.name}' has inputs={wanted!r}. Expected a list of layer names.")
        missing = [n for n in names if n not in made]
        if missing:
            later = {lay.name for lay in layers}
            why = (
                "its own output: a cycle, which no model can compute"
                if missing[0] == layer.name
                else "which comes after it: a graph spec lists each layer after the layers it takes, so a cycle "
                "cannot be written"
                if missing[0] in later
                else "which is not the output of a layer before it"
            )
            raise InputError(f"Layer '{layer.name}' takes {missing[0]!r}, {why}. Expected some of: {', '.join(made)}.")
        if len(names) > 1 and not layer.takes_many:
            raise InputError(f"{layer.kind} '{layer.name}' takes one input; its inputs name {len(names)}.")
        tensors = [made[n] for n in names]
        made[layer.name] = layer(tensors if layer.takes_many else tensors[0])
        previous = layer.name
    return Model(made[INPUT], made[previous], name=name)


def read_spec(path) -> dict:
    """A spec file (JSON or TOML) as a spec object (:func:`normalized`), its size and depth bounded
    (:mod:`cnnlab.limits`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Model spec {path} does not exist. Expected a .json or .toml file, or a zoo name.")
    value = limits.read_parsed(path, f"Model spec {path}")
    return normalized(value, f"Model spec {path}")
