"""Open a gallery store by URL: a file path or ``sqlite:///path`` (:mod:`.sqlite`), ``postgresql://...`` (:mod:`.postgres`).

The store classes build on :class:`facelab.gallery.store.Store`; this module is the one place that knows them all.
"""

from __future__ import annotations

import os
from typing import Any

from .store import Store, default_db, parse_url


def store_class(scheme: str) -> type[Store]:
    """The store class of a parsed URL's scheme (``sqlite`` or ``postgresql``); the PostgreSQL driver loads only when asked for."""
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore
    from .postgres import PostgresStore

    return PostgresStore


def open_store(url: str | os.PathLike[str] | None = None, **kw: Any) -> Store:
    """Open (creating when needed) the store at ``url`` (default :func:`~facelab.gallery.store.default_db`)."""
    u = parse_url(url if url is not None else default_db())
    return store_class(u.scheme)(u, **kw)


__all__ = ["open_store", "store_class"]
