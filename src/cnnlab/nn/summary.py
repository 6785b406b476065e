"""``model.summary()`` as Keras prints it, with each parameter count's formula and the multiply-adds."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cnnlab.nn.graph import Model
from cnnlab.shown import Shown, Table


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    output_shape: str  # "(None, 28, 28, 32)"
    params: int
    formula: str
    macs: int
    connected: str = ""  # Keras's "Connected to" of a graph: conv1[0][0], ... ("" in a chain)


@dataclass(frozen=True, repr=False)
class Summary(Shown):
    """Keras's ``model.summary()``: printed, Keras's table (with each count's formula and the multiply-adds);
    in a notebook the same table, a nested model's layers folded under its row, and a chart of where the
    parameters and the multiply-adds are (:meth:`plot`)."""

    name: str
    input_shape: tuple[int, ...]
    rows: tuple[Row, ...]
    trainable: int
    non_trainable: int
    graph: bool = False  # a branching (functional) model: the rows say what each layer is connected to
    inside: tuple = ()  # (row index, Summary) of each nested model whose rows are not among ``rows``

    _figure = "cnnlab.viz.models:summary_figure"

    def header(self) -> list[str]:
        """The table's columns, wherever it is shown (the terminal, a notebook, the report, the web page)."""
        return ["Layer (type)", "Output Shape", "Param #", "formula", "mult-adds"] + (
            ["Connected to"] if self.graph else []
        )

    def cells(self, r: Row) -> list[str]:
        cells = [f"{r.name} ({r.kind})", r.output_shape, f"{r.params:,}", r.formula, f"{r.macs:,}"]
        return cells + ([r.connected] if self.graph else [])

    def table(self) -> Table:
        inside = {i: s.table() for i, s in self.inside}
        lines = (*self.closing_lines(), f"Multiply-adds per image: {self.macs:,}")
        rows = tuple(tuple(self.cells(r)) for r in self.rows)
        return Table(f'Model: "{self.name}"', tuple(self.header()), rows, frozenset({2, 4}), lines, inside)

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def closing_lines(self) -> list[str]:
        def size(n):  # float32 bytes, in units of 1024, as Keras reports them
            b, unit = float(n * 4), "B"
            for bigger in ("KB", "MB", "GB", "TB"):
                if b < 1024:
                    break
                b, unit = b / 1024, bigger
            return f"{b:.2f} {unit}"

        return [
            f"Total params: {self.total:,} ({size(self.total)})",
            f"Trainable params: {self.trainable:,} ({size(self.trainable)})",
            f"Non-trainable params: {self.non_trainable:,} ({size(self.non_trainable)})",
        ]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [asdict(r) for r in self.rows],
            "total_params": self.total,
            "trainable_params": self.trainable,
            "non_trainable_params": self.non_trainable,
            "macs": self.macs,
            "graph": self.graph,
        }


def keras_shape(shape) -> str:
    return "(" + ", ".join(["None", *map(str, shape)]) + ")"


def describe(name: str, input_shape=None, num_classes: int | None = None, expand_nested: bool = False) -> Summary:
    """The summary of a zoo model or spec file, built on PyTorch's "meta" device: shapes and counts are
    computed and every layer is checked, but no weight is allocated (Dense(10**9) costs nothing)."""
    import torch

    from cnnlab.nn.resolve import resolve

    if (
        str(name).lower().endswith((".keras", ".h5", ".hdf5"))
    ):  # a Keras file: its own layers and weights, as Keras counts them
        from cnnlab.nn.keras_file import read_keras

        return summarize(read_keras(name)[0], expand_nested)
    with torch.device("meta"):
        return summarize(resolve(name, input_shape, num_classes), expand_nested)


def summarize(model: Model, expand_nested: bool = False) -> Summary:
    """Keras's model.summary() of a cnnlab model (a Sequential or any graph Model): a row per layer, a nested
    model's one row with all its parameters (``expand_nested``: followed by its own rows, named outer/inner)."""
    from cnnlab.nn.model import Sequential

    rows = _rows(model, "", expand_nested)
    trainable, non_trainable = model.count_params()
    graph = not isinstance(model, Sequential)
    inside = (
        ()
        if expand_nested
        else tuple((i, summarize(layer)) for i, layer in enumerate(model.layers) if isinstance(layer, Model))
    )
    return Summary(model.name, model.input_shape, tuple(rows), trainable, non_trainable, graph, inside)


def _rows(model: Model, prefix: str, expand_nested: bool) -> list[Row]:
    """A row per layer of ``model``; a graph's (not a chain's) say what each layer is connected to."""
    from cnnlab.nn.model import Sequential

    connected = {} if isinstance(model, Sequential) else _connections(model)
    rows = []
    for layer in model.layers:
        nested = isinstance(layer, Model)
        own = sum(p.numel() for p in layer.parameters(recurse=nested))
        own += sum(b.numel() for b in layer.buffers(recurse=nested))
        shape = keras_shape(layer.output_shape)
        rows.append(
            Row(
                prefix + layer.name, layer.kind, shape, own, layer.formula(), layer.macs(), connected.get(id(layer), "")
            )
        )
        if nested and expand_nested:
            rows += _rows(layer, f"{prefix}{layer.name}/", True)
    return rows


def _connections(model: Model) -> dict[int, str]:
    """Each layer's inbound tensors over all its calls, as Keras prints them: ``conv1[0][0], add[1][0]``."""
    made, calls, found = {}, {}, {}
    for node in model.nodes:
        sources = [made.get(id(t), "input_layer[0][0]") for t in node.inputs]
        found.setdefault(id(node.layer), []).extend(sources)
        k = calls.get(id(node.layer), 0)
        made[id(node.output)], calls[id(node.layer)] = f"{node.layer.name}[{k}][0]", k + 1
    return {key: ", ".join(v) for key, v in found.items()}
