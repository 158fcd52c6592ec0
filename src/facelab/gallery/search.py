"""Nearest-neighbour search over a gallery's embeddings.

* :class:`ExactIndex`: brute force with numpy (exact).  Used for galleries
  below :data:`EXACT_MAX` embeddings.
* :class:`FaissIndex`: FAISS IVF-Flat (``faiss-cpu``; HNSW on request),
  approximate, for large galleries.  For a SQLite gallery it is saved next to
  the database (``gallery.db.faiss``) with the state it was built from, and
  brought up to date when the gallery changed: new rows are appended; it is
  rebuilt when rows were removed or the gallery outgrew its training.
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

#: "auto" search uses exact numpy below this many embeddings and an approximate index (FAISS IVF, pgvector HNSW) from there on.
#: At 20k exact search costs ~1-3 ms/query; see benchmarks/gallery_search.py.
EXACT_MAX = int(os.environ.get("FACELAB_EXACT_MAX", 20_000))

#: IVF cells searched per query (benchmarks/gallery_search.py, 1M embeddings: 32 -> recall@1 0.98, 64 -> 1.00)
IVF_NPROBE = 64
#: A saved IVF index is retrained (rebuilt) once the gallery has grown past this many times its training size.
IVF_REGROW = 4
#: HNSW parameters (kind="hnsw"; benchmarks/gallery_search.py: recall@1 1.00 at 100k with these)
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
    """A FAISS index over embedding ids: ``kind="ivf"`` (default) or ``"hnsw"``.

    * IVF-Flat: ``nlist`` = 4 sqrt(n) k-means cells (trained on up to 64 points
      per cell), ``nprobe`` = :data:`IVF_NPROBE` cells searched; vectors are
      stored exactly.  Fast to build; new rows go to their nearest cell.
    * HNSW-Flat (``IndexIDMap2(IndexHNSWFlat)``): a graph, ``M`` =
      :data:`HNSW_M`; slow to build at a million rows on a small machine.

    Euclidean models use L2 (FAISS returns squared distances: we take the
    root); cosine models use inner product on unit vectors (distance ``1 - ip``).
    """

    def __init__(self, dim: int, metric: str = "euclidean", *, kind: str = "ivf", index=None, **params):
        faiss = _faiss()
        if kind not in ("ivf", "hnsw"):
            raise ValueError(f"FAISS index kind must be 'ivf' or 'hnsw', not {kind!r}")
        self.dim, self.metric, self.index_kind = int(dim), metric, kind
        self.params = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH, "nprobe": IVF_NPROBE, **params}
        self._fm = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        if index is None and kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(self.dim, int(self.params["m"]), self._fm)
            hnsw.hnsw.efConstruction = int(self.params["ef_construction"])
            index = faiss.IndexIDMap2(hnsw)
        self.index = index  # an IVF index is made by train()
        self.state: dict = {}

    @property
    def kind(self) -> str:  # type: ignore[override]
        return f"faiss-{self.index_kind}"

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, metric: str = "euclidean", *, kind: str = "ivf", seed: int = 0, **params) -> FaissIndex:
        """A new index holding ``vectors`` (IVF: trained on them first)."""
        out = cls(vectors.shape[1], metric, kind=kind, **params)
        if kind == "ivf":
            out.train(vectors, seed=seed)
        out.add(ids, vectors)
        return out

    def train(self, vectors: np.ndarray, seed: int = 0) -> None:
        faiss = _faiss()
        n = len(vectors)
        nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))  # FAISS wants >= 39 training points per cell
        quant = faiss.IndexFlatIP(self.dim) if self.metric == "cosine" else faiss.IndexFlatL2(self.dim)
        ivf = faiss.IndexIVFFlat(quant, self.dim, nlist, self._fm)
        x = self._prep(vectors)
        sample = x if n <= 64 * nlist else x[np.random.default_rng(seed).choice(n, 64 * nlist, replace=False)]
        ivf.train(sample)
        ivf.quantizer_trains_alone = 0
        self.index = ivf
        self._quant = quant  # the IVF index does not own its quantizer: keep it alive
        self.state["trained"] = n

    def __len__(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

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
        if self.index_kind == "hnsw":
            faiss.downcast_index(self.index.index).hnsw.efSearch = max(int(self.params["ef_search"]), k)
        else:
            self.index.nprobe = min(int(self.params["nprobe"]), self.index.nlist)
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
        head = json.dumps({**state, "dim": self.dim, "metric": self.metric, "index_kind": self.index_kind, "params": self.params}).encode()
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
        if head.get("index_kind") not in ("ivf", "hnsw"):
            return None
        out = cls(head["dim"], head["metric"], kind=head["index_kind"], index=index, **head.get("params", {}))
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


__all__ = ["EXACT_MAX", "IVF_NPROBE", "ExactIndex", "FaissIndex", "VectorIndex", "rank_people"]
