"""Parsing of option values shared by several commands (pairs, padding), and Typer options made from the fields
of a dataclass (the options of ``cnnlab train`` are :class:`cnnlab.training.TrainConfig`'s fields)."""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing

import typer

from cnnlab.errors import InputError, PaddingError

ALLOW_NONFINITE = typer.Option(
    False, "--allow-nonfinite", help="Load a model whose weights hold NaN or infinity (a warning, not an error)."
)


def print_table(console, table) -> None:
    """Print a rich table at its natural width, so cells never wrap when output goes to a pipe or file."""
    needed = console.measure(table, options=console.options.update(max_width=1000)).maximum
    width = console.width
    console.width = max(width, needed)  # print() clamps its width= to the console's, so widen the console
    try:
        console.print(table)
    finally:
        console.width = width


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    """``"2"`` -> (2,); ``"2,1"`` or ``"2 1"`` -> (2, 1)."""
    parts = [p for p in re.split(r"[\s,x]+", text.strip()) if p]
    try:
        return tuple(int(p) for p in parts) if parts else ()
    except ValueError:
        raise InputError(
            f"{name} {text!r} is not a whole number or a pair. Expected e.g. {name} 2 or {name} 2,1."
        ) from None


def parse_pair(text: str, name: str) -> tuple[int, int]:
    values = parse_ints(text, name)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise InputError(f"{name} {text!r} has {len(values)} values. Expected one value or two (height,width).")
    if min(values) < 1:
        raise InputError(f"{name} {text!r} is below 1. Expected {name} >= 1, e.g. {name} 1.")
    return values  # type: ignore[return-value]


def parse_padding(text: str):
    """``same`` / ``valid`` (any case) or explicit ``top,bottom,left,right``."""
    word = text.strip().lower()
    if word in ("same", "valid"):
        return word
    if re.fullmatch(r"[\d\s,]+", word):
        values = parse_ints(word, "--padding")
        if len(values) == 4:
            return ((values[0], values[1]), (values[2], values[3]))
    raise PaddingError(
        f"Unknown padding {text!r}. Expected 'same', 'valid' (any case) or explicit top,bottom,left,right "
        "such as 0,1,0,1. Use --padding same to keep the size at stride 1."
    )


def _option_type(annotation):
    """The type a Typer option is declared with for a field's type, and how its text becomes the field's value:
    bool is a flag; a list of whole numbers is given as "H,W"; any other type is itself, maybe absent."""
    if annotation is bool:
        return bool, None
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    inner = args[0] if isinstance(annotation, types.UnionType) and len(args) == 1 else annotation
    if typing.get_origin(inner) is list:
        return str | None, lambda text, flag: list(parse_pair(text, flag))
    return inner | None, None


def dataclass_options(cls) -> tuple[list[inspect.Parameter], dict]:
    """A Typer option for every field of the dataclass ``cls`` (``--batch-size`` for ``batch_size``, its help
    from the field's ``metadata["help"]``), each None (a flag False) when not given, and the parsers that turn
    the text of some of them into the field's value (``apply_parsers``)."""
    hints = typing.get_type_hints(cls)
    params, parsers = [], {}
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        annotation, parse = _option_type(hints[f.name])
        default = False if annotation is bool else None
        option = typer.Option(default, flag, help=f.metadata.get("help", ""))
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
        if parse:
            parsers[f.name] = (parse, flag)
    return params, parsers


def given_options(values: dict, parsers: dict) -> dict:
    """The options a user gave (not None, flags not False), with the text of parsed ones turned into values."""
    given = {k: v for k, v in values.items() if v is not None and v is not False}
    return {k: parsers[k][0](v, parsers[k][1]) if k in parsers else v for k, v in given.items()}


def command(app: typer.Typer, name: str, body, params: list[inspect.Parameter]):
    """Register ``body(**values)`` as the command ``name`` whose options are ``params`` (its docstring is
    the help text)."""
    body.__signature__ = inspect.Signature(params)
    body.__annotations__ = {p.name: p.annotation for p in params}
    return app.command(name)(body)
