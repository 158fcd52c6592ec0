"""The ``facelab`` application: the root command, its command groups, ``main()``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from . import batch, compat, dataset, evaluate, gallery, images, serve, stream, train
from .common import err

app = typer.Typer(
    name="facelab",
    help="Offline face analysis: detect, landmarks, align, embed, verify, identify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: every module of commands, in the order of ``facelab --help``; each has ``register(app)``
COMMAND_MODULES = (images, gallery, dataset, train, evaluate, batch, stream, serve, compat)
for _module in COMMAND_MODULES:
    _module.register(app)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")] = False) -> None:
    """Offline face analysis."""


def main() -> None:
    """The ``facelab`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)


__all__ = ["COMMAND_MODULES", "app", "main"]
