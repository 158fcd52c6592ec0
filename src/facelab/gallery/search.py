"""Nearest-neighbour search over a gallery's embeddings.

* :class:`ExactIndex`: brute force with numpy (exact).  Used for galleries
  below :data:`EXACT_MAX` embeddings.
* :class:`FaissIndex`: FAISS HNSW (``faiss-cpu``), approximate, for large
  galleries.  For a SQLite gallery it is saved next to the database
  (``gallery.db.faiss``) with the state it was built from, and brought up to
  date when the gallery changed: new rows are appended, and it is rebuilt
  when rows were removed.
* PostgreSQL galleries search server-side with pgvector's HNSW index
  (:meth:`facelab.gallery.store.Store.native_search`).

``benchmarks/gallery_search.py`` measures all three (build time, memory,
ms/query, recall@1 against exact search) at 10k to 1M embeddings.
"""

from __future__ import annotations

import json
import os
import struct
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ..errors import StoreError

#: "auto" search uses exact numpy below this many embeddings and an HNSW index from there on.
#: At 20k exact search costs ~1-3 ms/query; see benchmarks/gallery_search.py.
EXACT_MAX = int(os.environ.get("FACELAB_EXACT_MAX", 20_000))

#: HNSW parameters (benchmarks/gallery_search.py: recall@1 >= 0.99 at 1M with these)
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


class VectorIndex(ABC):
    kind = "index"
    metric = "euclidean"

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, ids)``, both ``(m, k)``, nearest first; missing entries have id -1 and distance inf."""

    @abstractmethod
    def __len__(self) -> int: ...


class ExactIndex(VectorIndex):
    """Exact search: every distance, with the metric's own formula (:func:`facelab.embed.distances`)."""

    kind = "exact"

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, metric: str = "euclidean"):
        self.ids = np.asarray(ids, np.int64)
        self.vectors = np.ascontiguousarray(vectors, np.float32)
        self.metric = metric
        # the per-row terms of facelab.embed.distances, computed once instead of per query
        if metric == "cosine":
            self._unit = self.vectors / np.maximum(np.linalg.norm(self.vectors, axis=1, keepdims=True), 1e-12)
        else:
            self._sq = (self.vectors * self.vectors).sum(1)

    def __len__(self) -> int:
        return len(self.ids)

    def all_distances(self, queries: np.ndarray) -> np.ndarray:
        """``(m, n)`` distances, as :func:`facelab.embed.distances` computes them."""
        q = np.atleast_2d(np.asarray(queries, np.float32))
        if self.metric == "cosine":
            qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            return 1.0 - qn @ self._unit.T
        d2 = (q * q).sum(1)[:, None] + self._sq[None, :] - 2.0 * q @ self.vectors.T
        return np.sqrt(np.maximum(d2, 0.0))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        d = self.all_distances(queries)
        m, n = d.shape
        kk = min(k, n)
        if kk == 0:
            return np.full((m, k), np.inf), np.full((m, k), -1, np.int64)
        part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (m, 1))
        pd = np.take_along_axis(d, part, 1)
        order = np.argsort(pd, axis=1, kind="stable")
        idx = np.take_along_axis(part, order, 1)
        out_d = np.full((m, k), np.inf)
        out_i = np.full((m, k), -1, np.int64)
        out_d[:, :kk] = np.take_along_axis(pd, order, 1)
        out_i[:, :kk] = self.ids[idx]
        return out_d, out_i


def _faiss():
    try:
        import faiss
    except ImportError:
        raise StoreError("large galleries need FAISS: pip install 'facelab[gallery]' (faiss-cpu)") from None
    return faiss


class FaissIndex(VectorIndex):
    """FAISS HNSW over embedding ids (``IndexIDMap2(IndexHNSWFlat)``).

    Euclidean models use L2 (FAISS returns squared distances: we take the
    root); cosine models use inner product on unit vectors (distance ``1 - ip``).
    """

    kind = "faiss-hnsw"

    def __init__(self, dim: int, metric: str = "euclidean", *, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION, ef_search: int = HNSW_EF_SEARCH, index=None):
        faiss = _faiss()
        self.dim, self.metric = int(dim), metric
        self.ef_search = ef_search
        if index is None:
            fm = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
            hnsw = faiss.IndexHNSWFlat(self.dim, m, fm)
            hnsw.hnsw.efConstruction = ef_construction
            index = faiss.IndexIDMap2(hnsw)
        self.index = index
        self.state: dict = {}

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def _prep(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.atleast_2d(x), np.float32)
        if self.metric == "cosine":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(self._prep(vectors), np.ascontiguousarray(ids, np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        hnsw = faiss.downcast_index(self.index.index)
        hnsw.hnsw.efSearch = max(self.ef_search, k)
        q = self._prep(queries)
        if len(q) < 16:  # a few queries: OpenMP threads only add overhead (a lot of it on a busy machine)
            prev = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                d, i = self.index.search(q, k)
            finally:
                faiss.omp_set_num_threads(prev)
        else:
            d, i = self.index.search(q, k)
        d = d.astype(np.float64)
        if self.metric == "cosine":
            d = 1.0 - d
        else:
            d = np.sqrt(np.maximum(d, 0.0))
        d[i < 0] = np.inf
        return d, i.astype(np.int64)

    # --- persistence: one file, a JSON header then the FAISS bytes (written atomically) ---------

    def save(self, path: str | os.PathLike[str], state: dict) -> None:
        faiss = _faiss()
        head = json.dumps({**state, "dim": self.dim, "metric": self.metric, "kind": self.kind}).encode()
        data = faiss.serialize_index(self.index)
        tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(b"FLIX" + struct.pack("<I", len(head)) + head)
            f.write(data.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.state = dict(state)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FaissIndex | None:
        """The index saved at ``path``, or None when missing or unreadable (it is then rebuilt)."""
        faiss = _faiss()
        try:
            raw = Path(path).read_bytes()
            if raw[:4] != b"FLIX":
                return None
            (n,) = struct.unpack("<I", raw[4:8])
            head = json.loads(raw[8 : 8 + n])
            index = faiss.deserialize_index(np.frombuffer(raw[8 + n :], np.uint8))
        except (OSError, ValueError, RuntimeError):
            return None
        out = cls(head["dim"], head["metric"], index=index)
        out.state = head
        return out


def rank_people(person_keys: np.ndarray, dists: np.ndarray, top_k: int) -> list[tuple[object, float]]:
    """``(person, distance)`` of the ``top_k`` closest people: each person's distance is that of their nearest embedding."""
    keys = np.asarray(person_keys)
    d = np.asarray(dists, np.float64)
    ok = np.isfinite(d)
    keys, d = keys[ok], d[ok]
    if not len(d):
        return []
    order = np.argsort(d, kind="stable")
    _, first = np.unique(keys[order], return_index=True)  # first (nearest) occurrence of every person
    best = order[np.sort(first)][:top_k]
    return [(keys[i].item() if hasattr(keys[i], "item") else keys[i], float(d[i])) for i in best]


__all__ = ["EXACT_MAX", "ExactIndex", "FaissIndex", "VectorIndex", "rank_people"]
