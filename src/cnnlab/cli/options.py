"""Parsing of option values shared by several commands (pairs, padding)."""

from __future__ import annotations

import re

from cnnlab.errors import InputError, PaddingError


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
