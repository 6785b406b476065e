"""Hostile and damaged files, made during the test session from one small valid model: every kind of attempt of
issue 26 (zip bombs, declared sizes that lie, malformed configs and weights, HDF5 links out of the file,
tampered run directories, malformed specs), each with the words its refusal must contain. Nothing large is
committed or kept: a bomb is a few hundred KB of compressed bytes, a huge dataset is declared, not written.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np

DEEP = 100_000  # far past what Python's parsers survive


def deep_json(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


# --- .keras archives ---------------------------------------------------------------------------------------


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_zip(path: Path, parts: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def declare_size(path: Path, member: str, size: int) -> Path:
    """Rewrite the unpacked size that the archive's headers (local and central) declare for ``member``; the
    data stays as it is."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, size)  # the local header's uncompressed size
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) != -1:  # each central directory entry
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len].decode() == member:
            struct.pack_into("<I", data, at + 24, size)
        at += 4
    path.write_bytes(bytes(data))
    return path


def with_config(base: Path, out: Path, change) -> Path:
    """``base`` with its config.json changed by ``change(config) -> config`` (or raw bytes)."""
    parts = members(base)
    value = change(json.loads(parts["config.json"]))
    parts["config.json"] = value if isinstance(value, bytes) else json.dumps(value).encode()
    return write_zip(out, parts)


