"""What the two command-line tools share: the per-image job, the worker pool, progress and warnings."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import click
import numpy as np

from ...types import Box, Embedding, Face, ImageResult
from . import api

_IMAGE_NAME = re.compile(r".*\.(jpg|jpeg|png)", flags=re.IGNORECASE)


def image_files_in_folder(folder: str) -> list[str]:
    """The .jpg/.jpeg/.png files directly in ``folder``, sorted (the original used directory order)."""
    return [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if _IMAGE_NAME.match(f) and os.path.isfile(os.path.join(folder, f))]


@dataclass
class FacesJob:
    """Locate (and optionally encode) the faces of one loaded image exactly as the original tools do.

    Picklable, so :func:`facelab.runner.run_many` can run it in worker processes
    (each loads its models once, in :meth:`prepare`).
    """

    model: str = "hog"
    upsample: int = 1
    encode: bool = False
    #: shrink images larger than this (PIL thumbnail, LANCZOS) first, like ``face_recognition``'s CLI; 0 = never
    max_side: int = 0

    def prepare(self) -> None:
        (api._cnn() if self.model == "cnn" else api._hog()).prepare()
        if self.encode:
            api._predictor("small").prepare()
            api._encoder().prepare()

    def __call__(self, image: np.ndarray) -> list[Face]:
        if self.max_side and max(image.shape) > self.max_side:
            import PIL.Image

            pil = PIL.Image.fromarray(image)
            pil.thumbnail((self.max_side, self.max_side), PIL.Image.LANCZOS)
            image = np.array(pil)
        if not self.encode:
            return [Face(Box(l, t, r, b), 1.0, self.model) for t, r, b, l in api.face_locations(image, self.upsample, self.model)]
        raw = api._raw_face_locations(image, self.upsample, self.model)
        rects = [f.rect if isinstance(f, api.MmodRectangle) else f for f in raw]
        css = [(r.top(), r.right(), r.bottom(), r.left()) for r in rects]  # untrimmed: the landmark model sees dlib's own box
        faces = [Face(Box(l, t, r, b), 1.0, self.model) for t, r, b, l in css]
        for face, enc in zip(faces, api.face_encodings(image, css)):
            face.embedding = Embedding(enc, "dlib")
        return faces


def workers(cpus: int) -> int:
    """``--cpus``: -1 means every core this process may use."""
    from ...runner import default_workers

    if cpus == -1:
        return default_workers()
    if cpus < 1:
        raise click.BadParameter("must be a positive number of cores, or -1 for all of them", param_hint="'--cpus'")
    return cpus


def run(paths: list[str], job: FacesJob, cpus: int, what: str = "images") -> Iterator[ImageResult]:
    """One result per path, in order, from ``cpus`` worker processes; a progress bar on an interactive stderr."""
    from ...runner import run_many

    it = run_many(job, paths, workers=workers(cpus))
    if len(paths) < 2 or not sys.stderr.isatty():
        yield from it
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True
    ) as bar:
        task = bar.add_task(what, total=len(paths))
        for r in it:
            bar.advance(task)
            yield r


def warn_failed(result: ImageResult, action: str = "Skipping") -> None:
    """A one-line warning on stderr for an image that could not be read (the original crashed)."""
    click.echo(f"WARNING: {result.source}: {result.error}. {action} file.", err=True)


def fail(message: str) -> None:
    """Stop with a one-line error and exit code 2 (bad input)."""
    click.echo(f"Error: {message}", err=True)
    raise click.exceptions.Exit(2)
