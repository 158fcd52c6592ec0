"""The SQLite gallery store: one file, no server.

* WAL journal: readers never block the writer and a crash (even ``kill -9``)
  loses at most the transaction in flight, never a committed one.
* Every write is ``BEGIN IMMEDIATE ... COMMIT``: it takes the write lock up
  front and waits up to ``timeout`` seconds (URL option, default 10) for
  another process to finish, then fails with :class:`~facelab.errors.StoreLockedError`.
* Embeddings are little-endian float32 blobs; their model and size are stored
  with each row.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError, StoreLockedError, StoreReadOnlyError
from .store import Store

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE IF NOT EXISTS facelab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS facelab_people (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created_at TEXT)",
        "CREATE TABLE IF NOT EXISTS facelab_embeddings ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " person_id INTEGER NOT NULL REFERENCES facelab_people(id) ON DELETE CASCADE,"
        " model TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
        " content_hash TEXT NOT NULL, source TEXT, created_at TEXT,"
        " UNIQUE (model, content_hash),"
        " CHECK (length(vector) = 4 * dim))",
    ],
    # v2: where the face was (box, JSON) and how many faces the image had; index by person
    2: [
        "ALTER TABLE facelab_embeddings ADD COLUMN box TEXT",
        "ALTER TABLE facelab_embeddings ADD COLUMN n_faces INTEGER",
        "CREATE INDEX IF NOT EXISTS facelab_embeddings_person ON facelab_embeddings (person_id)",
    ],
}


class SQLiteStore(Store):
    kind = "sqlite"
    _driver_error = sqlite3.Error

    def _connect(self) -> None:
        path = self.url.target
        self.path = Path(path)
        if not self.read_only and path != ":memory:" and not self.path.parent.exists():
            raise StoreError(f"folder {self.path.parent} does not exist", source=path)
        if self.path.is_dir():
            raise StoreError("is a folder, not a gallery file", source=path)
        if self.path.exists() and not (os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)):
            self.read_only = True  # a read-only file (or folder: no room for the WAL): read it, refuse writes clearly
        uri = f"file:{self.path.as_posix()}?mode={'ro' if self.read_only else 'rwc'}"
        try:
            self._con = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            self._con.execute("PRAGMA foreign_keys = ON")
            if not self.read_only:
                mode = self._con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal" and path != ":memory:":
                    raise StoreError(f"cannot switch the gallery to WAL mode (got {mode})", source=path)
                self._con.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across process crashes
        except sqlite3.Error as e:
            raise self._translate(e) from None

    @property
    def display(self) -> str:
        return str(self.path)

    def _translate(self, e: Exception) -> Exception:
        msg = str(e)
        low = msg.lower()
        if "locked" in low or "busy" in low:
            return StoreLockedError(f"the gallery is locked by another process (waited {self.timeout:g} s): {msg}", source=self.display)
        if "readonly" in low or "read-only" in low or "read only" in low:
            return StoreReadOnlyError(f"the gallery is read-only: {msg}", source=self.display)
        if "unable to open" in low:
            why = "no gallery here" if self.read_only and not self.path.exists() else "cannot open the file (permissions, or its folder is missing)"
            return StoreError(f"{why}: {msg}", source=self.display)
        if "not a database" in low or "malformed" in low:
            return StoreError(f"not a facelab gallery, or a damaged one: {msg}", source=self.display)
        return StoreError(msg, source=self.display)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        if self.read_only:
            raise StoreReadOnlyError("the gallery was opened read-only (mode=ro)", source=self.display)
        with self._lock:
            if getattr(self, "_in_tx", False):  # nested: part of the outer transaction
                yield
                return
            self._exec("BEGIN IMMEDIATE")
            self._in_tx = True
            try:
                yield
            except BaseException:
                self._in_tx = False
                try:
                    self._con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise
            self._in_tx = False
            self._exec("COMMIT")

    def _vec_param(self, v: np.ndarray) -> Any:
        return np.ascontiguousarray(v, dtype="<f4").tobytes()

    def _vec_value(self, x: Any, dim: int) -> np.ndarray:
        return np.frombuffer(x, dtype="<f4").astype(np.float32)

    def _migrations(self) -> dict[int, list[str]]:
        return _MIGRATIONS

    def _has_meta_table(self) -> bool:
        return self._exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'facelab_meta'").fetchone() is not None

    def _schema_lock(self) -> None:
        pass  # BEGIN IMMEDIATE already holds the database's write lock

    def integrity_check(self) -> str:
        return str(self._exec("PRAGMA integrity_check").fetchone()[0])
