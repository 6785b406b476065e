"""The ``cnnlab`` command: thin typed commands over the library.

Every command is a few lines that call the library; errors raised on purpose
(``cnnlab.errors.CnnlabError``) are printed as one line without a traceback and
exit with 2 for bad usage, 1 otherwise.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from cnnlab.errors import CnnlabError
from cnnlab.ranks import is_main_process

err_console = Console(stderr=True)


class CnnlabGroup(TyperGroup):
    """Prints a CnnlabError as one line (no traceback) and exits with the error's own code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CnnlabError as e:
            if is_main_process():  # of several training processes, rank 0 speaks for all
                # the message is text, not markup: "[height, width]" must print as it is
                err_console.print(f"[bold red]Error:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None


app = typer.Typer(
    cls=CnnlabGroup,
    help="cnnlab: see exactly how CNNs compute, build them in Keras's words, train and inspect them.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)

from cnnlab.cli import arith, data, export, inspect, models, report, serve, train  # noqa: E402,F401  (registers the commands)


def main() -> None:
    app()
