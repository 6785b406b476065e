"""The layering of docs/design.md, read from the source with ast: every import, lazy ones inside functions too."""

import ast
import collections
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# lower layers never import higher ones (errors, atomic, ranks and limits are shared by all)
LEVEL = {"errors": 0, "atomic": 0, "ranks": 0, "limits": 0, "shown": 0, "arith": 1, "data": 1, "compute": 2, "nn": 2}
LEVEL |= {"run": 3, "training": 4, "inspect": 5, "viz": 6, "report": 7, "web": 8, "cli": 8}


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


# Files allowed past MAX_MODULE_LINES, each with its reason (docs/design.md, "Sizes"); none today.
SIZE_EXCEPTIONS: dict[str, str] = {}
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 80, 400


def test_no_function_or_module_is_too_long_to_read():
    """Every function in src/ fits on a screen (80 lines, docstring included) and every module, Python or the
    page's JavaScript, stays under 400 lines; scripts/sizes.py lists the longest."""
    long_functions, long_modules = [], []
    for path in sorted(SRC.rglob("*.py")) + sorted(SRC.rglob("*.js")):
        name = str(path.relative_to(SRC))
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES and name not in SIZE_EXCEPTIONS:
            long_modules.append(f"{name}: {lines} lines")
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_FUNCTION_LINES:
                        long_functions.append(f"{name}:{node.lineno} {node.name}: {n} lines")
    assert long_functions == [] and long_modules == []


def test_the_layout_is_the_documented_one():
    """Every package of src/cnnlab has its place in LEVEL, and docs/design.md names each of them."""
    packages = {p.name for p in (SRC / "cnnlab").iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in (SRC / "cnnlab").glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert packages | modules <= set(LEVEL), sorted(packages | modules - set(LEVEL))
    design = (SRC.parent / "docs" / "design.md").read_text()
    assert all(f"{name}/" in design or f"{name}.py" in design for name in packages | modules)


def test_nothing_in_the_repository_points_outside_it():
    """The design notes a contributor reads are docs/design.md in the clone: no file names a DESIGN.md or a
    folder beside the checkout."""
    root = SRC.parent
    files = [root / n for n in ("README.md", "Makefile", "pyproject.toml")]
    files += [p for d in ("src", "tests", "docs", "scripts", "benchmarks", "examples") for p in (root / d).rglob("*")]
    files = [p for p in files if not any(part.endswith(".egg-info") for part in p.parts)]  # pip's, not ours
    texts = [
        (p, p.read_text(errors="ignore"))
        for p in files
        if p.is_file() and p.suffix in (".py", ".md", ".toml", ".sh", ".js", ".html", "")
    ]
    this = Path(__file__).resolve()
    outside = [str(p.relative_to(root)) for p, t in texts if p != this and ("DESIGN.md" in t or "../shared" in t)]
    assert outside == []
    assert "docs/design.md" in (root / "README.md").read_text()
