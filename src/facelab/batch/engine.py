"""The batch driver: stream inputs in chunks through an engine, write each chunk's rows as it finishes.

>>> from facelab.batch import run_batch
>>> s = run_batch("embed", "photos/", "photos.parquet", engine="local")       # or engine="ray"
>>> s.processed, s.faces, s.images_per_s

The driver never holds more than the chunks in flight: inputs are read lazily,
each finished chunk becomes one part file at once (so a killed run loses at
most the chunks in flight), and a re-run skips every source that already has
rows.  The engines give the same rows: ``local`` (this process or a pool of
processes, :mod:`facelab.runner`) and ``ray`` (one Ray actor per CPU, each
with its own models: :mod:`facelab.batch.ray_engine`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..detect import DEFAULT_DETECTOR
from ..errors import InputError
from ..pipeline import FaceAnalysis, IdentifyJob
from ..runner import ChunkExecutor, InlineExecutor, ProcessExecutor, default_workers, run_chunks
from ..types import ImageResult
from .inputs import InputSpec, Item
from .table import OutputFolder, rows_of

TASKS = ("embed", "analyze", "identify")
ENGINES = ("local", "ray")
DEFAULT_CHUNK = 16


@dataclass
class BatchSummary:
    """What a batch run did (``images_per_s`` counts only the images processed by this run)."""

    task: str
    engine: str
    workers: int
    output: str
    pending: int = 0  # inputs this run had to do (not already in the output)
    skipped: int = 0  # inputs already in the output
    processed: int = 0
    faces: int = 0
    no_face: int = 0
    errors: int = 0
    enrolled: int = 0
    elapsed_s: float = 0.0
    images_per_s: float = 0.0
    error_codes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["elapsed_s"], d["images_per_s"] = round(self.elapsed_s, 3), round(self.images_per_s, 3)
        return d


@dataclass
class BatchOptions:
    """The pipeline settings of a batch task (recorded in the output, checked on resume)."""

    detector: str = DEFAULT_DETECTOR
    min_face: int = 40
    rotate: Any = "auto"
    flip: bool = True
    model: str = "dlib"
    landmarks: str | None = "dlib68"
    actions: tuple[str, ...] = ("age", "gender", "emotion", "ethnicity")
    db: str | None = None  # identify: the gallery
    threshold: float | None = None
    match: str = "nearest"
    top_k: int = 3
    quality: bool = False  # analyze: a quality score per face (column "quality")


def make_job(task: str, opts: BatchOptions) -> tuple[Any, dict[str, Any]]:
    """The picklable job of ``task`` and the settings that define its rows."""
    if task not in TASKS:
        raise InputError(f"unknown batch task {task!r} (choose from {', '.join(TASKS)})")
    from ..embed import EMBEDDERS

    EMBEDDERS.resolve(opts.model)
    det = {"min_face": int(opts.min_face)}
    settings: dict[str, Any] = {"task": task, "detector": opts.detector, "min_face": int(opts.min_face), "rotate": opts.rotate, "flip": bool(opts.flip)}
    if task == "embed":
        job: Any = FaceAnalysis(detector=opts.detector, landmarks=None, embedder=opts.model, rotate=opts.rotate, flip=opts.flip, detector_options=det)
        settings["model"] = opts.model
    elif task == "analyze":
        from ..attributes import parse_actions, prepare_models

        acts = parse_actions(list(opts.actions))
        if acts:
            prepare_models(acts)  # a missing model fails here, once, not on every image
        if opts.landmarks:
            from ..landmarks import LANDMARKERS

            LANDMARKERS.resolve(opts.landmarks)
        job = FaceAnalysis(
            detector=opts.detector, landmarks=opts.landmarks, embedder=opts.model, rotate=opts.rotate, flip=opts.flip, detector_options=det, attributes=acts,
            quality=opts.quality,
        )
        settings.update(model=opts.model, landmarks=opts.landmarks, actions=acts)
        if opts.quality:
            settings["quality"] = True
    else:
        from ..gallery import open_gallery

        if not opts.db:
            raise InputError("batch identify needs a gallery: --db PATH|postgresql://... (or $FACELAB_DB)")
        g = open_gallery(opts.db, threshold=opts.threshold, match=opts.match, top_k=opts.top_k, detector=opts.detector, rotate=opts.rotate, min_face=opts.min_face)
        g.check_ready()  # an empty gallery or another model fails here, before any image work
        if g.search_kind() == "faiss":
            g.refresh()  # build/save the index once, before the workers load it
        job = IdentifyJob(FaceAnalysis(detector=opts.detector, landmarks=None, embedder=g.embedder_spec, rotate=opts.rotate, flip=opts.flip, detector_options=det), g)
        settings.update(model=g.embedder_spec, db=g.url, threshold=round(g.threshold, 6), match=opts.match, top_k=opts.top_k)
    return job, settings


def make_executor(job: Any, engine: str, workers: int | None, address: str | None = None) -> ChunkExecutor:
    """The executor of ``engine``: ``local`` (``workers`` processes, 1 = this process) or ``ray``."""
    if engine == "local":
        if address:
            raise InputError("--address is for --engine ray")
        n = workers or default_workers()
        return InlineExecutor(job) if n <= 1 else ProcessExecutor(job, workers=n)
    if engine == "ray":
        from .ray_engine import RayExecutor

        return RayExecutor(job, workers=workers, address=address)
    raise InputError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")


def _chunks(items: Iterator[Item], size: int, seen: set[str], labels: dict[str, str | None]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for it in items:
        if it.source in seen:
            continue
        seen.add(it.source)
        labels[it.source] = it.label
        chunk.append(it.source)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_batch(
    task: str,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    options: BatchOptions | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    label_from_folder: bool = False,
    enroll_db: str | None = None,
    merge: bool = True,
    progress: bool = True,
    on_chunk: Callable[[list[ImageResult]], None] | None = None,
    limit: int | None = None,
) -> BatchSummary:
    """Run ``task`` (embed, analyze, identify) on every image of ``input``; rows go to the ``output`` folder.

    Resumable: sources already in ``output`` are skipped, so re-running the same
    command after a crash or a kill finishes the job.  Images that cannot be
    processed become error rows.  ``enroll_db`` also enrols the largest face of
    every labelled image (manifest ``label`` column, or ``label_from_folder``)
    into that gallery.  ``merge`` compacts the part files once every input is done.  ``limit``: only the
    first N inputs (a quick try; a later run without it does the rest).
    """
    opts = options or BatchOptions()
    spec = InputSpec(os.fspath(input), label_from_folder=label_from_folder, limit=limit)
    job, settings = make_job(task, opts)
    folder = OutputFolder(Path(output))
    folder.check_settings(settings)
    folder.clean()
    done = folder.done_sources()
    seen = set(done)
    pending, skipped = _count_pending(spec, done)
    gallery = None
    if enroll_db:
        from ..gallery import open_gallery

        gallery = open_gallery(enroll_db)
    summary = BatchSummary(task, engine, 0, str(folder.path), pending=pending, skipped=skipped)
    if pending == 0:
        _close(gallery, job)
        if merge:
            folder.merge()
        return summary
    labels: dict[str, str | None] = {}
    writer = folder.new_run()
    executor = make_executor(job, engine, workers, address)
    summary.workers = getattr(executor, "workers", 1)
    bar = _Bar(task, pending, progress)
    t0 = time.perf_counter()
    try:
        with bar:
            for chunk, results in run_chunks(None, _chunks(iter(spec), max(1, chunk_size), seen, labels), executor=executor):
                rows = []
                for r in results:
                    rows += rows_of(r, labels.get(r.source))
                writer.write(rows)
                if gallery is not None:
                    summary.enrolled += _enroll(gallery, results, labels)
                for src in chunk:
                    labels.pop(src, None)
                _count(summary, results)
                if on_chunk is not None:
                    on_chunk(results)
                bar.advance(len(results))
    finally:
        executor.close()
        _close(gallery, job)
    summary.elapsed_s = time.perf_counter() - t0
    summary.images_per_s = summary.processed / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    if merge:
        folder.merge()
    return summary


def _close(gallery, job) -> None:
    """Close the enrolment gallery and identify's gallery (the workers opened their own)."""
    for g in (gallery, getattr(job, "known", None)):
        if g is not None and hasattr(g, "close"):
            g.close()


