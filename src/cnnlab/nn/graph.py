"""``Model(inputs, outputs)``: a graph of layer calls, Keras's functional API. ``Sequential`` is the same
engine for a chain (:mod:`cnnlab.nn.model`).

The graph is read once, when the model is made: from the outputs back to the inputs through each symbolic
tensor's node, into the nodes in topological order. ``forward`` runs them in that order, each on the tensors
its inbound nodes made; a layer called twice runs twice with one set of weights. The layers are kept in
``body`` in the order they are first called, so that their weights are named ``body.<i>.<name>`` as a
Sequential's are.
"""

from __future__ import annotations

import collections

from torch import nn

from cnnlab.errors import InputError
from cnnlab.nn.base import Freezable, Layer
from cnnlab.nn.layers import SHORT_NAMES
from cnnlab.nn.symbolic import SymbolicTensor, connect, is_symbolic

INPUT = "input"  # what a spec calls the model input among its layers' inputs


def name_layers(layers) -> None:
    """Name every unnamed layer by its kind and position (conv1, pool1, dense1, ...; the first Flatten and
    global pooling as flatten and gap), around the names already given; two layers of one name are an error."""
    taken = {layer.name for layer in layers if getattr(layer, "name", None)}
    counters = collections.Counter()
    for layer in layers:
        if getattr(layer, "name", None):
            continue
        base = SHORT_NAMES.get(layer.kind, layer.kind.lower())
        while True:
            counters[base] += 1
            candidate = base if base in ("flatten", "gap") and counters[base] == 1 else f"{base}{counters[base]}"
            if candidate not in taken:
                break
        layer.name = candidate
        taken.add(candidate)
    names = [layer.name for layer in layers]
    dup = [n for n, k in collections.Counter(names).items() if k > 1]
    if dup:
        raise InputError(f"Layer name {dup[0]!r} is used twice. Expected unique names.")


def _as_list(value, what: str) -> tuple[list[SymbolicTensor], bool]:
    many = isinstance(value, (list, tuple))
    items = list(value) if many else [value]
    if not items or not all(isinstance(t, SymbolicTensor) for t in items):
        raise InputError(
            f"Model {what} must be symbolic tensors (from Input(...) and layer calls); received {value!r}."
        )
    return items, many


