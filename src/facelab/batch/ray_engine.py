"""The ``ray`` engine: one Ray actor per CPU, each holding its own models.

Every actor builds the job's models once (``num_cpus=1``, one onnxruntime
thread), then processes the chunks it is sent with :func:`facelab.runner.run_one`,
exactly like a ``local`` worker process: the rows are the same.  The driver
keeps two chunks per actor in flight (see :func:`facelab.runner.run_chunks`)
and writes the results; an actor that dies is replaced and its chunks re-run
image by image.

``address`` joins an existing cluster (``ray start --head`` on one machine,
``ray start --address HEAD:6379`` on the others; facelab and its models must
be installed on every node, and inputs/galleries reachable from them: URLs,
shared storage, PostgreSQL).  Without it, a Ray session already started in
this process is used, else a local Ray is started with ``workers`` CPUs and
stopped at the end.  Ray's dashboard and usage statistics are kept off.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from typing import Any

from ..errors import ModelError
from ..runner import ChunkExecutor, PostFn, init_worker, worker_run_chunk, default_workers


def import_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ModelError("the ray engine needs Ray: pip install 'facelab[batch]' (ray[data]>=2.60)") from None
    return ray


def start_ray(num_cpus: int | None = None, address: str | None = None) -> bool:
    """Connect to ``address``, or start a local Ray with ``num_cpus``; False when Ray was already running here."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=num_cpus or default_workers(), **kw)
    return True


class _Worker:
    """The actor: the job's models, loaded once; runs chunks of sources."""

    def __init__(self, job: Any, post: PostFn | None, threads: int):
        init_worker(job, post, threads)

    def run(self, sources: list[Any]):
        return worker_run_chunk(sources)

    def ready(self) -> bool:
        return True


class RayExecutor(ChunkExecutor):
    """``workers`` actors (default: every CPU of the cluster), two chunks in flight each.

    Each actor asks Ray for one CPU, or a share of the cluster's CPUs when there are
    more actors than CPUs (so that every actor can start).
    """

    def __init__(self, job: Any, post: PostFn | None = None, *, workers: int | None = None, address: str | None = None, threads: int = 1):
        self.ray = import_ray()
        self.started = start_ray(workers, address)
        cpus = float(self.ray.cluster_resources().get("CPU", 1))
        self.workers = int(workers or max(1, int(cpus)))
        self.slots = 2 * self.workers
        # more actors than CPUs (e.g. to hide URL latency) share them: every actor must be able to start
        per_actor = min(1.0, cpus / self.workers)
        self._cls = self.ray.remote(num_cpus=per_actor, max_restarts=0)(_Worker)
        self._args = (job, post, threads)
        self._actors = [self._cls.remote(*self._args) for _ in range(self.workers)]
        self._owner: dict[Future, Any] = {}
        self._lock = threading.Lock()

    def submit(self, sources: list[Any]) -> Future:
        with self._lock:
            for f in [f for f in self._owner if f.done()]:
                del self._owner[f]
            load = {id(a): 0 for a in self._actors}
            for a in self._owner.values():
                if id(a) in load:
                    load[id(a)] += 1
            actor = min(self._actors, key=lambda a: load[id(a)])
            fut = actor.run.remote(sources).future()
            self._owner[fut] = actor
        return fut

    def is_crash(self, exc: BaseException) -> bool:
        ex = self.ray.exceptions
        kinds = tuple(k for k in (getattr(ex, n, None) for n in ("RayActorError", "WorkerCrashedError", "OutOfMemoryError", "ObjectLostError")) if k)
        return isinstance(exc, kinds)

    def recover(self, future: Future) -> None:
        with self._lock:
            dead = self._owner.pop(future, None)
            if dead is not None and dead in self._actors:
                i = self._actors.index(dead)
                try:
                    self.ray.kill(dead)
                except Exception:  # noqa: BLE001, S110 - already gone
                    pass
                self._actors[i] = self._cls.remote(*self._args)

    def close(self) -> None:
        for a in self._actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
        self._actors = []
        if self.started:
            self.ray.shutdown()
            self.started = False


__all__ = ["RayExecutor", "import_ray", "start_ray"]
