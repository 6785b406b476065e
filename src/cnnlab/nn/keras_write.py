"""cnnlab models written as Keras 3 ``.keras`` files, with ``zipfile``, ``json`` and ``h5py`` (no TensorFlow):
a Sequential as Keras's Sequential, any graph as a functional model (nested models within, each with its own
layers), each layer's config and variables as its own codec gives them (:meth:`cnnlab.nn.base.Layer.keras_config`,
:meth:`~cnnlab.nn.base.Layer.keras_arrays`), put where Keras looks for them (:func:`cnnlab.nn.keras_store.vars_path`).
``keras.saving.load_model`` reads the file, and so does :func:`cnnlab.nn.keras_file.read_keras`."""

from __future__ import annotations

import collections
import io
import json
import zipfile
from pathlib import Path

from cnnlab.nn import layers as L
from cnnlab.nn.graph import Model
from cnnlab.nn.keras_store import vars_path
from cnnlab.nn.merging import Operation
from cnnlab.nn.model import Sequential, appended
from cnnlab.nn.symbolic import SymbolicTensor


def _batch(shape) -> list:
    return [None, *shape]


def _tensor(t: SymbolicTensor, history: list) -> dict:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": _batch(t.shape), "dtype": "float32", "keras_history": history},
    }


def _input_item(name: str, shape) -> dict:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "registered_name": None,
        "config": {"batch_shape": _batch(shape), "dtype": "float32", "sparse": False, "name": name},
    }


class _Writer:
    """Configs and variables of a model and the models nested in it; ``store`` is the open weights file."""

    def __init__(self, store):
        self.store = store

    def item(self, layer, input_shape, group: str, counts: dict) -> dict:
        """``layer``'s Keras config item, its variables written under ``group`` (its model's weights)."""
        place = f"{group}{vars_path(counts, layer.keras_name if not isinstance(layer, Model) else layer.kind)}"
        if isinstance(layer, Model):
            return self.model(layer, place + "/")
        for i, value in enumerate(layer.keras_arrays()):
            self.store.create_dataset(f"{place}/vars/{i}", data=value)
        self.store.require_group(f"{place}/vars")
        if isinstance(layer, Operation):
            return {
                "module": "keras.src.ops.numpy",
                "class_name": layer.op,
                "config": {"name": layer.name},
                "registered_name": layer.op,
            }
        config = {"name": layer.name, "trainable": not layer.frozen, "dtype": "float32", **layer.keras_config()}
        return {
            "module": "keras.layers",
            "class_name": layer.keras_name,
            "config": config,
            "registered_name": None,
            "build_config": {"input_shape": _shapes(input_shape)},
        }

    def model(self, model: Model, group: str = "") -> dict:
        self.store.require_group(f"{group}vars")
        if isinstance(model, Sequential):
            return self.sequential(model, group)
        return self.functional(model, group)

    def sequential(self, model: Sequential, group: str) -> dict:
        counts: dict[str, int] = {}
        items = [_input_item(f"{model.name}_input", model.input_shape)]
        items += [self.item(layer, layer.input_shape, group, counts) for layer in model.layers]
        shape = _batch(model.input_shape)
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": {
                "name": model.name,
                "trainable": not model.frozen,
                "dtype": "float32",
                "layers": items,
                "build_input_shape": shape,
            },
            "registered_name": None,
            "build_config": {"input_shape": shape},
        }

    def functional(self, model: Model, group: str) -> dict:
        counts: dict[str, int] = {}
        names = {id(t): f"{model.name}_input_{i}" if i else f"{model.name}_input" for i, t in enumerate(model._inputs)}
        items = [
            {**_input_item(names[id(t)], t.shape), "name": names[id(t)], "inbound_nodes": []} for t in model._inputs
        ]
        first = {}
        for node in model.nodes:
            first.setdefault(id(node.layer), node)
        by_layer: dict[int, dict] = {}
        for layer in keras_order(model):  # Keras numbers the weights in its own order of the layers
            node = first[id(layer)]
            shapes = [t.shape for t in node.inputs]
            item = self.item(layer, shapes if node.many else shapes[0], group, counts)
            by_layer[id(layer)] = {**item, "name": layer.name, "inbound_nodes": []}
            items.append(by_layer[id(layer)])
        calls = collections.Counter()
        history: dict[int, list] = {id(t): [names[id(t)], 0, 0] for t in model._inputs}
        for node in model.nodes:
            layer = node.layer
            tensors = [_tensor(t, history[id(t)]) for t in node.inputs]
            if isinstance(layer, Operation):
                it = iter(tensors)
                args = [next(it) if v is None else v for v in layer.operands]
            else:
                args = [tensors if node.many else tensors[0]]
            by_layer[id(layer)]["inbound_nodes"].append({"args": args, "kwargs": {}})
            history[id(node.output)] = [layer.name, calls[id(layer)], 0]
            calls[id(layer)] += 1

        def ends(tensors, many):
            entries = [history[id(t)] for t in tensors]
            return entries if many else entries[0]

        return {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": {
                "name": model.name,
                "trainable": not model.frozen,
                "layers": items,
                "input_layers": ends(model._inputs, len(model._inputs) > 1),
                "output_layers": ends(model._outputs, model._many_out),
            },
            "registered_name": "Functional",
            "build_config": {"input_shape": _shapes(model.input_shape)},
        }


