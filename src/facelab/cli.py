"""The ``facelab`` command line: a thin shell over the Python API.

Exit codes: 0 ok, 1 no face where one was required, 2 bad input or usage.
A bad file found inside a folder is reported on stderr and skipped; a bad file
named on the command line makes the exit code 2 (after the others are done).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from . import __version__
from .detect import DEFAULT_DETECTOR
from .errors import FacelabError, InputError, NoFaceError
from .pipeline import FaceAnalysis
from .types import Face, ImageResult, to_json

app = typer.Typer(
    name="facelab",
    help="Offline face analysis: detect, landmarks, align, embed, verify, identify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_NO_FACE, EXIT_BAD_INPUT = 0, 1, 2

# Command groups shared by several rooms: rooms add their commands to these in their register(app).
train_app = typer.Typer(help="Train models on your own data (identities, attributes, landmarks...).", no_args_is_help=True)
evaluate_app = typer.Typer(help="Measure models on labelled data: accuracy, reports, plots.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")


class RotateMode(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"
    full = "full"


def _rotate_value(mode: RotateMode) -> Any:
    return {"auto": "auto", "on": True, "off": False, "full": "full"}[mode.value]


def err(msg: str) -> None:
    typer.echo(f"facelab: {msg}", err=True)


def fail(msg: str, code: int = EXIT_BAD_INPUT) -> None:
    err(msg)
    raise typer.Exit(code)


# --- shared options -----------------------------------------------------------------

Paths = Annotated[list[str], typer.Argument(help="Images, folders (searched recursively) or http(s) URLs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Write annotated images and results.json to this folder.")]
DetectorOpt = Annotated[
    str, typer.Option("--detector", "-d", help="blazeface_ft, blazeface, hog, cnn, haar, a chain such as hog,cnn, or a YuNet-style .onnx file.")
]
RotateOpt = Annotated[RotateMode, typer.Option("--rotate", help="Rotation sweep: auto (only if no upright face), on, off, full.")]
MinFaceOpt = Annotated[int, typer.Option("--min-face", help="Smallest face to find, in pixels.")]
WorkersOpt = Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes (models load once per worker).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@dataclass
class Target:
    """One input to process and where its annotated image goes."""

    source: str
    explicit: bool  # named on the command line (not found inside a folder)
    out_name: str


def expand_inputs(paths: list[str]) -> list[Target]:
    from .io import is_url, iter_image_paths

    targets: list[Target] = []
    used: set[str] = set()
    for p in paths:
        if not is_url(p) and os.path.isdir(p):
            found = list(iter_image_paths(p))
            if not found:
                err(f"{p}: no images in this folder")
            for f in found:
                targets.append(Target(f, False, _unique(os.path.relpath(f, p), used)))
        else:
            base = p.rstrip("/").split("/")[-1].split("?")[0] or "image"
            targets.append(Target(p, True, _unique(base, used)))
    return targets


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
        from .draw import draw_faces, save_image

        path = os.path.join(self.out_dir, self.names.get(result.source, os.path.basename(result.source) + ".png"))
        save_image(draw_faces(image, result.faces, landmarks=self.landmarks), path)
        result.annotated = path


@dataclass
class IdentifyJob:
    """Pipeline followed by identification against known faces (picklable for workers)."""

    pipeline: FaceAnalysis
    known: Any = None

    def prepare(self) -> None:
        self.pipeline.prepare()

    def __call__(self, image) -> list[Face]:
        faces = self.pipeline.get(image)
        if self.known is not None:
            self.known.identify_faces(faces)
        return faces


def run_images(
    paths: list[str],
    job: Any,
    *,
    out: Path | None,
    workers: int,
    quiet: bool,
    as_json: bool,
    summarize,
    require_face: bool = False,
) -> None:
    """Process every input; print results; exit with the right code."""
    from .runner import run_many

    targets = expand_inputs(paths)
    if not targets:
        fail("no images to process")
    annot = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        annot = Annotator(str(out), {t.source: t.out_name for t in targets})
    results: list[ImageResult] = []
    explicit = {t.source for t in targets if t.explicit}
    bad_explicit = no_face = False
    show_bar = not quiet and len(targets) > 1
    it = run_many(job, [t.source for t in targets], workers=workers, post=annot)
    if show_bar:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        with progress:
            task = progress.add_task("images", total=len(targets))
            for r in it:
                results.append(r)
                progress.advance(task)
                _report(r)
    else:
        for r in it:
            results.append(r)
            _report(r)
    for r in results:
        if not r.ok and r.source in explicit:
            bad_explicit = True
        if r.ok and not r.faces:
            no_face = True
    if out is not None:
        (out / "results.json").write_text(to_json(results, indent=2))
    if as_json:
        typer.echo(to_json(results, indent=2))
    else:
        summarize(results)
        if out is not None:
            typer.echo(f"annotated images and results.json written to {out}")
    if bad_explicit or all(not r.ok for r in results):
        raise typer.Exit(EXIT_BAD_INPUT)
    if require_face and no_face:
        raise typer.Exit(EXIT_NO_FACE)


def _report(r: ImageResult) -> None:
    if not r.ok:
        err(f"{r.source}: {r.error} (skipped)")


def _summary_table(results: list[ImageResult], extra=None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(show_header=True, header_style="bold")
    t.add_column("image")
    t.add_column("faces", justify="right")
    t.add_column("details")
    for r in results:
        if not r.ok:
            t.add_row(r.source, "-", f"[red]{r.error}")
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
        t.add_row(r.source, str(len(r.faces)), "\n".join(details) or "no face")
    Console().print(t)


def _pipeline(detector: str, rotate: RotateMode, min_face: int, landmarks: str | None, embedder: str | None, flip: bool = True) -> FaceAnalysis:
    return FaceAnalysis(detector=detector, landmarks=landmarks, embedder=embedder, rotate=_rotate_value(rotate), flip=flip, detector_options={"min_face": min_face})


def _guard(fn):
    """Turn facelab errors raised outside per-image processing into one-line messages."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except NoFaceError as e:
            fail(str(e), EXIT_NO_FACE)
        except InputError as e:
            fail(str(e), EXIT_BAD_INPUT)
        except FacelabError as e:
            fail(str(e), EXIT_BAD_INPUT)

    return wrapper


