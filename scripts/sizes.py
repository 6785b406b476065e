"""The longest functions and modules of src/ (lines, with their docstrings), as the design notes bound them.

    python scripts/sizes.py            # the 10 longest functions and modules
    python scripts/sizes.py --top 20
"""

import argparse
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    files = sorted(SRC.rglob("*.py")) + sorted(SRC.rglob("*.js"))
    funcs = [(n, f"{p.relative_to(SRC)}:{line} {name}") for p in files if p.suffix == ".py" for name, line, n in functions(p)]
    mods = [(len(p.read_text().splitlines()), str(p.relative_to(SRC))) for p in files]
    print("longest functions (lines):")
    for n, where in sorted(funcs, reverse=True)[: args.top]:
        print(f"  {n:4d}  {where}")
    print("longest modules (lines):")
    for n, where in sorted(mods, reverse=True)[: args.top]:
        print(f"  {n:4d}  {where}")


if __name__ == "__main__":
    main()
