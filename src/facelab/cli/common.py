"""What every ``facelab`` command shares: options and their defaults, errors and exit codes, output.

Options are ``Annotated`` types used as ``detector: DetectorOpt = DEFAULT_DETECTOR``; the
defaults are defined here once (from the library's constants), so every command finds
faces the same way unless told otherwise.

Exit codes: 0 ok, 1 no face where one was required (or nothing usable came out),
2 bad input or usage.  A bad file found inside a folder is reported on stderr and
skipped; a bad file named on the command line makes the exit code 2 (after the
others are done).  ``--json`` prints JSON only on stdout; messages go to stderr.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..detect import DEFAULT_DETECTOR
from ..errors import FacelabError, NoFaceError, NothingEvaluatedError
from ..pipeline import FaceAnalysis
from ..types import Face, ImageResult, to_json

EXIT_OK, EXIT_NO_FACE, EXIT_BAD_INPUT = 0, 1, 2


class RotateMode(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"
    full = "full"


def rotate_value(mode: RotateMode | str | bool) -> Any:
    """The library's ``rotate`` argument (``"auto"``, True, False, ``"full"``) for a ``--rotate`` mode."""
    if isinstance(mode, bool):
        return mode
    return {"auto": "auto", "on": True, "off": False, "full": "full"}[RotateMode(mode).value]


#: the defaults of every command that finds faces (documented once, in the README's "Command line" section)
DEFAULT_ROTATE = RotateMode.auto
DEFAULT_MIN_FACE = 40

# --- shared options -----------------------------------------------------------------

