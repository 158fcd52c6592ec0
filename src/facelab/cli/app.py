"""The ``facelab`` application: the root command, its command groups, ``main()``."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from .. import __version__
from . import anonymize, batch, compat, dataset, evaluate, gallery, images, serve, stream, train
from ..quiet import hush_third_party, unhush_third_party
from .common import VerboseOpt, err, fail

app = typer.Typer(
    name="facelab",
    help="Offline face analysis: detect, landmarks, align, embed, verify, identify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: every module of commands, in the order of ``facelab --help``; each has ``register(app)``
COMMAND_MODULES = (images, gallery, dataset, train, evaluate, batch, stream, anonymize, serve, compat)
for _module in COMMAND_MODULES:
    _module.register(app)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")] = False,
    verbose: VerboseOpt = False,
    licence: Annotated[
        Optional[str],
        typer.Option("--licence", help="commercial: use only models whose weights and training data allow commercial use (also FACELAB_LICENCE)."),
    ] = None,
) -> None:
    """Offline face analysis."""
    if verbose:
        unhush_third_party()
    else:
        hush_third_party()
    if licence is not None:
        from ..models import LICENCE_POLICIES, set_licence_policy

        if licence not in LICENCE_POLICIES:
            fail(f"--licence must be one of {', '.join(LICENCE_POLICIES)}, not {licence!r}")
        set_licence_policy(licence)
        os.environ["FACELAB_LICENCE"] = licence  # worker processes read it too


def main() -> None:
    """The ``facelab`` console script (``-v`` / ``--verbose`` may come anywhere on the line)."""
    args = sys.argv[1:]
    if "--" not in args and any(a in ("-v", "--verbose") for a in args[1:]):
        args = ["--verbose"] + [a for a in args if a not in ("-v", "--verbose")]
    try:
        app(args)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)


__all__ = ["COMMAND_MODULES", "app", "main"]
