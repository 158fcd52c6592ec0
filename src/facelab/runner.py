"""Run a pipeline over many images, in this process or a pool of worker processes.

Errors never stop the run: a source that cannot be processed yields an
:class:`ImageResult` with ``error`` set.  Workers build their models once each.

:func:`run_many` maps a list of sources; :func:`run_chunks` streams chunks of
sources through any :class:`ChunkExecutor` (this process, a process pool, or
e.g. Ray actors in :mod:`facelab.batch`) with a bounded number in flight, and
survives workers that die (an image that crashes a worker becomes an error).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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


def init_worker(job: Job, post: PostFn | None, threads: int) -> None:
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


def worker_run_chunk(sources: Sequence[Any]) -> list[ImageResult]:
    assert _worker_job is not None
    return [run_one(_worker_job, s, _worker_post) for s in sources]


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
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker, initargs=(job, post, max(1, default_workers() // workers))) as pool:
        yield from pool.map(_worker_run, sources, chunksize=chunksize)


# --- streaming chunks through an executor -----------------------------------------------

#: ``ImageResult.error_code`` of an image whose worker process died while processing it.
WORKER_CRASHED = "worker_crashed"


class ChunkExecutor:
    """Where chunks of sources are processed: :meth:`submit` returns a future of their results.

    ``slots`` is how many chunks may be in flight at once.  :meth:`is_crash` says
    whether an exception from a future means its worker died (then
    :meth:`recover` replaces the worker and the chunk is retried image by image).
    """

    slots: int = 1

    def submit(self, sources: list[Any]) -> Future:  # pragma: no cover - interface
        raise NotImplementedError

    def is_crash(self, exc: BaseException) -> bool:
        return False

    def recover(self, future: Future) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> ChunkExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(ChunkExecutor):
    """Runs each chunk in this process, at submission (one at a time, in order)."""

    def __init__(self, job: Job, post: PostFn | None = None):
        self.job, self.post, self.slots = job, post, 1

    def submit(self, sources: list[Any]) -> Future:
        f: Future = Future()
        f.set_result([run_one(self.job, s, self.post) for s in sources])
        return f


class ProcessExecutor(ChunkExecutor):
    """A pool of ``workers`` spawned processes, models loaded once per process.

    ``threads`` per worker defaults to the cores divided between the workers.
    Up to ``2 * workers`` chunks are in flight, so a worker never waits for the next one.
    """

    def __init__(self, job: Job, post: PostFn | None = None, *, workers: int = 2, threads: int | None = None):
        self.job, self.post, self.workers = job, post, max(1, int(workers))
        self.threads = threads or max(1, default_workers() // self.workers)
        self.slots = 2 * self.workers
        self._pool: ProcessPoolExecutor | None = None
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=init_worker, initargs=(self.job, self.post, self.threads))

    def submit(self, sources: list[Any]) -> Future:
        assert self._pool is not None
        return self._pool.submit(worker_run_chunk, sources)

    def is_crash(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def recover(self, future: Future) -> None:
        # every future of a broken pool fails at once: restart the pool only once for them
        if self._pool is not None and getattr(self._pool, "_broken", False):
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._start()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def crashed_result(source: Any, exc: BaseException) -> ImageResult:
    """The result of an image whose worker died on it (twice: alone in a fresh worker)."""
    why = type(exc).__name__
    return ImageResult(describe_source(source), error=f"the worker process died while processing this image ({why})", error_code=WORKER_CRASHED)


def run_chunks(
    job: Job | None,
    chunks: Iterable[Sequence[Any]],
    *,
    workers: int = 1,
    post: PostFn | None = None,
    executor: ChunkExecutor | None = None,
) -> Iterator[tuple[list[Any], list[ImageResult]]]:
    """Yield ``(chunk, results)`` for every chunk of sources, in the order chunks complete.

    Streaming: chunks are drawn from ``chunks`` only when a slot frees up, so
    memory stays bounded whatever the number of inputs.  ``executor`` defaults
    to this process (``workers <= 1``) or a :class:`ProcessExecutor` of
    ``workers`` processes (closed at the end; a given executor is left open).

    A worker that dies (a crash in native code, out of memory) fails the chunks
    it held: they are re-run one image at a time, each alone, so only the image
    that kills a worker again gets an error result (``error_code`` ``worker_crashed``).
    """
    own = executor is None
    if executor is None:
        assert job is not None
        executor = InlineExecutor(job, post) if workers <= 1 else ProcessExecutor(job, post, workers=workers)
    try:
        yield from _schedule(executor, chunks)
    finally:
        if own:
            executor.close()


def _schedule(ex: ChunkExecutor, chunks: Iterable[Sequence[Any]]) -> Iterator[tuple[list[Any], list[ImageResult]]]:
    source_iter = iter(chunks)
    exhausted = False
    whole: dict[int, list[Any]] = {}  # chunk id -> its sources
    got: dict[int, list[ImageResult | None]] = {}
    left: dict[int, int] = {}
    pending: dict[Future, tuple[int, int, list[Any], bool]] = {}  # future -> (chunk id, offset, sources, isolated)
    retry: deque[tuple[int, int, list[Any]]] = deque()  # single images to re-run alone after a crash
    next_id = 0

    def fill(cid: int, off: int, res: list[ImageResult]) -> tuple[list[Any], list[ImageResult]] | None:
        got[cid][off : off + len(res)] = res
        left[cid] -= len(res)
        if left[cid]:
            return None
        left.pop(cid)
        return whole.pop(cid), [r for r in got.pop(cid) if r is not None]

    while True:
        # submit: retries alone (nothing else in flight), else new chunks up to the slots
        if retry:
            if not pending:
                cid, off, srcs = retry.popleft()
                pending[ex.submit(srcs)] = (cid, off, srcs, True)
        else:
            while not exhausted and len(pending) < max(1, ex.slots):
                try:
                    chunk = list(next(source_iter))
                except StopIteration:
                    exhausted = True
                    break
                if not chunk:
                    continue
                cid, next_id = next_id, next_id + 1
                whole[cid], got[cid], left[cid] = chunk, [None] * len(chunk), len(chunk)
                pending[ex.submit(chunk)] = (cid, 0, chunk, False)
        if not pending:
            if retry:
                continue
            break
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for f in done:
            cid, off, srcs, isolated = pending.pop(f)
            try:
                res = f.result()
            except Exception as e:
                if not ex.is_crash(e):
                    raise
                ex.recover(f)
                if isolated:
                    res = [crashed_result(srcs[0], e)]
                else:
                    retry.extend((cid, off + i, [s]) for i, s in enumerate(srcs))
                    continue
            complete = fill(cid, off, res)
            if complete is not None:
                yield complete