# --- commands -----------------------------------------------------------------------


@app.command()
@_guard
def detect(
    paths: Paths,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = RotateMode.auto,
    min_face: MinFaceOpt = 40,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    require_face: Annotated[bool, typer.Option("--require-face", help="Exit 1 if an image has no face.")] = False,
) -> None:
    """Find faces: boxes, scores and rotation."""
    job = _pipeline(detector, rotate, min_face, None, None)
    run_images(paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, summarize=_summary_table, require_face=require_face)


@app.command()
@_guard
def landmarks(
    paths: Paths,
    model: Annotated[str, typer.Option("--model", "-m", help="dlib68 or dlib5.")] = "dlib68",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = RotateMode.auto,
    min_face: MinFaceOpt = 40,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
) -> None:
    """Find faces and their landmarks (5 or 68 points)."""
    from .landmarks import LANDMARKERS

    LANDMARKERS.resolve(model)
    job = _pipeline(detector, rotate, min_face, model, None)
    run_images(paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, summarize=lambda rs: _summary_table(rs, lambda f: f" {len(f.landmarks)} pts" if f.landmarks is not None else ""))


@app.command()
@_guard
def embed(
    paths: Paths,
    model: Annotated[str, typer.Option("--model", "-m", help="dlib, or an ArcFace/SFace-style .onnx file.")] = "dlib",
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Average with the mirrored face (default; thresholds assume it).")] = True,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = RotateMode.auto,
    min_face: MinFaceOpt = 40,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
) -> None:
    """Face embeddings (descriptors) for every face; --json prints the vectors."""
    from .embed import EMBEDDERS

    EMBEDDERS.resolve(model)
    job = _pipeline(detector, rotate, min_face, None, model, flip)
    run_images(paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, summarize=lambda rs: _summary_table(rs, lambda f: f" {len(f.embedding)}-d" if f.embedding is not None else ""), require_face=True)