Paths = Annotated[list[str], typer.Argument(help="Images, folders (searched recursively, symlinks followed) or http(s) URLs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout (and nothing else).")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Write annotated images and results.json to this folder.")]
DetectorOpt = Annotated[
    str,
    typer.Option(
        "--detector", "-d", help="blazeface_ft, blazeface, blazeface_short, hog, cnn, haar, a chain such as hog,cnn, or a YuNet-style .onnx file."
    ),
]
RotateOpt = Annotated[RotateMode, typer.Option("--rotate", help="Faces at any angle: auto (search other angles when no face is found or a face looks turned), on (always search), off, full (every 15 degrees).")]
MinFaceOpt = Annotated[int, typer.Option("--min-face", min=8, help="Smallest face to find, in pixels.")]
WorkersOpt = Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes (models load once per worker).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N items (a quick try).")]
#: the embedder option of every command that embeds faces (``--model`` is kept as an alias: it came first)
EmbedderOpt = Annotated[
    str, typer.Option("--embedder", "--model", "-m", help="Embedder: dlib, or an .onnx file (from `facelab train embedder`, or ArcFace/SFace-style).")
]
PerPersonLimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N images of each person (a quick try).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Also show the warnings of third-party libraries.")]
DbOpt = Annotated[
    Optional[str], typer.Option("--db", help="Gallery: a file path, sqlite:///path or postgresql://... (default $FACELAB_DB, else $FACELAB_HOME/gallery.db).")
]

# --- messages, errors, exit codes ----------------------------------------------------


def err(msg: str) -> None:
    """A message on stderr, prefixed ``facelab:``."""
    typer.echo(f"facelab: {msg}", err=True)


def fail(msg: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print one line on stderr and exit with ``code``."""
    err(msg)
    raise typer.Exit(code)


def guard(fn: Callable) -> Callable:
    """Turn facelab errors raised outside per-image processing into one-line messages and exit codes."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except (NoFaceError, NothingEvaluatedError) as e:  # no face / nothing usable came out
            fail(str(e), EXIT_NO_FACE)
        except FacelabError as e:
            fail(str(e), EXIT_BAD_INPUT)

    return wrapper


# --- output ---------------------------------------------------------------------------


def print_json(obj: Any) -> None:
    """JSON on stdout: facelab results (dataclasses with ``to_dict``) or plain data."""
    typer.echo(to_json(obj, indent=2, default=str))


def new_table(*columns: str, title: str | None = None, left: Sequence[str] = ()) -> Any:
    """A rich table with bold headers; the first column (and those in ``left``) left-aligned, the rest right-aligned."""
    from rich.table import Table

    t = Table(show_header=True, header_style="bold", title=title)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 or c in left else "right", overflow="fold")
    return t


def print_table(table: Any) -> None:
    """Print a rich table on stdout at its full width (nothing cut, whatever the terminal)."""
    from rich.console import Console

    needed = Console(width=100_000).measure(table).maximum
    con = Console()
    if needed > con.width:
        con = Console(width=needed)
    con.print(table)


def progress_bar(*extra_columns: Any, transient: bool = True) -> Any:
    """A rich progress bar on stderr: description, bar, done/total, ``extra_columns``, time left."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *extra_columns, TimeRemainingColumn(),
        console=Console(stderr=True), transient=transient,
    )  # fmt: skip


# --- images in, results out ------------------------------------------------------------


def make_pipeline(
    detector: str, rotate: RotateMode | str | bool, min_face: int, landmarks: str | None, embedder: str | None, flip: bool = True
) -> FaceAnalysis:
    """The pipeline of a command's shared detection options."""
    return FaceAnalysis(
        detector=detector, landmarks=landmarks, embedder=embedder, rotate=rotate_value(rotate), flip=flip, detector_options={"min_face": min_face}
    )


@dataclass
class Target:
    """One input to process, where its annotated image goes, and how tables show it."""

    source: str
    explicit: bool  # named on the command line (not found inside a folder)
    out_name: str
    shown: str  # relative to the folder it was found in (or as given)


def expand_inputs(paths: list[str], limit: int | None = None) -> list[Target]:
    """Files, folders (expanded) and URLs -> targets, in order; at most ``limit``."""
    from ..io import is_url, iter_image_paths

    targets: list[Target] = []
    used: set[str] = set()
    for p in paths:
        if not is_url(p) and os.path.isdir(p):
            found = list(iter_image_paths(p))
            if not found:
                err(f"{p}: no images in this folder")
            for f in found:
                rel = os.path.relpath(f, p)
                targets.append(Target(f, False, _unique(rel, used), rel))
        else:
            base = p.rstrip("/").split("/")[-1].split("?")[0] or "image"
            targets.append(Target(p, True, _unique(base, used), p))
    return targets[:limit] if limit else targets


def _unique(rel: str, used: set[str]) -> str:
    stem, ext = os.path.splitext(rel.replace(os.sep, "__"))
    ext = ext.lower() if ext.lower() in (".jpg", ".jpeg", ".png") else ".png"
    name, i = stem + ext, 1
    while name in used:
        i += 1
        name = f"{stem}-{i}{ext}"
    used.add(name)
    return name


@dataclass
class Annotator:
    """Writes the annotated image of a result (runs inside workers)."""

    out_dir: str
    names: dict[str, str] = field(default_factory=dict)
    landmarks: bool = True

    def __call__(self, image, result: ImageResult) -> None:
        from ..draw import draw_faces, save_image

        path = os.path.join(self.out_dir, self.names.get(result.source, os.path.basename(result.source) + ".png"))
        save_image(draw_faces(image, result.faces, landmarks=self.landmarks), path)
        result.annotated = path


@dataclass
class CropSaver:
    """Writes an aligned chip of every face of a result (runs inside workers), after the annotator when there is one."""

    out_dir: str
    names: dict[str, str] = field(default_factory=dict)
    then: Any = None
    options: dict[str, Any] = field(default_factory=dict)  # size, padding, method of facelab.save_crops

    def __call__(self, image, result: ImageResult) -> None:
        from ..api import save_crops

        if self.then is not None:
            self.then(image, result)
        stem = os.path.splitext(self.names.get(result.source, os.path.basename(result.source)))[0]
        save_crops(image, self.out_dir, result.faces, stem=stem, **self.options)


SaveCropsOpt = Annotated[Optional[Path], typer.Option("--save-crops", help="Write an aligned chip of every face here (<image>_face<i>[_<name>].jpg, 150 px, dlib alignment).")]


def run_images(
    paths: list[str],
    job: Any,
    *,
    out: Path | None,
    workers: int,
    quiet: bool,
    as_json: bool,
    extra: Callable[[Face], str] | None = None,
    require_face: bool = False,
    limit: int | None = None,
    save_crops: Path | None = None,
    crop_options: dict[str, Any] | None = None,
) -> list[ImageResult]:
    """Process every input with ``job``; print a table (``extra(face)`` adds to each face's details) or JSON; exit with the right code.

    ``save_crops``: also write an aligned chip of every face to this folder (:func:`facelab.save_crops`).
    """
    from ..runner import run_many

    targets = expand_inputs(paths, limit)
    if not targets:
        fail("no images to process")
    annot = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        annot = Annotator(str(out), {t.source: t.out_name for t in targets})
    if save_crops is not None:
        save_crops.mkdir(parents=True, exist_ok=True)
        annot = CropSaver(str(save_crops), {t.source: t.out_name for t in targets}, annot, dict(crop_options or {}))
    results: list[ImageResult] = []
    explicit = {t.source for t in targets if t.explicit}
    it = run_many(job, [t.source for t in targets], workers=workers, post=annot)
    if not quiet and len(targets) > 1:
        with progress_bar() as progress:
            task = progress.add_task("images", total=len(targets))
            for r in it:
                results.append(r)
                progress.advance(task)
                _report(r)
    else:
        for r in it:
            results.append(r)
            _report(r)
    if out is not None:
        (out / "results.json").write_text(to_json(results, indent=2))
    if as_json:
        print_json(results)
    else:
        summary_table(results, extra, shown={t.source: t.shown for t in targets})
        if out is not None:
            typer.echo(f"annotated images and results.json written to {out}")
        if save_crops is not None:
            typer.echo(f"{sum(len(r.faces) for r in results if r.ok)} aligned face chips written to {save_crops}")
    if any(not r.ok and r.source in explicit for r in results) or all(not r.ok for r in results):
        raise typer.Exit(EXIT_BAD_INPUT)
    if require_face and any(r.ok and not r.faces for r in results):
        raise typer.Exit(EXIT_NO_FACE)
    return results


def _report(r: ImageResult) -> None:
    if not r.ok:
        err(f"{r.source}: {r.error} (skipped)")


def summary_table(results: list[ImageResult], extra: Callable[[Face], str] | None = None, shown: dict[str, str] | None = None) -> None:
    """One row per image: its name (relative to the folder given), the number of faces, each face's box and ``extra(face)``."""
    t = new_table("image", "faces", "details", left=("details",))
    shown = shown or {}
    for r in results:
        name = shown.get(r.source, r.source)
        if not r.ok:
            t.add_row(name, "-", f"[red]{r.error}")
            continue
        details = []
        for f in r.faces:
            b = f.box
            d = f"[{b.left:.0f},{b.top:.0f},{b.right:.0f},{b.bottom:.0f}]"
            if f.rotation:
                d += f" rot {f.rotation:+.0f}°"
            if extra:
                d += extra(f)
            details.append(d)
        t.add_row(name, str(len(r.faces)), "\n".join(details) or "no face")
    print_table(t)


def face_label(f: Face) -> str:
    """`` name (distance) age gender ...`` of a face that has an identity or attributes (else empty)."""
    from ..draw import default_label

    return " " + default_label(f) if f.identity is not None or f.attributes else ""


__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_MIN_FACE",
    "DEFAULT_ROTATE",
    "EXIT_BAD_INPUT",
    "EmbedderOpt",
    "PerPersonLimitOpt",
    "EXIT_NO_FACE",
    "EXIT_OK",
    "Annotator",
    "DbOpt",
    "DetectorOpt",
    "JsonOpt",
    "LimitOpt",
    "MinFaceOpt",
    "OutOpt",
    "Paths",
    "QuietOpt",
    "RotateMode",
    "RotateOpt",
    "Target",
    "VerboseOpt",
    "WorkersOpt",
    "err",
    "expand_inputs",
    "face_label",
    "fail",
    "guard",
    "make_pipeline",
    "new_table",
    "print_json",
    "print_table",
    "progress_bar",
    "rotate_value",
    "run_images",
    "summary_table",
]
