"""Persistent stores of enrolled people, behind one interface chosen by a URL.

* ``sqlite:///path/gallery.db`` or a plain path: the embedded default (WAL,
  one transaction per write, float32 blobs).  See :mod:`.sqlite`.
* ``postgresql://user@host/db``: PostgreSQL with pgvector (HNSW index), for
  servers.  See :mod:`.postgres`.

Both hold the same three tables (``meta``, ``people``, ``embeddings``) at the
same schema version, and behave the same: every write is one transaction, an
image (by content hash) is enrolled once, and a gallery holds embeddings of
one model only (:class:`~facelab.errors.ModelMismatchError` otherwise).

URL options (query string): ``timeout=<seconds>`` (how long to wait for a lock
before :class:`~facelab.errors.StoreLockedError`, default 10) and ``mode=ro``
(read-only).
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ..errors import InputError, ModelMismatchError, SchemaVersionError, StoreError, StoreReadOnlyError, UnknownPersonError

#: Newest schema this facelab reads and writes.  Migrations take older galleries up to it.
SCHEMA_VERSION = 2

DEFAULT_TIMEOUT = 10.0


def default_db() -> str:
    """``$FACELAB_DB``, else ``$FACELAB_HOME/gallery.db`` (``FACELAB_HOME`` defaults to ``~/.facelab``, created on first use)."""
    env = os.environ.get("FACELAB_DB")
    if env:
        return env
    from ..io.paths import facelab_home

    home = facelab_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the facelab home folder ({e.strerror or e}); set FACELAB_HOME or pass --db", source=str(home)) from None
    return str(home / "gallery.db")


@dataclass
class PersonRecord:
    """One enrolled person."""

    name: str
    count: int  # embeddings enrolled
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "created": self.created}


@dataclass
class EmbeddingRecord:
    """One stored embedding and where it came from."""

    id: int
    person: str
    model: str
    vector: np.ndarray
    content_hash: str
    source: str | None = None
    box: dict[str, float] | None = None
    n_faces: int | None = None
    created: str = ""

    def to_dict(self, with_vector: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "person": self.person,
            "model": self.model,
            "content_hash": self.content_hash,
            "source": self.source,
            "box": self.box,
            "n_faces": self.n_faces,
            "created": self.created,
        }
        if with_vector:
            d["vector"] = [float(v) for v in self.vector]
        return d


@dataclass
class NewEmbedding:
    """An embedding to store (see :meth:`Store.add`)."""

    vector: np.ndarray
    model: str
    content_hash: str
    source: str | None = None
    box: dict[str, float] | None = None
    n_faces: int | None = None

    def __post_init__(self) -> None:
        self.vector = np.ascontiguousarray(np.asarray(self.vector, np.float32).ravel())


@dataclass
class AddOutcome:
    """What happened to one :class:`NewEmbedding`: ``added``, ``duplicate`` (same person) or ``conflict`` (another person)."""

    status: str
    id: int | None = None
    owner: str | None = None  # who the hash belongs to, for duplicate/conflict


@dataclass(frozen=True)
class StoreState:
    """What an index was built from: ``count`` rows, the largest id ``max_id``, and the names' version (bumped by renames)."""

    count: int
    max_id: int
    names: int = 0


@dataclass
class StoreURL:
    scheme: str
    target: str  # file path or the server URL without facelab's options
    options: dict[str, str] = field(default_factory=dict)


def parse_url(url: str | os.PathLike[str]) -> StoreURL:
    """Split a ``--db`` value into scheme, target and facelab options."""
    s = os.fspath(url)
    if not s:
        raise InputError("empty gallery URL")
    if "://" not in s:
        return StoreURL("sqlite", s)
    parts = urlsplit(s)
    scheme = parts.scheme.lower()
    opts = dict(parse_qsl(parts.query, keep_blank_values=True))
    own = {k: opts.pop(k) for k in list(opts) if k in ("timeout", "mode", "search")}
    if scheme == "sqlite":
        # like file:// URLs: sqlite:///abs/gallery.db is /abs/gallery.db, sqlite://rel/gallery.db is relative
        path = s.split("://", 1)[1].split("?", 1)[0]
        if not path:
            raise InputError("sqlite URL without a path (sqlite:///path/to/gallery.db)", source=s)
        return StoreURL("sqlite", path, own)
    if scheme in ("postgresql", "postgres"):
        query = "&".join(f"{k}={v}" for k, v in opts.items())
        return StoreURL("postgresql", parts._replace(query=query).geturl(), own)
    raise InputError(f"unknown gallery URL scheme {scheme!r} (use a file path, sqlite:///path or postgresql://...)", source=s)


