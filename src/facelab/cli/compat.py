"""``facelab compat ...``: other tools' command lines, same options and output.

``facelab compat face_recognition KNOWN IMAGES`` and ``facelab compat
face_detection IMAGES`` forward their arguments untouched to the ``click``
commands of :mod:`facelab.compat.face_recognition` (so ``--help`` shows the
original's options).
"""

from __future__ import annotations

import typer

compat_app = typer.Typer(
    help="Drop-in command lines of other face tools (face_recognition's face_recognition and face_detection).", no_args_is_help=True
)

_FORWARD = {"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False}


def _forward(ctx: typer.Context, module: str, name: str) -> None:
    import importlib

    command = importlib.import_module(f"facelab.compat.face_recognition.{module}").main
    command.main(args=list(ctx.args), prog_name=f"facelab compat {name}", standalone_mode=True)


@compat_app.command("face_recognition", context_settings=_FORWARD, add_help_option=False)
def face_recognition(ctx: typer.Context) -> None:
    """Recognise known people: KNOWN_PEOPLE_FOLDER IMAGE_TO_CHECK [--cpus N] [--tolerance T] [--show-distance BOOL]."""
    _forward(ctx, "face_recognition_cli", "face_recognition")


@compat_app.command("face_detection", context_settings=_FORWARD, add_help_option=False)
def face_detection(ctx: typer.Context) -> None:
    """Print face boxes: IMAGE_TO_CHECK [--cpus N] [--model hog|cnn]."""
    _forward(ctx, "face_detection_cli", "face_detection")


def register(app: typer.Typer) -> None:
    app.add_typer(compat_app, name="compat")