def keras_order(model: Model) -> list:
    """The layers of a graph in the order Keras 3 gives a functional model's layers (``map_graph``): by depth
    (the longest path to an output), deepest first, ties in the order a depth-first walk back from the outputs
    first meets them. Keras numbers the variables of each class in that order when it loads a file."""
    first_seen, post_order, done = {}, [], set()

    def visit(tensor):
        node = tensor.node
        key = id(tensor) if node is None else id(node)
        if key in done:
            return
        first_seen.setdefault(id(node.layer) if node is not None else key, len(first_seen))
        for t in node.inputs if node is not None else ():
            visit(t)
        done.add(key)
        post_order.append(node)

    for t in model._outputs:
        visit(t)
    nodes = [n for n in post_order if n is not None]
    node_depth, layer_depth = {}, {}
    for node in reversed(nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        for t in node.inputs:
            if t.node is not None:
                node_depth[id(t.node)] = max(depth + 1, node_depth.get(id(t.node), 0))
    layers = list(dict.fromkeys(n.layer for n in nodes))
    return sorted(layers, key=lambda layer: (-layer_depth[id(layer)], first_seen[id(layer)]))


def _shapes(shape):
    return [_batch(s) for s in shape] if shape and isinstance(shape[0], (list, tuple)) else _batch(shape)


def with_probabilities(model: Model) -> Model:
    """``model`` ending in class probabilities, as ``Run.predict`` returns them: a model that ends in logits
    gets a last ``Softmax`` layer named ``probabilities`` (its layers and weights shared, nothing copied). A
    binary head (:class:`~cnnlab.nn.activations.TwoClasses`) is written as Keras has it: one unit, the
    probability of the second class (a logit gets a ``sigmoid``)."""
    last = model._outputs[0].node.layer if model._outputs[0].node is not None else None
    if isinstance(last, L.TwoClasses):
        head = model._outputs[0].node.inputs[0]
        model = Model(model._inputs[0], head, name=model.name)
        if last.of == "probability":
            return model
        return appended(model, L.Activation("sigmoid", name=_free(model, "probability")))
    if model.outputs_probabilities:
        return model
    return appended(model, L.Softmax(_free(model, "probabilities")))


def _free(model: Model, base: str) -> str:
    taken = {path.split("/")[0] for path, _ in model.walk()}
    return next(n for n in (base, *(f"{base}_{i}" for i in range(1, 999))) if n not in taken)


def write_keras(model: Model, path) -> Path:
    """``model`` as a Keras 3 ``.keras`` file (config.json, metadata.json, model.weights.h5), written atomically
    with zipfile, json and h5py: ``keras.saving.load_model`` reads it, and so does :func:`read_keras`.

    The file outputs class probabilities, as ``Run.predict`` does (:func:`with_probabilities`)."""
    import datetime

    import h5py

    from cnnlab.atomic import atomic_writer
    from cnnlab.errors import InputError

    if not isinstance(model, Model):
        raise InputError(
            "Only a cnnlab model (Sequential or Model) can be written as a Keras file; this run holds a custom model."
        )
    model = with_probabilities(model)
    weights = io.BytesIO()
    with h5py.File(weights, "w") as store:
        config = {**_Writer(store).model(model), "compile_config": None}
    saved = datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")
    metadata = {"keras_version": "3.0.0", "date_saved": saved, "written_by": "cnnlab"}
    path = Path(path)
    with atomic_writer(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights.getvalue())
    return path