def topological(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> list:
    """The nodes between ``inputs`` and ``outputs``, each after the nodes it takes tensors from. A tensor that
    no path leads to from the inputs is an error naming it."""
    order, state = [], {}
    known = {id(t) for t in inputs}

    def visit(tensor: SymbolicTensor, path: str):
        if id(tensor) in known:
            return
        node = tensor.node
        if node is None:
            raise InputError(
                f"The model's outputs depend on an Input{tensor.shape} that is not among its inputs ({path}). "
                "Pass every Input the outputs need: Model([a, b], outputs)."
            )
        if state.get(id(node)) == "done":
            return
        for t in node.inputs:
            visit(t, f"{node.layer.name} <- {path}")
        state[id(node)] = "done"
        order.append(node)

    for t in outputs:
        visit(t, "an output")
    return order


class Model(Freezable, nn.Module):
    """``Model(inputs, outputs, name="model")``, from ``inputs = Input((28, 28, 1))`` and layers called on
    symbolic tensors; several outputs (a probe: ``Model(x, [pool1, logits])``) make ``forward`` return a list."""

    def __init__(self, inputs, outputs, name: str = "model"):
        super().__init__()
        self._inputs, many_in = _as_list(inputs, "inputs")
        self._outputs, self._many_out = _as_list(outputs, "outputs")
        self._nodes = topological(self._inputs, self._outputs)
        layers = list(dict.fromkeys(node.layer for node in self._nodes))  # first call first, each once
        if not all(isinstance(layer, (Layer, Model)) for layer in layers):
            raise InputError("Every layer of a Model must be a cnnlab layer (or a cnnlab Model, nested).")
        name_layers(layers)
        self.name = name
        self.body = nn.ModuleList(layers)
        self.input_shape = self._inputs[0].shape if not many_in else [t.shape for t in self._inputs]
        self.output_shape = self._outputs[0].shape if not self._many_out else [t.shape for t in self._outputs]

    # --- a model is a layer too (nested: Model(x, base(x)), its layers reachable as "base/conv1") ------------
    kind = "Functional"
    keras_class = None
    takes_many = False

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and is_symbolic(args[0]):
            return connect(self, args[0])
        return super().__call__(*args, **kwargs)

    def formula(self) -> str:
        return ""

    def macs(self) -> int:
        return sum(layer.macs() for _, layer in self.walk())

    def walk(self, prefix: str = "", models: bool = False) -> list[tuple[str, nn.Module]]:
        """Every layer, a nested model's as ``outer/inner`` in its place; ``models``: each nested model itself
        too, after its layers (its output is its last layer's, under the name Keras gives it)."""
        out = []
        for layer in self.body:
            if isinstance(layer, Model):
                out += layer.walk(f"{prefix}{layer.name}/", models)
            if models or not isinstance(layer, Model):
                out.append((prefix + layer.name, layer))
        return out

    @property
    def nodes(self) -> list:
        """The layer calls in the order ``forward`` runs them."""
        return list(self._nodes)

    def flat_nodes(self, prefix: str = "", sources=None) -> list[tuple[str, list, object]]:
        """Every layer call, nested models' opened up, in the order they run: (path, the keys of the tensors
        it takes, the key of the tensor it makes); keys are the ``id`` of the symbolic tensors."""
        sources = sources or {id(t): id(t) for t in self._inputs}
        key, out = dict(sources), []
        for node in self._nodes:
            ins = [key[id(t)] for t in node.inputs]
            if isinstance(node.layer, Model):
                inner = node.layer.flat_nodes(f"{prefix}{node.layer.name}/", {id(node.layer._inputs[0]): ins[0]})
                out += inner
                key[id(node.output)] = inner[-1][2] if inner else ins[0]
                continue
            key[id(node.output)] = id(node.output)
            out.append((prefix + node.layer.name, ins, id(node.output)))
        return out

    def first_computing(self) -> tuple[str, Layer] | None:
        """The first layer, nested ones opened, that changes what it is given at inference, and its path: the
        layers before it (an augmentation ``Sequential``, Dropout, Identity) pass the input on as it is."""
        for path, _, _ in self.flat_nodes():
            layer = self.layer(path)
            if not layer.passes_at_inference:
                return path, layer
        return None

    def chokepoints(self) -> list[str]:
        """The layers that every path from the input to the output passes through, in order (all of a chain's;
        in a ResNet, the ends of its blocks, not the convolutions inside them): in the order the layers run,
        no connection jumps over them."""
        nodes = self.flat_nodes()
        made = {out: i for i, (_, _, out) in enumerate(nodes)}  # the model input is -1
        covered = [0] * (len(nodes) + 1)
        for i, (_, ins, _) in enumerate(nodes):
            for k in ins:  # a connection from node a to node i jumps over the nodes between them
                a = made.get(k, -1)
                if i - a > 1:
                    covered[a + 1] += 1
                    covered[i] -= 1
        out, depth = [], 0
        for i, (name, _, _) in enumerate(nodes):
            depth += covered[i]
            if depth == 0:
                out.append(name)
        return out

    def run_nodes(self, xs, keep=None, prefix: str = ""):
        """Every node on the tensors ``xs`` (one a model input): the outputs, and ``keep(name, value)`` called
        with each node's value as it is made (what feature maps capture); a nested model's layers are kept as
        ``outer/inner``, and then the nested model's output under its own name."""
        values = {id(t): x for t, x in zip(self._inputs, xs, strict=True)}
        for node in self._nodes:
            args = [values[id(t)] for t in node.inputs]
            arg = args if node.many else args[0]
            if keep is not None and isinstance(node.layer, Model):
                value = node.layer.run_nodes([arg], keep, f"{prefix}{node.layer.name}/")
            else:
                value = node.layer(arg)
            values[id(node.output)] = value
            if keep is not None:
                keep(prefix + node.layer.name, value)
        out = [values[id(t)] for t in self._outputs]
        return out if self._many_out else out[0]

    def forward(self, *xs):
        if len(xs) != len(self._inputs):
            raise InputError(f"Model '{self.name}' takes {len(self._inputs)} input(s); it was given {len(xs)}.")
        return self.run_nodes(xs)

    @property
    def outputs_probabilities(self) -> bool:
        """True when the one output is a softmax's (Dense(..., activation='softmax') or Softmax())."""
        if self._many_out or self._outputs[0].node is None:
            return False
        last = self._outputs[0].node.layer
        return last.outputs_probabilities

    def spec(self) -> dict:
        """The model as a spec (:mod:`cnnlab.nn.spec`): each layer with the names of the layers it takes."""
        calls = collections.Counter(node.layer.name for node in self._nodes)
        twice = [n for n, k in calls.items() if k > 1]
        if twice or len(self._inputs) > 1 or self._many_out:
            why = f"layer '{twice[0]}' is called twice" if twice else "it has several inputs or outputs"
            raise InputError(f"Model '{self.name}' cannot be written as a spec: {why}.")

        def source(t: SymbolicTensor) -> str:
            return INPUT if t.node is None else t.node.layer.name

        layers = [{**_layer_spec(node.layer), "inputs": [source(t) for t in node.inputs]} for node in self._nodes]
        return {"name": self.name, "input_shape": list(self.input_shape), "layers": layers}

    @property
    def layers(self) -> list[Layer]:
        return list(self.body)

    def layer(self, name: str) -> Layer:
        """The layer of that name; ``outer/inner`` reaches into a nested model."""
        for path, layer in [*((lay.name, lay) for lay in self.body), *self.walk()]:
            if path == name:
                return layer
        names = [path for path, _ in self.walk()]
        raise InputError(f"No layer named {name!r}. Expected one of: {', '.join(names)}.")

    def count_params(self) -> tuple[int, int]:
        """(trainable, non-trainable), as Keras counts them: frozen weights, BatchNorm's moving statistics and
        Normalization's mean, variance and count are non-trainable."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return trainable, frozen + sum(b.numel() for b in self.buffers())


def _layer_spec(layer) -> dict:
    """A layer's spec; a nested model's is ``{"type": "Model", "name", "spec": its own spec}``; a frozen one
    says ``"trainable": false``."""
    if isinstance(layer, Model):
        item = {"type": "Model", "name": layer.name, "spec": layer.spec()}
    else:
        item = layer.spec()
    return {**item, "trainable": False} if getattr(layer, "frozen", False) else item


def graph_view(model: Model, sources=None) -> dict:
    """What the page and the report draw of a graph: its layer calls in the order they run, each with its
    level (the longest path from the input: branches share a level, side by side), its output shape and the
    layers it takes with the shapes on those edges; a nested model is one node holding its own view, whose
    input edges name the outer layers that feed it (``sources``)."""
    names = sources or ["input"] * len(model._inputs)
    made = {id(t): (name, t.shape, -1) for t, name in zip(model._inputs, names, strict=True)}
    nodes = []
    for node in model.nodes:
        sources = [made[id(t)] for t in node.inputs]
        level = 1 + max(s[2] for s in sources)
        item = {
            "name": node.layer.name,
            "kind": node.layer.kind,
            "shape": list(node.output.shape),
            "level": level,
            "inputs": [{"from": s[0], "shape": list(s[1])} for s in sources],
        }
        if isinstance(node.layer, Model):
            item["graph"] = graph_view(node.layer, [s[0] for s in sources])
        nodes.append(item)
        made[id(node.output)] = (node.layer.name, node.output.shape, level)
    return {"name": model.name, "input_shape": list(model.input_shape), "nodes": nodes}
