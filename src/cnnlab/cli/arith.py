"""``cnnlab conv``, ``cnnlab pool`` and ``cnnlab padding``: exact arithmetic, explained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from cnnlab.arith import explain_conv, explain_pool, load_array, padding_for
from cnnlab.arith.matrix import as_batch, stack_kernels
from cnnlab.atomic import atomic_writer
from cnnlab.cli import app
from cnnlab.cli.options import parse_ints, parse_padding, parse_pair
from cnnlab.errors import InputError

console = Console(highlight=False)

InputOpt = typer.Option(
    ..., "--input", "-i", help='Matrix "1 2 3; 4 5 6", or a .npy (H,W | H,W,C | N,H,W,C) / .txt file.'
)
StridesOpt = typer.Option("1", "--strides", "-s", help="Stride: 2, or height,width like 2,1.")
PaddingOpt = typer.Option("valid", "--padding", "-p", help="same, valid (any case) or top,bottom,left,right.")
TraceOpt = typer.Option(False, "--trace", help="Print the computation of every output cell.")
FigureOpt = typer.Option(None, "--figure", help="Draw the padded input, one window and the output to this PNG.")
CellOpt = typer.Option(None, "--cell", help="Output cell row,col to highlight in --figure (default: the last).")
ChannelOpt = typer.Option(0, "--channel", help="Output channel drawn in --figure.")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of text.")
SaveOpt = typer.Option(None, "--save", help="Save the output (N,H,W,C) as .npy, e.g. to pool it next.")


def _present(ex, trace, figure: Path | None, cell: str | None, channel: int, as_json: bool, save: Path | None):
    from cnnlab.viz.terminal import explanation

    if save is not None:
        if save.suffix != ".npy":
            raise InputError(f"--save {save} must end in .npy. Expected e.g. --save out.npy.")
        with atomic_writer(save) as f:
            np.save(f, ex.output)
    if figure is not None:
        from cnnlab.viz.arith import draw_explanation

        if not 0 <= channel < ex.output.shape[3]:
            raise InputError(f"--channel {channel} does not exist. Expected 0..{ex.output.shape[3] - 1}.")
        cell_ = parse_ints(cell, "--cell") if cell else None
        if cell_ is not None and len(cell_) != 2:
            raise InputError(f"--cell {cell!r} is not row,col. Expected e.g. --cell 1,1.")
        draw_explanation(ex, figure, cell_, channel)
    if as_json:
        print(json.dumps(ex.to_dict(trace=trace)))
        return
    console.print(explanation(ex, trace=trace), soft_wrap=True)
    for path, what in ((figure, "figure"), (save, "output")):
        if path is not None:
            console.print(f"{what} written to {path}", soft_wrap=True)


@app.command()
def conv(
    input: str = InputOpt,
    kernel: list[str] = typer.Option(
        ...,
        "--kernel",
        "-k",
        help='Kernel "1 1; 1 1"; repeat for more output channels, or a .npy file (kh,kw,C,O).',
    ),
    strides: str = StridesOpt,
    padding: str = PaddingOpt,
    dilation: str = typer.Option("1", "--dilation", "-d", help="Dilation: 2, or height,width."),
    trace: bool = TraceOpt,
    figure: Path | None = FigureOpt,
    cell: str | None = CellOpt,
    channel: int = ChannelOpt,
    json_out: bool = JsonOpt,
    save: Path | None = SaveOpt,
) -> None:
    """Compute a convolution exactly as tf.nn.conv2d does, and show where the padding goes.

    Example: cnnlab conv --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 1; 1 1" --padding same
    """
    x = as_batch(load_array(input, "--input"), "--input")
    k = stack_kernels([load_array(text, "--kernel") for text in kernel])
    ex = explain_conv(
        x, k, parse_pair(strides, "--strides"), parse_padding(padding), parse_pair(dilation, "--dilation")
    )
    _present(ex, trace, figure, cell, channel, json_out, save)


@app.command()
def pool(
    input: str = InputOpt,
    mode: str = typer.Option("max", "--mode", "-m", help="max or avg."),
    size: str = typer.Option("2", "--size", help="Pool size: 2, or height,width."),
    strides: str | None = typer.Option(None, "--strides", "-s", help="Stride (default: the pool size, as in Keras)."),
    padding: str = PaddingOpt,
    trace: bool = TraceOpt,
    figure: Path | None = FigureOpt,
    cell: str | None = CellOpt,
    channel: int = ChannelOpt,
    json_out: bool = JsonOpt,
    save: Path | None = SaveOpt,
) -> None:
    """Compute max or average pooling exactly as tf.nn.max_pool2d / avg_pool2d do.

    Padding cells are absent, never zeros. Example: cnnlab pool --input conv.npy --size 2 --strides 1 --padding same
    """
    x = as_batch(load_array(input, "--input"), "--input")
    size_ = parse_pair(size, "--size")
    strides_ = parse_pair(strides, "--strides") if strides is not None else None
    ex = explain_pool(x, size_, strides_, parse_padding(padding), mode)
    _present(ex, trace, figure, cell, channel, json_out, save)


@app.command()
def padding(
    size: int = typer.Option(..., "--size", help="Input size along one axis, e.g. 28."),
    kernel: int = typer.Option(..., "--kernel", "-k", help="Kernel (or pool) size along the axis."),
    stride: int = typer.Option(1, "--stride", "-s"),
    dilation: int = typer.Option(1, "--dilation", "-d"),
    mode: str = typer.Option("same", "--padding", "-p", help="same or valid."),
    op: str = typer.Option("conv", "--op", help="conv, max or avg: what PyTorch would need differs."),
    json_out: bool = JsonOpt,
) -> None:
    """Output size and padding before/after for one axis, TensorFlow's way, and PyTorch's equivalent.

    Example: cnnlab padding --size 28 --kernel 3 --stride 2 --padding same
    """
    ops = {"conv": "conv2d", "max": "max_pool2d", "avg": "avg_pool2d"}
    if op not in ops:
        raise InputError(f"Unknown --op {op!r}. Expected one of conv, max, avg.")
    ax = padding_for(size, kernel, stride, dilation, mode)
    note = ax.torch_note(ops[op])
    if json_out:
        print(
            json.dumps(
                {
                    "out": ax.out,
                    "before": ax.before,
                    "after": ax.after,
                    "formula": ax.formula(),
                    "pytorch": note,
                    "torch_padding": ax.torch_padding,
                }
            )
        )
        return
    console.print(f"[bold]{ax.formula()}[/]", soft_wrap=True)
    console.print(f"output {ax.out}, padding before {ax.before}, after {ax.after}")
    console.print(note, soft_wrap=True)
