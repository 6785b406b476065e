"""``cnnlab models list | recipes | summary | check``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cnnlab.cli import app
from cnnlab.cli.options import parse_ints, print_table
from cnnlab.errors import InputError
from cnnlab.nn import zoo
from cnnlab.nn.summary import describe

console = Console(highlight=False)
models_app = typer.Typer(
    help="Model zoo and specs: list, summarize (as Keras's model.summary()), check.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


def _described(name_or_spec: str, input_shape: str | None = None, classes: int | None = None, expand=False):
    shape = parse_ints(input_shape, "--input") if input_shape else None
    if shape is not None and len(shape) != 3:
        raise InputError(f"--input {input_shape!r} is not H,W,C. Expected e.g. --input 28,28,1.")
    return describe(name_or_spec, shape, classes, expand)


@models_app.command("list")
def list_() -> None:
    """The zoo: the tutorials' architectures and cnnlab's own."""
    table = Table("name", "input", "params", "about")
    for entry in zoo.ZOO.values():
        s = describe(entry.name)
        table.add_row(entry.name, "x".join(map(str, entry.input_shape)), f"{s.total:,}", entry.about)
    print_table(console, table)


@models_app.command()
def recipes() -> None:
    """Recipes: named sets of training options per dataset, for cnnlab train --recipe NAME."""
    from cnnlab.training.recipes import RECIPES

    table = Table("recipe", "data", "options", "about")
    for recipe in RECIPES.values():
        for data, options in recipe.options.items():
            table.add_row(recipe.name, data, ", ".join(f"{k}={v}" for k, v in options.items()), recipe.about)
    print_table(console, table)


@models_app.command()
def summary(
    model: str = typer.Argument(..., help="A zoo name, a .json/.toml spec or a .keras/.h5 file."),
    input: str | None = typer.Option(None, "--input", help="Input shape H,W,C (default: the model's)."),
    classes: int | None = typer.Option(None, "--classes", help="Units of the last Dense layer."),
    expand_nested: bool = typer.Option(False, "--expand-nested", help="Rows for the layers of nested models."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Layer names, output shapes, parameters with their formulas and multiply-adds, as Keras counts them; a
    branching model also says what each layer is connected to."""
    s = _described(model, input, classes, expand_nested)
    if json_out:
        print(json.dumps(s.to_dict()))
        return
    table = Table(*s.header(), title=f'Model: "{s.name}"')
    for r in s.rows:
        table.add_row(*s.cells(r))
    print_table(console, table)
    for line in s.closing_lines():
        console.print(line)
    console.print(f"Multiply-adds per image: {s.macs:,}")


@models_app.command()
def check(
    spec: Path = typer.Argument(..., help="A .json or .toml model spec."),
    input: str | None = typer.Option(None, "--input", help="Input shape H,W,C (a spec that declares none needs it)."),
) -> None:
    """Validate a spec file: every layer, argument and shape, with the same messages as training."""
    s = _described(str(spec), input)
    console.print(
        f"[green]ok[/]: {spec} builds '{s.name}': {len(s.rows)} layers, input {s.input_shape}, "
        f"output {s.rows[-1].output_shape}, {s.total:,} params"
    )