def _count_pending(spec: InputSpec, done: set[str]) -> tuple[int, int]:
    """(inputs to do, inputs already done), each source counted once."""
    todo: set[str] = set()
    skipped: set[str] = set()
    for it in spec:
        (skipped if it.source in done else todo).add(it.source)
    return len(todo), len(skipped)


def _count(s: BatchSummary, results: list[ImageResult]) -> None:
    for r in results:
        s.processed += 1
        if not r.ok:
            s.errors += 1
            s.error_codes[r.error_code or "error"] = s.error_codes.get(r.error_code or "error", 0) + 1
        elif not r.faces:
            s.no_face += 1
        s.faces += len(r.faces)


def _enroll(gallery, results: list[ImageResult], labels: dict[str, str | None]) -> int:
    """Enrol the largest face of each labelled image (idempotent: re-runs add nothing twice)."""
    by_name: dict[str, tuple[list, list[str]]] = {}
    for r in results:
        name = labels.get(r.source)
        if not name or not r.ok or not r.faces or r.faces[0].embedding is None:
            continue
        embs, srcs = by_name.setdefault(name, ([], []))
        embs.append(r.faces[0].embedding)
        srcs.append(r.source)
    n = 0
    for name, (embs, srcs) in by_name.items():
        n += sum(res.status == "added" for res in gallery.enroll_embeddings(name, embs, sources=srcs))
    return n


class _Bar:
    """A rich progress bar with images/s and ETA (on stderr; nothing when off)."""

    def __init__(self, what: str, total: int, show: bool):
        self.what, self.total, self.show = what, total, show
        self._p = None

    def __enter__(self) -> _Bar:
        if self.show:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                ProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.text import Text

            class Rate(ProgressColumn):
                def render(self, task) -> Text:
                    return Text(f"{task.speed:.1f} img/s" if task.speed else "- img/s")

            self._p = Progress(
                TextColumn(f"[bold]{self.what}"), BarColumn(), MofNCompleteColumn(), Rate(), TextColumn("ETA"), TimeRemainingColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True, speed_estimate_period=60,
            )  # fmt: skip
            self._p.__enter__()
            self._task = self._p.add_task(self.what, total=self.total)
        return self

    def advance(self, n: int) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)


__all__ = ["DEFAULT_CHUNK", "ENGINES", "TASKS", "BatchOptions", "BatchSummary", "make_executor", "make_job", "run_batch"]
