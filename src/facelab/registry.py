"""Backends (detectors, landmarkers, embedders, attribute models, stores) register by name.

A :class:`Registry` maps a name to a factory.  :meth:`Registry.get` builds each
(name, options) instance once per process, under a lock, so models load lazily
and exactly once even when many threads ask at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import UnknownBackendError

T = TypeVar("T")


class Registry(Generic[T]):
    #: called as ``guard(kind, name, options)`` before :meth:`get` hands out a backend; raise to refuse it
    guards: list[Callable[[str, str, dict[str, Any]], None]] = []

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._help: dict[str, str] = {}
        self._instances: dict[tuple[str, tuple[tuple[str, Any], ...]], T] = {}
        self._lock = threading.RLock()
        self._resolvers: list[Callable[[str], tuple[str, dict[str, Any]] | None]] = []

    def register(self, name: str, *, help: str = "") -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            self._help[name] = help or ((factory.__doc__ or "").strip().splitlines() or [""])[0]
            return factory

        return deco

    def add_resolver(self, resolver: Callable[[str], tuple[str, dict[str, Any]] | None]) -> None:
        """A resolver turns a spec that is not a registered name (e.g. a file path) into (name, options)."""
        self._resolvers.append(resolver)

    def factory(self, name: str) -> Callable[..., T] | None:
        """The class or function registered as ``name`` (None if there is none)."""
        return self._factories.get(name)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def describe(self) -> dict[str, str]:
        return {n: self._help.get(n, "") for n in self.names()}

    def resolve(self, spec: str) -> tuple[str, dict[str, Any]]:
        if spec in self._factories:
            return spec, {}
        for r in self._resolvers:
            got = r(spec)
            if got is not None:
                return got
        raise UnknownBackendError(f"unknown {self.kind} {spec!r}; available: {', '.join(self.names())}")

    def get(self, spec: str, **options: Any) -> T:
        """The shared instance for ``spec`` with ``options`` (created on first use)."""
        name, extra = self.resolve(spec)
        opts = {**extra, **options}
        for guard in Registry.guards:  # e.g. the licence policy (facelab.models), on every request
            guard(self.kind, name, opts)
        key = (name, tuple(sorted((k, _hashable(v)) for k, v in opts.items())))
        inst = self._instances.get(key)
        if inst is not None:
            return inst
        with self._lock:
            inst = self._instances.get(key)
            if inst is None:
                inst = self._factories[name](**opts)
                self._instances[key] = inst
        return inst

    def clear(self) -> None:
        with self._lock:
            self._instances.clear()


def _hashable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


class LazyModel:
    """Base of every model: ``prepare()`` loads weights once (thread-safe), ``load()`` does the work.

    Subclasses implement :meth:`load`; users call :meth:`prepare` (or let the first
    call to the model's main method do it).
    """

    name: str = "model"

    def __init__(self) -> None:
        self._prepare_lock = threading.Lock()
        self._ready = False

    def load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def prepare(self) -> LazyModel:
        if not self._ready:
            with self._prepare_lock:
                if not self._ready:
                    self.load()
                    self._ready = True
        return self
