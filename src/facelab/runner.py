"""Run a pipeline over many images, in this process or a pool of worker processes.

Errors never stop the run: a source that cannot be processed yields an
:class:`ImageResult` with ``error`` set.  Workers build their models once each.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .errors import FacelabError
from .io import describe_source, load_image
from .types import ImageResult

# A job turns one loaded image into faces: job(image) -> list[Face].  It must be picklable
# (a module-level function or a dataclass instance such as FaceAnalysis) to run in workers.
Job = Callable[[Any], list]
PostFn = Callable[[Any, ImageResult], None]


def run_one(job: Job, source: Any, post: PostFn | None = None) -> ImageResult:
    name = describe_source(source)
    try:
        image = load_image(source)
    except FacelabError as e:
        return ImageResult(name, error=e.reason, error_code=e.code)
    res = ImageResult(name, int(image.shape[1]), int(image.shape[0]))
    try:
        res.faces = job(image)
        if post is not None:
            post(image, res)
    except FacelabError as e:
        res.error, res.error_code = e.reason, e.code
    return res


_worker_job: Job | None = None
_worker_post: PostFn | None = None


def _init_worker(job: Job, post: PostFn | None, threads: int) -> None:
    global _worker_job, _worker_post
    _worker_job, _worker_post = job, post
    os.environ.setdefault("FACELAB_THREADS", str(threads))  # share the cores between workers
    prepare = getattr(job, "prepare", None)
    if callable(prepare):
        try:
            prepare()
        except FacelabError:
            pass  # reported per image instead


def _worker_run(source: Any) -> ImageResult:
    assert _worker_job is not None
    return run_one(_worker_job, source, _worker_post)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_many(job: Job, sources: Iterable[Any], *, workers: int = 1, post: PostFn | None = None, chunksize: int = 4) -> Iterator[ImageResult]:
    """Yield one :class:`ImageResult` per source, in input order.

    ``workers > 1`` uses a process pool (spawned, so no state leaks from the
    parent); each worker loads its models once.  ``post(image, result)`` runs
    in the worker after the job (e.g. to write an annotated image).
    """
    sources = list(sources)
    if workers <= 1 or len(sources) <= 1:
        for s in sources:
            yield run_one(job, s, post)
        return
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(job, post, max(1, default_workers() // workers))) as pool:
        yield from pool.map(_worker_run, sources, chunksize=chunksize)
