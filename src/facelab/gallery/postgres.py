"""The PostgreSQL gallery store (pgvector), for servers.

``--db postgresql://user:password@host:5432/dbname`` (libpq URL; its own
options such as ``sslmode`` pass through).  Tables are ``facelab_meta``,
``facelab_people`` and ``facelab_embeddings`` in the connection's schema.
Embeddings are pgvector ``vector(dim)`` columns; once the gallery's model is
known (first enrolment) an HNSW index (``vector_l2_ops`` or
``vector_cosine_ops`` by the model's metric) serves server-side search
(:meth:`PostgresStore.native_search`).

Needs ``psycopg`` (``pip install 'facelab[gallery]'``) and the ``vector``
extension on the server (pgvector >= 0.5 for HNSW).  Lock waits are bounded by
``lock_timeout`` (URL option ``timeout``, seconds); ``mode=ro`` opens a
read-only session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import StoreError, StoreLockedError, StoreReadOnlyError
from .store import Store

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE EXTENSION IF NOT EXISTS vector",
        "CREATE TABLE IF NOT EXISTS facelab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS facelab_people (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT)",
        "CREATE TABLE IF NOT EXISTS facelab_embeddings ("
        " id BIGSERIAL PRIMARY KEY,"
        " person_id BIGINT NOT NULL REFERENCES facelab_people(id) ON DELETE CASCADE,"
        " model TEXT NOT NULL, dim INTEGER NOT NULL, vector vector NOT NULL,"
        " content_hash TEXT NOT NULL, source TEXT, created_at TEXT,"
        " UNIQUE (model, content_hash))",
    ],
    2: [
        "ALTER TABLE facelab_embeddings ADD COLUMN IF NOT EXISTS box TEXT",
        "ALTER TABLE facelab_embeddings ADD COLUMN IF NOT EXISTS n_faces INTEGER",
        "CREATE INDEX IF NOT EXISTS facelab_embeddings_person ON facelab_embeddings (person_id)",
    ],
}

_LOCK_KEY = 0x6661636C  # "facl": advisory lock serialising schema and model setup

#: hnsw.ef_search used by native_search (pgvector's default is 40).  benchmarks/gallery_search.py:
#: recall@1 0.995 at 10k and 0.990 at 100k embeddings; 200 gave the same recall at twice the cost.
EF_SEARCH = 100


class PostgresStore(Store):
    kind = "postgresql"
    ph = "%s"
    vec_sql = "?::vector"
    _now_sql = "to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD HH24:MI:SS')"

    def _connect(self) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError("PostgreSQL galleries need psycopg: pip install 'facelab[gallery]'", source=self.display) from None
        self._pg = psycopg
        self._driver_error = psycopg.Error
        try:
            self._con = psycopg.connect(self.url.target, autocommit=True, connect_timeout=max(1, int(round(self.timeout))))
        except psycopg.Error as e:
            raise StoreError(f"cannot connect: {_first_line(e)}", source=self.display) from None
        self._exec(f"SET lock_timeout = {int(self.timeout * 1000)}")
        if self.read_only:
            self._exec("SET default_transaction_read_only = on")

    @property
    def display(self) -> str:
        p = urlsplit(self.url.target)
        host = p.hostname or dict(x.split("=", 1) for x in p.query.split("&") if "=" in x).get("host", "")
        return f"postgresql://{p.username + '@' if p.username else ''}{host}{':' + str(p.port) if p.port else ''}{p.path}"

    def _translate(self, e: Exception) -> Exception:
        errors = self._pg.errors
        msg = _first_line(e)
        if isinstance(e, errors.LockNotAvailable):
            return StoreLockedError(f"the gallery is locked by another session (waited {self.timeout:g} s): {msg}", source=self.display)
        if isinstance(e, (errors.ReadOnlySqlTransaction, errors.InsufficientPrivilege)):
            return StoreReadOnlyError(f"the gallery is read-only for this session: {msg}", source=self.display)
        if isinstance(e, (errors.UndefinedFile, errors.FeatureNotSupported)) and "vector" in msg:
            return StoreError(f"the pgvector extension is not available on this server: {msg}", source=self.display)
        return StoreError(msg, source=self.display)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._lock:
            try:
                with self._con.transaction():
                    yield
            except self._pg.Error as e:  # raised at COMMIT
                raise self._translate(e) from None

    def _vec_param(self, v: np.ndarray) -> Any:
        # repr of each float32 value (as a Python float) parses back to the same float32 exactly
        return "[" + ",".join(map(repr, np.asarray(v, np.float32).tolist())) + "]"

    def _vec_value(self, x: Any, dim: int) -> np.ndarray:
        return np.array(x[1:-1].split(","), dtype=np.float32)

    def _migrations(self) -> dict[int, list[str]]:
        return _MIGRATIONS

    def _has_meta_table(self) -> bool:
        return self._exec("SELECT to_regclass('facelab_meta') IS NOT NULL").fetchone()[0]

    def _schema_lock(self) -> None:
        self._exec("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEY,))

    def _model_lock(self) -> None:
        self._schema_lock()

    def _after_model_set(self, model: str, dim: int, metric: str) -> None:
        ops = "vector_cosine_ops" if metric == "cosine" else "vector_l2_ops"
        self._exec(f"ALTER TABLE facelab_embeddings ALTER COLUMN vector TYPE vector({int(dim)})")
        self._exec(f"CREATE INDEX IF NOT EXISTS facelab_embeddings_hnsw ON facelab_embeddings USING hnsw (vector {ops})")

    def native_search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        op = "<=>" if self.get_meta("metric") == "cosine" else "<->"
        q = self._vec_param(query)
        with self._tx():
            self._exec(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, int(k))}")
            rows = self._exec(f"SELECT id, vector {op} ?::vector FROM facelab_embeddings ORDER BY vector {op} ?::vector LIMIT ?", (q, q, int(k))).fetchall()
        return np.array([r[1] for r in rows], np.float64), np.array([r[0] for r in rows], np.int64)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