def with_weights(base: Path, out: Path, change) -> Path:
    """``base`` with its model.weights.h5 changed in place by ``change(h5py.File)``."""
    parts = members(base)
    buf = io.BytesIO(parts["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        change(f)
    parts["model.weights.h5"] = buf.getvalue()
    return write_zip(out, parts)


def layer_config(name: str, key: str, value):
    """A config change: layer ``name``'s ``key`` set to ``value``."""

    def change(config):
        for item in config["config"]["layers"]:
            if item["config"].get("name") == name:
                item["config"][key] = value
        return config

    return change


def replace_dataset(where: str, make):
    def change(f):
        del f[where]
        make(f, where)

    return change


def keras_cases(base: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Each hostile .keras file made from ``base`` (a valid one with layers conv1, bn1, flatten, dense1), and
    what its refusal says."""
    folder.mkdir(parents=True, exist_ok=True)
    dense = "layers/dense/vars"
    cases = {}

    def case(name, path, says):
        cases[name] = (path, says)

    f = folder / "not-a-zip.keras"
    f.write_bytes(np.random.default_rng(0).bytes(4096))
    case("not-a-zip", f, "not a .keras file")
    f = folder / "truncated.keras"
    f.write_bytes(base.read_bytes()[: base.stat().st_size // 2])
    case("truncated", f, "not a .keras file")
    spaces = b" " * (96 * 2**20)  # 96 MB unpacked from about 100 KB
    parts = members(base)
    case(
        "config-bomb",
        write_zip(folder / "config-bomb.keras", {**parts, "config.json": parts["config.json"] + spaces}),
        "unpacked",
    )
    lying = write_zip(folder / "config-lies.keras", {**parts, "config.json": parts["config.json"] + spaces})
    case("config-size-lies", declare_size(lying, "config.json", 4096), "damaged")
    case(
        "weights-bomb",
        declare_size(write_zip(folder / "weights-bomb.keras", parts), "model.weights.h5", 3 * 10**9),
        "unpacked",
    )
    case("config-deep", with_config(base, folder / "deep.keras", lambda c: deep_json()), "levels deep")
    case("config-list", with_config(base, folder / "list.keras", lambda c: [c]), "holds a JSON list model")
    case("config-number", with_config(base, folder / "number.keras", lambda c: 7), "reads Sequential and functional")
    case("config-not-json", with_config(base, folder / "notjson.keras", lambda c: b"{nope"), "is not valid JSON")

    def layers_object(c):
        c["config"]["layers"] = {"conv1": 1}
        return c

    case("layers-not-a-list", with_config(base, folder / "layers-obj.keras", layers_object), "without a list of layers")

    def config_list(c):
        c["config"]["layers"][1]["config"] = [1, 2]
        return c

    case("layer-config-list", with_config(base, folder / "cfg-list.keras", config_list), "Keras writes an object")

    def batch_shape(value):
        def change(c):
            c["config"]["layers"][0]["config"]["batch_shape"] = value
            return c

        return change

    case("batch-shape-text", with_config(base, folder / "bs-text.keras", batch_shape("x")), "declares the input")
    case(
        "batch-shape-huge",
        with_config(base, folder / "bs-huge.keras", batch_shape([None, 20000, 20000, 3])),
        "declares the input",
    )
    case(
        "filters-huge",
        with_config(base, folder / "filters.keras", layer_config("conv1", "filters", 150_000_000)),
        "cnnlab builds models of at most",
    )
    case(
        "units-huge",
        with_config(base, folder / "units.keras", layer_config("dense1", "units", 10**9)),
        "cnnlab builds models of at most",
    )
    case("filters-text", with_config(base, folder / "ftext.keras", layer_config("conv1", "filters", "x")), "filters=")
    case(
        "lambda",
        with_config(base, folder / "lambda.keras", lambda c: _set_class(c, "dense1", "Lambda")),
        "carries code",
    )
    case(
        "activation-object",
        with_config(base, folder / "act.keras", layer_config("conv1", "activation", {"class_name": "x"})),
        "not a built-in name",
    )
    case(
        "missing-bias",
        with_weights(base, folder / "nobias.keras", lambda f: f.__delitem__(f"{dense}/1")),
        "the weights hold 1 variable(s)",
    )
    case(
        "wrong-rank",
        with_weights(
            base, folder / "rank.keras", replace_dataset(f"{dense}/0", lambda f, w: f.create_dataset(w, (72,), "f4"))
        ),
        "in the weights is (72,)",
    )
    case(
        "wrong-dtype",
        with_weights(
            base,
            folder / "dtype.keras",
            replace_dataset(f"{dense}/0", lambda f, w: f.create_dataset(w, data=np.array([b"text"] * 216))),
        ),
        "a variable is",
    )
    case(
        "declared-huge-empty",
        with_weights(
            base,
            folder / "empty.keras",
            replace_dataset(f"{dense}/0", lambda f, w: f.create_dataset(w, (10**10,), "f4", chunks=(2**16,))),
        ),
        "a variable is (10000000000,)",
    )
    case(
        "external-link",
        with_weights(base, folder / "extlink.keras", _link("layers/dense", h5py.ExternalLink("/etc/passwd", "/"))),
        "ExternalLink",
    )
    case(
        "soft-link",
        with_weights(base, folder / "softlink.keras", _link(f"{dense}/0", h5py.SoftLink("/layers/conv2d/vars/0"))),
        "SoftLink",
    )
    case(
        "group-for-dataset",
        with_weights(base, folder / "group.keras", replace_dataset(f"{dense}/0", lambda f, w: f.create_group(w))),
        "not a dataset",
    )
    case(
        "bad-weight-names",
        with_weights(base, folder / "names.keras", lambda f: f.move(f"{dense}/0", f"{dense}/kernel")),
        "numbers variables",
    )
    for value, name in ((np.nan, "nan"), (np.inf, "inf")):
        case(
            f"{name}-weights",
            with_weights(base, folder / f"{name}.keras", _poison(f"{dense}/0", value)),
            "NaN or infinite",
        )
    parts = members(base)
    case(
        "weights-not-hdf5",
        write_zip(folder / "noth5.keras", {**parts, "model.weights.h5": b"not hdf5 at all"}),
        "not readable HDF5",
    )
    case("weights-unpack-to-1000-mb", zeros_weights(base, folder / "zeros.keras", 1000), "not readable HDF5")
    case("no-weights-member", write_zip(folder / "nomember.keras", {"config.json": parts["config.json"]}), "has no")
    return cases


def zeros_weights(base: Path, out: Path, megabytes: int) -> Path:
    """``base`` whose model.weights.h5 is ``megabytes`` MB of zeros (about 1 MB packed): under the cap, so it is
    unpacked, and then refused as not HDF5. Held in memory, it would not fit beside torch in 1.5 GB."""
    parts = members(base)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("config.json", parts["config.json"])
        with z.open("model.weights.h5", "w", force_zip64=True) as member:
            zeros = bytes(2**20)
            for _ in range(megabytes):
                member.write(zeros)
    return out


def _set_class(config, name, kind):
    for item in config["config"]["layers"]:
        if item["config"].get("name") == name:
            item["class_name"] = kind
    return config


def _link(where, link):
    def change(f):
        del f[where]
        f[where] = link

    return change


def _poison(where, value):
    def change(f):
        data = f[where][()]
        data.flat[3] = value
        f[where][...] = data

    return change


# --- Keras 2 full-model .h5 --------------------------------------------------------------------------------

VARIABLES = {"conv1": ("conv2d", ["kernel", "bias"]), "bn1": ("batch_normalization", ["gamma", "beta", "mean", "var"])}
VARIABLES["dense1"] = ("dense", ["kernel", "bias"])


def keras2_h5(base: Path, out: Path, config=None) -> Path:
    """``base`` as a Keras 2 full-model .h5: model_config as an attribute, weights under model_weights/<layer>,
    in the order of each layer's weight_names."""
    parts = members(base)
    config = json.loads(parts["config.json"]) if config is None else config
    with h5py.File(io.BytesIO(parts["model.weights.h5"]), "r") as src, h5py.File(out, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        weights = f.create_group("model_weights")
        for item in config["config"]["layers"][1:]:
            name = item["config"]["name"]
            group = weights.create_group(name)
            kind, names = VARIABLES.get(name, (None, []))
            full = [f"{name}/{n}:0" for n in names]
            group.attrs["weight_names"] = [n.encode() for n in full]
            for i, n in enumerate(full):
                group[n] = src[f"layers/{kind}/vars/{i}"][()]
    return out


def h5_cases(base: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = {}

    def edited(name, change, says):
        path = keras2_h5(base, folder / f"{name}.h5")
        with h5py.File(path, "r+") as f:
            change(f)
        cases[name] = (path, says)

    edited("h5-no-config", lambda f: f.attrs.__delitem__("model_config"), "weights only")
    edited("h5-config-deep", lambda f: f.attrs.__setitem__("model_config", deep_json().decode()), "levels deep")
    edited("h5-config-number", lambda f: f.attrs.__setitem__("model_config", 5), "not JSON text")
    edited("h5-external", _link("model_weights", h5py.ExternalLink("/etc/passwd", "/")), "ExternalLink")
    edited(
        "h5-missing-name",
        lambda f: f["model_weights/dense1"].attrs.__setitem__("weight_names", [b"dense1/nothing:0", b"x"]),
        "not a dataset",
    )
    edited("h5-nan", _poison("model_weights/dense1/dense1/kernel:0", np.nan), "NaN or infinite")
    f = folder / "h5-garbage.h5"
    f.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 600)
    cases["h5-garbage"] = (f, "not readable HDF5")
    return cases


# --- run directories ---------------------------------------------------------------------------------------


def run_cases(run: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Copies of the trained run ``run``, each with one file tampered with."""
    import safetensors.numpy

    folder.mkdir(parents=True, exist_ok=True)
    cases = {}

    def tampered(name, change, says):
        copy = folder / name
        shutil.copytree(run, copy)
        change(copy)
        cases[name] = (copy, says)

    def model_json(change):
        def edit(copy):
            meta = json.loads((copy / "model.json").read_text())
            value = change(meta)
            (copy / "model.json").write_bytes(value if isinstance(value, bytes) else json.dumps(value).encode())

        return edit

    def prep(key, value):
        return model_json(lambda m: {**m, "preprocessing": {**m["preprocessing"], key: value}})

    tampered("model-json-deep", model_json(lambda m: deep_json()), "levels deep")
    tampered("model-json-huge", model_json(lambda m: b" " * (65 * 2**20) + json.dumps(m).encode()), "larger than")
    tampered("spec-text", model_json(lambda m: {**m, "spec": "Conv2D"}), "is a str")
    bare = model_json(lambda m: {**m, "spec": m["spec"]["layers"] if isinstance(m["spec"], dict) else m["spec"]})
    tampered("spec-bare-list", bare, "declares no input shape")
    tampered("spec-layer-text", model_json(lambda m: {**m, "spec": {**m["spec"], "layers": ["Conv2D"]}}), "no 'type'")
    tampered(
        "spec-filters-huge",
        model_json(lambda m: {**m, "spec": _spec_set(m["spec"], "Conv2D", "filters", 150_000_000)}),
        "cnnlab builds models of at most",
    )
    tampered(
        "spec-filters-true",
        model_json(lambda m: {**m, "spec": _spec_set(m["spec"], "Conv2D", "filters", True)}),
        "filters=True",
    )
    wide = {"input_shape": [4096, 4096, 1], "layers": [{"type": "Conv2D", "filters": 32, "kernel_size": 1}]}
    wide["layers"] += [{"type": "GlobalAveragePooling2D"}, {"type": "Dense", "units": 10}]
    tampered("spec-activations-huge", model_json(lambda m: {**m, "spec": wide}), "values for one image")
    tampered("scale-text", prep("scale", "x"), "preprocessing.scale")
    tampered("input-huge", prep("input_shape", [20000, 20000, 3]), "more than the")
    tampered("config-json-deep", lambda c: (c / "config.json").write_bytes(deep_json()), "levels deep")
    tampered(
        "metrics-deep",
        lambda c: (c / "metrics.jsonl").write_bytes(b'{"epoch": 1}\n' + deep_json() + b"\n"),
        "levels deep",
    )

    def nan_weights(copy):
        tensors = safetensors.numpy.load_file(copy / "model.safetensors")
        key = next(k for k, v in tensors.items() if v.dtype.kind == "f" and v.size > 1)
        tensors[key] = tensors[key].copy()
        tensors[key].flat[0] = np.nan
        safetensors.numpy.save_file(tensors, copy / "model.safetensors")

    tampered("nan-weights", nan_weights, "NaN or infinite")

    def huge_weights(copy):
        with open(copy / "model.safetensors", "r+b") as f:
            f.truncate(2 * 2**30)  # sparse: two declared gigabytes, nothing written

    tampered("weights-file-huge", huge_weights, "refused before reading")
    return cases


def _spec_set(spec, kind, key, value):
    spec = json.loads(json.dumps(spec))
    layers = spec["layers"] if isinstance(spec, dict) else spec
    next(item for item in layers if item.get("type") == kind)[key] = value
    return spec


# --- model specs -------------------------------------------------------------------------------------------


def spec_cases(folder: Path) -> dict[str, tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    chain = [{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]
    values = {
        "filters-true": (
            {"input_shape": [8, 8, 1], "layers": [{**chain[0], "filters": True}, *chain[1:]]},
            "filters=True",
        ),
        "layers-text": ({"input_shape": [8, 8, 1], "layers": "Conv2D"}, '"layers" of type str'),
        "layers-object": ({"input_shape": [8, 8, 1], "layers": {"type": "Conv2D"}}, '"layers" of type dict'),
        "layer-text": ({"input_shape": [8, 8, 1], "layers": ["Conv2D"]}, "no 'type'"),
        "spec-number": (5, "is a int"),
        "units-huge": (
            {"input_shape": [8, 8, 1], "layers": [*chain[:2], {"type": "Dense", "units": 10**10}]},
            "at most",
        ),
        "input-text": ({"input_shape": "x", "layers": chain}, "Input shape='x'"),
    }
    cases = {}
    for name, (value, says) in values.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(value))
        cases[name] = (path, says)
    path = folder / "deep.json"
    path.write_bytes(deep_json())
    cases["deep"] = (path, "levels deep")
    path = folder / "deep.toml"
    path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    cases["deep-toml"] = (path, "levels deep")
    path = folder / "binary.json"
    path.write_bytes(b"\xff\xfe\x00[")
    cases["binary"] = (path, "not UTF-8")
    return cases


def generic_cases(real: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """The cases that need no layer names, made from a .keras file Keras itself wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = members(real)
    bomb = {**parts, "config.json": parts["config.json"] + b" " * (96 * 2**20)}

    def first_float(f):
        found = []
        f.visititems(
            lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind == "f" and o.size > 3 else None
        )
        _poison(found[0], np.nan)(f)

    return {
        "config-bomb": (write_zip(folder / "bomb.keras", bomb), "unpacked"),
        "config-deep": (with_config(real, folder / "deep.keras", lambda c: deep_json()), "levels deep"),
        "nan-weights": (with_weights(real, folder / "nan.keras", first_float), "NaN or infinite"),
    }
