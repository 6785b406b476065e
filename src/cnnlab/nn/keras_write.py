"""cnnlab models written as Keras 3 ``.keras`` files, with ``zipfile``, ``json`` and ``h5py`` (no TensorFlow):
each layer's config as Keras names it and its variables where Keras looks for them
(:func:`cnnlab.nn.keras_file._vars_path`), so ``keras.saving.load_model`` reads the file, and so does
:func:`cnnlab.nn.keras_file.read_keras`."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from cnnlab.errors import InputError
from cnnlab.nn import layers as L
from cnnlab.nn.keras_file import _vars_path
from cnnlab.nn.model import Sequential


def _keras_config(layer) -> tuple[str, dict]:
    """A cnnlab layer as Keras 3 names it: (class_name, config)."""
    kind = layer.kind
    base = {"name": layer.name, "trainable": True, "dtype": "float32"}
    last = {"data_format": "channels_last"}
    if kind == "Conv2D":
        return kind, {
            **base,
            "filters": layer.filters,
            "kernel_size": list(layer.kernel_size),
            "strides": list(layer.strides),
            "padding": layer.padding,
            **last,
            "dilation_rate": list(layer.dilation_rate),
            "groups": 1,
            "activation": layer.activation or "linear",
            "use_bias": layer.use_bias,
        }
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return kind, {
            **base,
            "pool_size": list(layer.pool_size),
            "strides": list(layer.strides),
            "padding": layer.padding,
            **last,
        }
    if kind == "Dense":
        return kind, {
            **base,
            "units": layer.units,
            "activation": layer.activation or "linear",
            "use_bias": layer.use_bias,
        }
    if kind == "Dropout":
        return kind, {**base, "rate": layer.rate}
    if kind == "BatchNormalization":
        return kind, {
            **base,
            "axis": -1,
            "momentum": layer.momentum,
            "epsilon": layer.epsilon,
            "center": layer.center,
            "scale": layer.scale,
        }
    if kind in ("Activation", "ReLU", "Softmax"):
        if kind == "Activation":
            return kind, {**base, "activation": layer.activation or "linear"}
        return kind, {**base, "axis": -1} if kind == "Softmax" else base
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return kind, {**base, **last, "keepdims": False}
    if kind == "Rescaling":
        return kind, {**base, "scale": layer.scale, "offset": layer.offset}
    if kind == "Flatten":
        return kind, {**base, **last}
    if kind == "Reshape":
        return kind, {**base, "target_shape": list(layer.target_shape)}
    raise InputError(f"Layer {layer.name!r} ({kind}) has no Keras equivalent that cnnlab writes.")


def _keras_vars(layer) -> list[np.ndarray]:
    """The layer's variables in Keras's order and layouts (HWIO kernels, (in, out) dense kernels)."""

    def arr(t):
        return t.detach().float().cpu().numpy()

    if layer.kind == "Conv2D":
        out = [arr(layer.weight).transpose(2, 3, 1, 0)]
        return out + ([arr(layer.bias)] if layer.bias is not None else [])
    if layer.kind == "Dense":
        return [arr(layer.weight).T] + ([arr(layer.bias)] if layer.bias is not None else [])
    if layer.kind == "BatchNormalization":
        found = [arr(layer.weight)] if layer.scale else []
        found += [arr(layer.bias)] if layer.center else []
        return found + [arr(layer.running_mean), arr(layer.running_var)]
    return []


def write_keras(model: Sequential, path) -> Path:
    """``model`` as a Keras 3 ``.keras`` file (config.json, metadata.json, model.weights.h5), written atomically
    with zipfile, json and h5py: ``keras.saving.load_model`` reads it, and so does :func:`read_keras`.

    The file outputs class probabilities, as ``Run.predict`` does: a model that ends in logits gets a last
    ``Softmax`` layer named ``probabilities``."""
    import datetime

    import h5py

    from cnnlab.atomic import atomic_writer

    if not isinstance(model, Sequential):
        raise InputError(
            "Only a cnnlab Sequential model can be written as a Keras file; this run holds a custom model."
        )
    shape = [None, *model.input_shape]
    items = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "registered_name": None,
            "config": {"batch_shape": shape, "dtype": "float32", "sparse": False, "name": "input_layer"},
        }
    ]
    layers = [(*_keras_config(layer), layer.input_shape, _keras_vars(layer)) for layer in model.layers]
    if not model.outputs_probabilities:  # the file outputs what Run.predict returns: the class probabilities
        names = {layer.name for layer in model.layers}
        name = next(n for n in ("probabilities", *(f"probabilities_{i}" for i in range(1, 999))) if n not in names)
        layers.append(("Softmax", _keras_config(L.Softmax(name))[1], model.output_shape, []))
    weights = io.BytesIO()
    counts: dict[str, int] = {}
    with h5py.File(weights, "w") as store:
        for kind, cfg, input_shape, values in layers:
            items.append(
                {
                    "module": "keras.layers",
                    "class_name": kind,
                    "config": cfg,
                    "registered_name": None,
                    "build_config": {"input_shape": [None, *input_shape]},
                }
            )
            group = store.create_group(_vars_path(counts, kind))
            for i, value in enumerate(values):
                group.create_dataset(str(i), data=value)
        store.create_group("vars")
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": model.name,
            "trainable": True,
            "dtype": "float32",
            "layers": items,
            "build_input_shape": shape,
        },
        "registered_name": None,
        "build_config": {"input_shape": shape},
        "compile_config": None,
    }
    saved = datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")
    metadata = {"keras_version": "3.0.0", "date_saved": saved, "written_by": "cnnlab"}
    path = Path(path)
    with atomic_writer(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights.getvalue())
    return path