def _check_name(name: str) -> str:
    n = (name or "").strip()
    if not n:
        raise InputError("a person's name cannot be empty")
    if n.lower() == "unknown":
        raise InputError("'unknown' is reserved for faces that match no one; choose another name")
    if len(n) > 200 or any(c in n for c in "\n\r\t\0"):
        raise InputError(f"invalid name {name!r} (at most 200 characters, no control characters)")
    return n


class Store(ABC):
    """A gallery store: SQL shared by SQLite and PostgreSQL, dialect hooks in the subclasses.

    Writes are one transaction each; reads see committed data only.  Instances
    are thread-safe (one connection behind a lock) but not shared across processes.
    """

    kind = "store"
    ph = "?"  # parameter placeholder of the driver

    def __init__(self, url: StoreURL):
        self.url = url
        self.timeout = float(url.options.get("timeout", DEFAULT_TIMEOUT))
        self.read_only = url.options.get("mode", "rw") == "ro"
        self._lock = threading.RLock()
        self._connect()
        try:
            self._ensure_schema()
        except BaseException:
            self.close()  # e.g. a newer schema: do not leave the connection open
            raise

    # --- dialect hooks -------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _tx(self) -> Any:
        """Context manager: one write transaction (errors translated)."""

    def _exec(self, sql: str, params: tuple = ()) -> Any:
        """Run ``sql`` (``?`` placeholders) and return a cursor (driver errors translated)."""
        with self._lock:
            if self._con is None:
                raise StoreError("the gallery is closed", source=self.display)
            try:
                return self._con.execute(sql if self.ph == "?" else sql.replace("?", self.ph), params)
            except self._driver_error as e:
                raise self._translate(e) from None

    _driver_error: type[Exception] = Exception  # the driver's base error class (set by _connect)

    @abstractmethod
    def _translate(self, e: Exception) -> Exception:
        """The facelab error for a driver error."""

    @abstractmethod
    def _vec_param(self, v: np.ndarray) -> Any: ...

    @abstractmethod
    def _vec_value(self, x: Any, dim: int) -> np.ndarray: ...

    vec_sql = "?"  # how a vector parameter appears in SQL

    @abstractmethod
    def _migrations(self) -> dict[int, list[str]]: ...

    @abstractmethod
    def _has_meta_table(self) -> bool: ...

    @abstractmethod
    def _schema_lock(self) -> None:
        """Inside a transaction: serialise schema creation between processes."""

    def _model_lock(self) -> None:
        """Inside a transaction: serialise setting the gallery's model (SQLite's write lock already does)."""

    def _after_model_set(self, model: str, dim: int, metric: str) -> None:
        """Inside the first enrol's transaction: the gallery's model is now fixed (PostgreSQL builds its index)."""

    def close(self) -> None:
        with self._lock:
            con = getattr(self, "_con", None)
            if con is not None:
                con.close()
                self._con = None

    @property
    def display(self) -> str:
        return self.url.target

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- schema --------------------------------------------------------------------

    def schema_version(self) -> int:
        if not self._has_meta_table():
            return 0
        row = self._exec("SELECT value FROM facelab_meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _ensure_schema(self, target: int = SCHEMA_VERSION) -> None:
        v = self.schema_version()
        if v > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"gallery schema version {v} is newer than this facelab understands ({SCHEMA_VERSION}); upgrade facelab to open it",
                source=self.display,
            )
        if v >= target:
            return
        if self.read_only:
            raise StoreReadOnlyError(f"gallery has schema version {v} and needs migrating to {target}: open it writable once", source=self.display)
        migrations = self._migrations()
        with self._tx():
            self._schema_lock()
            v = self.schema_version()  # another process may have migrated meanwhile
            if v > SCHEMA_VERSION:
                raise SchemaVersionError(f"gallery schema version {v} is newer than this facelab ({SCHEMA_VERSION})", source=self.display)
            for step in range(v + 1, target + 1):
                for sql in migrations[step]:
                    self._exec(sql)
                self._set_meta("schema_version", str(step))

    # --- meta ----------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._exec("SELECT value FROM facelab_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT INTO facelab_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self._set_meta(key, value)

    def model(self) -> str | None:
        """The embedding model of every vector in this gallery (``None`` while it is empty)."""
        return self.get_meta("model")

    def info(self) -> dict[str, Any]:
        return {
            "store": self.kind,
            "url": self.display,
            "schema_version": self.schema_version(),
            "model": self.model(),
            "dim": int(self.get_meta("dim") or 0) or None,
            "metric": self.get_meta("metric"),
            "people": self._exec("SELECT count(*) FROM facelab_people").fetchone()[0],
            "embeddings": self.count(),
        }

    # --- writes --------------------------------------------------------------------

    def add(self, name: str, items: list[NewEmbedding], *, metric: str = "euclidean") -> list[AddOutcome]:
        """Store ``items`` for person ``name`` (created if new), all in one transaction.

        An item whose ``content_hash`` is already stored is not added again:
        ``duplicate`` when it belongs to ``name``, ``conflict`` when to someone else.
        """
        name = _check_name(name)
        if not items:
            return []
        with self._tx():
            model = self.get_meta("model")
            if model is None:
                self._model_lock()
                model = self.get_meta("model")
            for it in items:
                if model is None:
                    model = it.model
                    self._set_meta("model", model)
                    self._set_meta("dim", str(len(it.vector)))
                    self._set_meta("metric", metric)
                    self._after_model_set(model, len(it.vector), metric)
                if it.model != model:
                    raise ModelMismatchError(
                        f"this gallery holds {model!r} embeddings; refusing one of {it.model!r} (use another --db for another model)", source=self.display
                    )
                if len(it.vector) != int(self.get_meta("dim") or len(it.vector)):
                    raise ModelMismatchError(f"embedding has {len(it.vector)} dimensions, the gallery's have {self.get_meta('dim')}", source=self.display)
            pid = self._person_id(name, create=True)
            owners = self._owners([it.content_hash for it in items])
            out = []
            for it in items:
                owner = owners.get(it.content_hash)
                if owner is not None:
                    out.append(AddOutcome("duplicate" if owner == name else "conflict", None, owner))
                    continue
                row = self._exec(
                    f"INSERT INTO facelab_embeddings (person_id, model, dim, vector, content_hash, source, box, n_faces, created_at) "
                    f"VALUES (?, ?, ?, {self.vec_sql}, ?, ?, ?, ?, {self._now_sql}) ON CONFLICT (model, content_hash) DO NOTHING RETURNING id",
                    (pid, it.model, len(it.vector), self._vec_param(it.vector), it.content_hash, it.source, json.dumps(it.box) if it.box else None, it.n_faces),
                ).fetchone()
                if row is None:  # a concurrent transaction stored the same image first
                    owner = self._owners([it.content_hash]).get(it.content_hash, name)
                    out.append(AddOutcome("duplicate" if owner == name else "conflict", None, owner))
                else:
                    owner = name
                    out.append(AddOutcome("added", int(row[0])))
                owners[it.content_hash] = owner  # the same image twice in one call: the second is a duplicate
            if not any(o.status == "added" for o in out) and not self._person_count(pid):
                self._exec("DELETE FROM facelab_people WHERE id = ?", (pid,))  # don't leave an empty person behind
        return out

    _now_sql = "CURRENT_TIMESTAMP"

    def _person_id(self, name: str, create: bool = False) -> int:
        row = self._exec("SELECT id FROM facelab_people WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            raise UnknownPersonError(f"no person named {name!r} in the gallery", source=self.display)
        self._exec(f"INSERT INTO facelab_people (name, created_at) VALUES (?, {self._now_sql}) ON CONFLICT (name) DO NOTHING", (name,))
        return int(self._exec("SELECT id FROM facelab_people WHERE name = ?", (name,)).fetchone()[0])

    def _person_count(self, pid: int) -> int:
        return int(self._exec("SELECT count(*) FROM facelab_embeddings WHERE person_id = ?", (pid,)).fetchone()[0])

    def _owners(self, hashes: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for h, n in self._exec(
                f"SELECT e.content_hash, p.name FROM facelab_embeddings e JOIN facelab_people p ON p.id = e.person_id WHERE e.content_hash IN ({marks})",
                tuple(chunk),
            ):
                out[h] = n
        return out

    def owners(self, hashes: list[str]) -> dict[str, str]:
        """Which person each already-stored content hash belongs to."""
        return self._owners(list(hashes))

    def rename(self, old: str, new: str) -> None:
        new = _check_name(new)
        with self._tx():
            pid = self._person_id(old)
            if self._exec("SELECT 1 FROM facelab_people WHERE name = ?", (new,)).fetchone() is not None:
                raise InputError(f"{new!r} is already in the gallery (remove or rename it first)", source=self.display)
            self._exec("UPDATE facelab_people SET name = ? WHERE id = ?", (new, pid))
            self._exec(
                "INSERT INTO facelab_meta (key, value) VALUES ('names_version', '1') "
                "ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(facelab_meta.value AS INTEGER) + 1 AS TEXT)"
            )

    def remove(self, name: str) -> int:
        """Remove a person and their embeddings; returns how many embeddings went."""
        with self._tx():
            pid = self._person_id(name)
            n = self._person_count(pid)
            self._exec("DELETE FROM facelab_embeddings WHERE person_id = ?", (pid,))
            self._exec("DELETE FROM facelab_people WHERE id = ?", (pid,))
        return n

    def remove_embedding(self, emb_id: int) -> None:
        with self._tx():
            row = self._exec("SELECT person_id FROM facelab_embeddings WHERE id = ?", (int(emb_id),)).fetchone()
            if row is None:
                raise InputError(f"no embedding with id {emb_id}", source=self.display)
            self._exec("DELETE FROM facelab_embeddings WHERE id = ?", (int(emb_id),))
            if not self._person_count(int(row[0])):
                self._exec("DELETE FROM facelab_people WHERE id = ?", (int(row[0]),))

    # --- reads ---------------------------------------------------------------------

    def count(self) -> int:
        return int(self._exec("SELECT count(*) FROM facelab_embeddings").fetchone()[0])

    def state(self) -> StoreState:
        c, m = self._exec("SELECT count(*), max(id) FROM facelab_embeddings").fetchone()
        return StoreState(int(c), int(m or 0), int(self.get_meta("names_version") or 0))

    def count_upto(self, max_id: int) -> int:
        return int(self._exec("SELECT count(*) FROM facelab_embeddings WHERE id <= ?", (int(max_id),)).fetchone()[0])

    def people(self) -> list[PersonRecord]:
        rows = self._exec(
            "SELECT p.name, count(e.id), p.created_at FROM facelab_people p LEFT JOIN facelab_embeddings e ON e.person_id = p.id "
            "GROUP BY p.id, p.name, p.created_at ORDER BY p.name"
        ).fetchall()
        return [PersonRecord(r[0], int(r[1]), str(r[2] or "")) for r in rows]

    def person(self, name: str) -> PersonRecord:
        row = self._exec(
            "SELECT p.name, count(e.id), p.created_at FROM facelab_people p LEFT JOIN facelab_embeddings e ON e.person_id = p.id "
            "WHERE p.name = ? GROUP BY p.id, p.name, p.created_at",
            (name,),
        ).fetchone()
        if row is None:
            raise UnknownPersonError(f"no person named {name!r} in the gallery", source=self.display)
        return PersonRecord(row[0], int(row[1]), str(row[2] or ""))

    def person_names(self) -> dict[int, str]:
        return {int(i): n for i, n in self._exec("SELECT id, name FROM facelab_people")}

    def embeddings(self, name: str | None = None, *, min_id: int = 0) -> Iterator[EmbeddingRecord]:
        """Stored embeddings (of one person, or all), in id order."""
        sql = (
            "SELECT e.id, p.name, e.model, e.dim, e.vector, e.content_hash, e.source, e.box, e.n_faces, e.created_at "
            "FROM facelab_embeddings e JOIN facelab_people p ON p.id = e.person_id WHERE e.id > ?"
        )
        params: tuple = (int(min_id),)
        if name is not None:
            self.person(name)
            sql += " AND p.name = ?"
            params += (name,)
        for r in self._exec(sql + " ORDER BY e.id", params).fetchall():
            yield EmbeddingRecord(int(r[0]), r[1], r[2], self._vec_value(r[4], int(r[3])), r[5], r[6], json.loads(r[7]) if r[7] else None, r[8], str(r[9] or ""))

    def load_vectors(self, *, min_id: int = 0, chunk: int = 50_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, person_ids, vectors)`` of every embedding with ``id > min_id``, in id order."""
        dim = int(self.get_meta("dim") or 0)
        ids, pids, vecs = [], [], []
        last = int(min_id)
        while True:
            rows = self._exec(
                "SELECT id, person_id, vector FROM facelab_embeddings WHERE id > ? ORDER BY id LIMIT ?", (last, int(chunk))
            ).fetchall()
            if not rows:
                break
            ids.append(np.array([r[0] for r in rows], np.int64))
            pids.append(np.array([r[1] for r in rows], np.int64))
            vecs.append(np.stack([self._vec_value(r[2], dim) for r in rows]))
            last = int(rows[-1][0])
            if len(rows) < chunk:
                break
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
        return np.concatenate(ids), np.concatenate(pids), np.concatenate(vecs).astype(np.float32)

    def person_ids_of(self, ids: np.ndarray) -> dict[int, int]:
        """embedding id -> person id for the given embedding ids."""
        out: dict[int, int] = {}
        ids = [int(i) for i in np.asarray(ids).ravel() if i >= 0]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for e, p in self._exec(f"SELECT id, person_id FROM facelab_embeddings WHERE id IN ({marks})", tuple(chunk)):
                out[int(e)] = int(p)
        return out

    def native_search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Server-side nearest neighbours ``(distances, embedding ids)``, or None when the store has no index."""
        return None


__all__ = [
    "SCHEMA_VERSION",
    "AddOutcome",
    "EmbeddingRecord",
    "NewEmbedding",
    "PersonRecord",
    "Store",
    "StoreState",
    "StoreURL",
    "default_db",
    "parse_url",
]
