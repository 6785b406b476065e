"""The layering of DESIGN.md, read from the source with ast: every import, lazy ones inside functions too."""

import ast
import collections
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# lower layers never import higher ones (errors and atomic are shared by all)
LEVEL = {"errors": 0, "atomic": 0, "arith": 1, "data": 1, "nn": 2, "train": 3, "inspect": 4, "viz": 5, "report": 6}
LEVEL |= {"web": 7, "cli": 7}


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> cnnlab modules it imports, module -> top-level third-party packages it imports)."""
    paths = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p for p in SRC.rglob("*.py")}
    inner, outer = collections.defaultdict(set), collections.defaultdict(set)
    for mod, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name in paths and name != mod:
                    inner[mod].add(name)
                elif not name.startswith("cnnlab"):
                    outer[mod].add(name.split(".")[0])
    return inner, outer


def _layer(mod: str) -> str:
    return mod.split(".")[1] if mod.count(".") else "cnnlab"


def test_no_layer_imports_a_higher_one():
    inner, _ = _graph()
    upward = [
        (a, b)
        for a, targets in inner.items()
        for b in targets
        if _layer(a) in LEVEL and _layer(b) in LEVEL and LEVEL[_layer(b)] > LEVEL[_layer(a)]
    ]
    assert upward == []


def test_no_import_cycle_between_modules():
    """Package __init__ files re-export their modules; every other edge must form a DAG."""
    inner, _ = _graph()
    edges = {a: {b for b in bs if not (SRC / Path(*b.split("."))).is_dir()} for a, bs in inner.items()}
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in edges.get(node, ()):
            assert state.get(nxt) != "open", f"import cycle: {' -> '.join([*path, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for mod in list(edges):
        if mod not in state:
            visit(mod, [mod])


def test_heavy_dependencies_stay_in_their_layers():
    _, outer = _graph()
    for mod, packages in outer.items():
        layer = _layer(mod)
        if layer in ("arith", "data"):
            assert "torch" not in packages, mod  # NumPy only
        if layer not in ("viz", "report", "web", "cli"):
            assert "matplotlib" not in packages, mod  # computing apart from drawing
        if layer not in ("viz", "cli"):
            assert "rich" not in packages, mod  # progress bars and terminal pictures: the caller's, never the library's
        if layer != "cli":
            assert "typer" not in packages, mod