@app.command()
@_guard
def verify(
    image1: Annotated[str, typer.Argument(help="First image (its largest face is used).")],
    image2: Annotated[str, typer.Argument(help="Second image.")],
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Distance at or below which faces match (default: the model's calibrated one).")] = None,
    model: Annotated[str, typer.Option("--model", "-m")] = "dlib",
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Average with the mirrored face (default; thresholds assume it).")] = True,
    detector: DetectorOpt = "hog,hog@2,cnn",
    rotate: RotateOpt = RotateMode.auto,
    min_face: MinFaceOpt = 80,
    as_json: JsonOpt = False,
) -> None:
    """Are the faces in two images the same person?  Exit 1 if either has no face."""
    from .api import verify as api_verify

    v = api_verify(image1, image2, model=model, threshold=threshold, flip=flip, detector=detector, rotate=_rotate_value(rotate), min_face=min_face)
    if as_json:
        typer.echo(to_json({"image1": image1, "image2": image2, **v.to_dict()}, indent=2))
    else:
        verdict = "same person" if v.same else "different people"
        typer.echo(f"{verdict}: distance {v.distance:.4f} {'<=' if v.same else '>'} threshold {v.threshold:.4f} ({v.model}, {v.metric})")


@app.command()
@_guard
def analyze(
    paths: Paths,
    known: Annotated[Optional[Path], typer.Option("--known", help="Folder of known people: <name>.jpg files or <name>/ sub-folders.")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Identification distance threshold.")] = None,
    landmarks_model: Annotated[str, typer.Option("--landmarks", help="dlib68 or dlib5.")] = "dlib68",
    model: Annotated[str, typer.Option("--model", "-m", help="Embedder.")] = "dlib",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = RotateMode.auto,
    min_face: MinFaceOpt = 40,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    actions: Annotated[Optional[str], typer.Option("--actions", "-a", help="Attributes per face: age,gender,emotion,ethnicity (or all).")] = None,
) -> None:
    """Everything for every face: box, landmarks, embedding, attributes (--actions), and a name when --known is given."""
    from .attributes import parse_actions, prepare_models

    pipe = _pipeline(detector, rotate, min_face, landmarks_model, model)
    pipe.attributes = parse_actions(actions)
    if pipe.attributes:
        prepare_models(pipe.attributes)  # a missing model fails here, once, not per image
    known_faces = _load_known(known, pipe, threshold) if known is not None else None
    job = IdentifyJob(pipe, known_faces)

    def extra(f: Face) -> str:
        from .draw import default_label

        return " " + default_label(f) if f.identity is not None or f.attributes else ""

    run_images(paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, summarize=lambda rs: _summary_table(rs, extra))


def _load_known(folder: Path, pipe: FaceAnalysis, threshold: float | None):
    from .embed import get_embedder
    from .gallery import KnownFaces, known_people_from_folder
    from .io import load_image

    if not folder.is_dir():
        raise InputError("not a folder", source=str(folder))
    people = known_people_from_folder(folder)
    if not people:
        raise InputError("no images of known people found", source=str(folder))
    emb = get_embedder(pipe.embedder or "dlib")
    kf = KnownFaces(emb.name, emb.threshold if threshold is None else threshold)
    enroll = FaceAnalysis(detector=pipe.detector, landmarks=None, embedder=pipe.embedder, rotate=pipe.rotate, detector_options=pipe.detector_options, max_faces=1)
    for name, path in people:
        try:
            faces = enroll.get(load_image(path))
        except InputError as e:
            err(f"{e} (known face skipped)")
            continue
        if not faces:
            err(f"{path}: no face found (known face skipped)")
            continue
        kf.add(name, faces[0].embedding)
    if not len(kf):
        raise NoFaceError("no usable known faces", source=str(folder))
    return kf


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """List the backends and check every model file (SHA-256)."""
    from .attributes import ATTRIBUTE_MODELS  # also registers its model files
    from .detect import DETECTORS
    from .embed import EMBEDDERS
    from .landmarks import LANDMARKERS
    from .models import MODEL_FILES, model_path

    files = {}
    for key in MODEL_FILES:
        try:
            files[key] = {"path": str(model_path(key)), "ok": True}
        except FacelabError as e:
            files[key] = {"ok": False, "error": str(e)}
    info = {
        "detectors": DETECTORS.describe(), "landmarks": LANDMARKERS.describe(), "embedders": EMBEDDERS.describe(),
        "attributes": ATTRIBUTE_MODELS.describe(), "model_files": files,
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for kind in ("detectors", "landmarks", "embedders", "attributes"):
        typer.echo(f"{kind}:")
        for n, h in info[kind].items():
            typer.echo(f"  {n:10s} {h}")
    typer.echo("model files:")
    for k, v in files.items():
        typer.echo(f"  {k:18s} {'ok  ' + v['path'] if v['ok'] else 'MISSING  ' + v['error']}")


# Each room with commands has a ``cli.py`` defining ``register(app: typer.Typer)``; add its module here.
# Commands of the shared groups go on ``facelab.cli.train_app`` / ``facelab.cli.evaluate_app``.
COMMAND_MODULES: list[str] = [
    "facelab.datasets.cli",
    "facelab.landmarks.cli",
    "facelab.compat.cli",
    "facelab.gallery.cli",
    "facelab.train.cli",
    "facelab.train.finetune_cli",
    "facelab.attributes.cli",
    "facelab.detect.cli",
    "facelab.batch.cli",
    "facelab.serve.cli",
    "facelab.video.cli",
]


def _register_plugins() -> None:
    import importlib

    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(app)


# Only the importable module registers plugins: under `python -m facelab.cli` this file also runs as
# __main__ (and as __mp_main__ in spawned workers), which hands over to facelab.cli (see the end).
if __name__ == "facelab.cli":
    _register_plugins()


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")] = False) -> None:
    """Offline face analysis."""


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    from facelab.cli import main as _main  # the module plugins import (this file runs as __main__ here)

    _main()
