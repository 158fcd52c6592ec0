"""Group unknown faces into people, show each group, name groups and enrol them in a gallery.

>>> from facelab.batch.cluster import cluster_output, enroll_clusters
>>> res = cluster_output("archive.parquet", "people/")       # clusters.parquet, names.csv, sheets/, index.html
>>> enroll_clusters("people/", "gallery.db", {1: "Barack Obama", 4: "Joe Biden"})

Methods (``method=``), all on the faces' embeddings:

* ``cw`` (default): Chinese whispers (Biemann 2006; what dlib's
  ``face_clustering.py`` example uses) on the graph linking two faces when
  each is among the other's ``neighbors`` nearest and they are closer than
  ``threshold``; no number of clusters to choose, linear in the number of
  edges.  Linking every pair under the threshold instead (dlib's example)
  chains thousands of one-photo people into a few giant clusters: on all of
  LFW View 1 its pairwise F is 0.09 against 0.74 with mutual neighbours.
  Neighbours are found blockwise (exact), so memory stays bounded.
* ``dbscan``: scikit-learn's DBSCAN with ``eps = threshold``.
* ``hdbscan``: scikit-learn's HDBSCAN (no threshold; ``min_size`` is its
  smallest cluster).

Groups smaller than ``min_size`` are left unclustered (label ``-1``).
Clusters are numbered 1, 2, ... from the largest.  The default thresholds
were chosen on LFW View 1 (``benchmarks/cluster_lfw.py``; table in docs/batch.md).
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..embed import distances, metric_of
from ..errors import InputError, ModelMismatchError
from .table import face_of, read_rows

METHODS = ("cw", "dbscan", "hdbscan")
#: Default linking distance per (metric, method), measured on LFW View 1 (docs/batch.md).
DEFAULT_THRESHOLDS: dict[tuple[str, str], float] = {("euclidean", "cw"): 0.475, ("euclidean", "dbscan"): 0.4}
#: Without a measurement for a metric (cosine ONNX embedders): the embedder's verification threshold.
CLUSTERS_FILE = "clusters.parquet"
NAMES_FILE = "names.csv"
TILE = 112


@dataclass
class Clustering:
    """Cluster labels of a set of faces (``-1``: in no cluster) and how they were found."""

    labels: np.ndarray
    method: str
    threshold: float | None
    min_size: int
    sizes: dict[int, int] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return len(self.sizes)

    @property
    def unclustered(self) -> int:
        return int((self.labels == -1).sum())


def default_threshold(metric: str, method: str, model: str = "dlib") -> float | None:
    if method == "hdbscan":
        return None
    t = DEFAULT_THRESHOLDS.get((metric, method))
    if t is not None:
        return t
    from ..embed import get_embedder

    return float(get_embedder(model).threshold)


def cluster_embeddings(
    vectors: np.ndarray,
    *,
    method: str = "cw",
    threshold: float | None = None,
    min_size: int = 2,
    metric: str = "euclidean",
    model: str = "dlib",
    neighbors: int = 5,
    block: int = 2048,
) -> Clustering:
    """Cluster rows of ``vectors``; labels numbered from 1 by decreasing size, ``-1`` for the rest."""
    if method not in METHODS:
        raise InputError(f"unknown clustering method {method!r} (choose from {', '.join(METHODS)})")
    x = np.asarray(vectors, np.float32)
    n = len(x)
    thr = default_threshold(metric, method, model) if threshold is None else float(threshold)
    if n == 0:
        return Clustering(np.zeros(0, np.int64), method, thr, min_size)
    if method == "cw":
        raw = _chinese_whispers(x, thr, metric, neighbors, block)
    else:
        raw = _sklearn(x, method, thr, metric, min_size)
    return _renumber(raw, min_size, method, thr)


def mutual_neighbors(x: np.ndarray, thr: float, metric: str, k: int, block: int = 2048) -> list[tuple[int, int]]:
    """Edges ``(i, j)``, ``i < j``, between faces that are each among the other's ``k`` nearest and closer than ``thr``.

    Distances are computed block by block (memory: ``block x n`` floats), exactly.
    """
    n = len(x)
    k = max(1, min(int(k), n - 1)) if n > 1 else 0
    near: list[set[int]] = []
    for start in range(0, n, block):
        d = distances(x[start : start + block], x, metric)
        for r in range(len(d)):
            d[r, start + r] = np.inf  # not its own neighbour
        idx = np.argpartition(d, k - 1, axis=1)[:, :k] if k else np.zeros((len(d), 0), np.int64)
        for r, row in enumerate(idx):
            near.append({int(j) for j in row if d[r, j] < thr})
    return [(i, j) for i in range(n) for j in sorted(near[i]) if j > i and i in near[j]]


def _chinese_whispers(x: np.ndarray, thr: float, metric: str, neighbors: int, block: int) -> np.ndarray:
    import dlib

    edges = [(i, i) for i in range(len(x))]  # every face is a vertex, even alone
    edges += mutual_neighbors(x, thr, metric, neighbors, block)
    return np.asarray(dlib.chinese_whispers(edges), np.int64)


def _sklearn(x: np.ndarray, method: str, thr: float | None, metric: str, min_size: int) -> np.ndarray:
    try:
        from sklearn import cluster as skc
    except ImportError:
        raise InputError(f"--method {method} needs scikit-learn: pip install scikit-learn (or use --method cw)") from None
    m = "cosine" if metric == "cosine" else "euclidean"
    if method == "dbscan":
        return skc.DBSCAN(eps=float(thr), min_samples=max(1, min_size), metric=m).fit_predict(x)
    return skc.HDBSCAN(min_cluster_size=max(2, min_size), metric=m, copy=True).fit_predict(x)


def _renumber(raw: np.ndarray, min_size: int, method: str, thr: float | None) -> Clustering:
    counts = Counter(int(v) for v in raw if v != -1)
    first = {}
    for i, v in enumerate(raw.tolist()):
        first.setdefault(v, i)
    keep = sorted((c for c, k in counts.items() if k >= max(1, min_size)), key=lambda c: (-counts[c], first[c]))
    new = {c: i + 1 for i, c in enumerate(keep)}
    labels = np.array([new.get(int(v), -1) for v in raw], np.int64)
    return Clustering(labels, method, thr, min_size, {new[c]: counts[c] for c in keep})


# --- from a batch output to a folder of clusters ---------------------------------------------


@dataclass
class ClusterOutput:
    """What :func:`cluster_output` wrote."""

    folder: str
    faces: int
    clusters: int
    unclustered: int
    method: str
    threshold: float | None
    sizes: dict[int, int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_faces(source: str | os.PathLike[str], *, unknown_only: bool = True):
    """The rows with an embedding (only the unidentified ones with ``unknown_only``), as a pandas frame."""
    t = read_rows(source)
    df = t.to_pandas()
    if "embedding" not in df:
        raise InputError("no 'embedding' column: run 'facelab batch embed|analyze|identify' first", source=os.fspath(source))
    df = df[df["embedding"].notna()]
    if unknown_only and "identity" in df:
        df = df[df["identity"].isna() | (df["identity"] == "unknown")]
    models = sorted(set(df["model"].dropna())) if "model" in df else []
    if len(models) > 1:
        raise ModelMismatchError(f"embeddings of several models ({', '.join(models)}) cannot be clustered together", source=os.fspath(source))
    return df.reset_index(drop=True), (models[0] if models else "dlib")


def cluster_output(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    method: str = "cw",
    threshold: float | None = None,
    min_size: int = 2,
    neighbors: int = 5,
    unknown_only: bool = True,
    sheets: bool = True,
    max_tiles: int = 48,
) -> ClusterOutput:
    """Cluster the faces of a batch output; write ``clusters.parquet``, ``names.csv``, contact sheets and ``index.html``."""
    df, model = load_faces(source, unknown_only=unknown_only)
    if df.empty:
        raise InputError("no faces with embeddings to cluster" + (" (all are identified)" if unknown_only else ""), source=os.fspath(source))
    metric = metric_of(model)
    vecs = np.stack(df["embedding"].to_numpy()).astype(np.float32)
    c = cluster_embeddings(vecs, method=method, threshold=threshold, min_size=min_size, metric=metric, model=model, neighbors=neighbors)
    df["cluster"] = c.labels
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = [k for k in ("source", "label", "face", "box", "score", "detector", "rotation", "embedding", "model", "cluster") if k in df]
    table = pa.Table.from_pandas(df[cols], preserve_index=False)
    info = {"method": method, "threshold": c.threshold, "min_size": min_size, "neighbors": neighbors, "model": model, "source": os.fspath(source)}
    table = table.replace_schema_metadata({b"facelab.clustering": json.dumps(info).encode()})
    pq.write_table(table, folder / CLUSTERS_FILE)
    _write_names(folder, df, c)
    if sheets:
        write_sheets(folder, df, c, max_tiles=max_tiles)
    return ClusterOutput(str(folder), len(df), c.n_clusters, c.unclustered, method, c.threshold, c.sizes)


def _write_names(folder: Path, df, c: Clustering) -> None:
    """``names.csv``: one line per cluster for the user to fill in (existing names are kept)."""
    path = folder / NAMES_FILE
    old = read_names(path) if path.exists() else {}
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["cluster", "size", "name", "example"])
        for cid, size in c.sizes.items():
            example = df["source"][int(np.flatnonzero(c.labels == cid)[0])]
            w.writerow([cid, size, old.get(cid, ""), example])


def read_names(path: str | os.PathLike[str]) -> dict[int, str]:
    """Cluster id -> name from a ``names.csv`` (rows with an empty name are skipped)."""
    out: dict[int, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                name = (row.get("name") or "").strip()
                if name:
                    try:
                        out[int(row["cluster"])] = name
                    except (KeyError, ValueError):
                        raise InputError(f"bad cluster id {row.get('cluster')!r}", source=os.fspath(path)) from None
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror or e})", source=os.fspath(path)) from None
    return out


def _tile(row: dict[str, Any], cache: dict[str, np.ndarray | None]) -> np.ndarray:
    import cv2

    from ..align import crop
    from ..io import load_image

    tile = np.full((TILE, TILE, 3), 235, np.uint8)
    src = row["source"]
    if src not in cache:
        if len(cache) > 8:
            cache.clear()
        try:
            cache[src] = load_image(src)
        except Exception:  # noqa: BLE001 - a source gone since the batch run: grey tile
            cache[src] = None
    img = cache[src]
    face = face_of(row)
    if img is not None and face is not None:
        chip = crop(img, face, size=TILE - 4, padding=0.2)
        tile[2 : 2 + chip.shape[0], 2 : 2 + chip.shape[1]] = cv2.resize(chip, (TILE - 4, TILE - 4)) if chip.shape[:2] != (TILE - 4, TILE - 4) else chip
    return tile


def write_sheets(folder: Path, df, c: Clustering, *, max_tiles: int = 48, cols: int = 8) -> list[str]:
    """``sheets/cluster-NNNN.jpg`` for every cluster (up to ``max_tiles`` faces) and an ``index.html`` showing them."""
    from ..draw import save_image

    sheets = folder / "sheets"
    sheets.mkdir(exist_ok=True)
    for old in sheets.glob("cluster-*.jpg"):
        old.unlink()
    written, sections = [], []
    records = df.to_dict("records")
    cache: dict[str, np.ndarray | None] = {}
    for cid, size in c.sizes.items():
        idx = np.flatnonzero(c.labels == cid)[:max_tiles]
        tiles = [_tile(records[i], cache) for i in idx]
        ncol = min(cols, len(tiles))
        rows = math.ceil(len(tiles) / ncol)
        sheet = np.full((rows * TILE, ncol * TILE, 3), 255, np.uint8)
        for k, t in enumerate(tiles):
            r, q = divmod(k, ncol)
            sheet[r * TILE : (r + 1) * TILE, q * TILE : (q + 1) * TILE] = t
        name = f"cluster-{cid:04d}.jpg"
        written.append(save_image(sheet, sheets / name))
        srcs = "<br>".join(html.escape(os.path.basename(str(records[i]["source"]))) for i in idx[:6])
        sections.append(f"<section><h2>cluster {cid} <small>({size} faces)</small></h2><img src='sheets/{name}'><p class='src'>{srcs}</p></section>")
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>face clusters</title><style>"
        "body{font-family:sans-serif;margin:16px}section{margin-bottom:24px}img{max-width:100%}.src{font-size:11px;color:#666}</style></head><body>"
        f"<h1>{c.n_clusters} clusters</h1><p>{c.unclustered} faces in no cluster. Name clusters in <code>{NAMES_FILE}</code> "
        "(or with <code>--name ID=NAME</code>), then enrol them: <code>facelab cluster-enroll THIS_FOLDER --db GALLERY</code>.</p>"
        + "".join(sections)
        + "</body></html>"
    )
    (folder / "index.html").write_text(doc, encoding="utf-8")
    return written


# --- naming and enrolling -------------------------------------------------------------------


def enroll_clusters(folder: str | os.PathLike[str], db: str | None, names: Mapping[int, str] | None = None) -> dict[str, dict[str, int]]:
    """Enrol every face of each named cluster as that person (clusters with the same name merge).

    ``names`` (cluster id -> name) adds to / overrides ``names.csv`` in ``folder``.
    Idempotent: faces already enrolled are counted as ``duplicate``.
    """
    import pyarrow.parquet as pq

    from ..gallery import open_gallery
    from ..types import Embedding

    f = Path(folder)
    path = f / CLUSTERS_FILE
    if not path.exists():
        raise InputError(f"no {CLUSTERS_FILE}: run 'facelab cluster OUT.parquet --out {f}' first", source=str(f))
    chosen = {**(read_names(f / NAMES_FILE) if (f / NAMES_FILE).exists() else {}), **dict(names or {})}
    if not chosen:
        raise InputError(f"no cluster is named: fill the name column of {NAMES_FILE} or pass --name ID=NAME", source=str(f))
    df = pq.read_table(path, columns=["source", "embedding", "model", "cluster"]).to_pandas()
    known = set(df["cluster"].tolist())
    missing = sorted(k for k in chosen if k not in known or k == -1)
    if missing:
        raise InputError(f"no cluster {missing[0]} in this clustering (clusters: 1..{max(known | {0})})", source=str(f))
    report: dict[str, dict[str, int]] = {}
    with open_gallery(db) as g:
        for cid, name in sorted(chosen.items()):
            sub = df[df["cluster"] == cid]
            embs = [Embedding(np.asarray(v, np.float32), m) for v, m in zip(sub["embedding"], sub["model"])]
            res = g.enroll_embeddings(name, embs, sources=[str(s) for s in sub["source"]])
            d = report.setdefault(name, {"added": 0, "duplicate": 0, "conflict": 0})
            for r in res:
                d[r.status] = d.get(r.status, 0) + 1
    return report


def parse_names(items: Sequence[str]) -> dict[int, str]:
    """``["3=Barack Obama", "7=Joe Biden"]`` -> {3: "Barack Obama", 7: "Joe Biden"}."""
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not v.strip():
            raise InputError(f"--name takes ID=NAME, got {it!r}")
        try:
            out[int(k)] = v.strip()
        except ValueError:
            raise InputError(f"--name takes ID=NAME with a numeric cluster id, got {it!r}") from None
    return out


__all__ = ["METHODS", "ClusterOutput", "Clustering", "cluster_embeddings", "cluster_output", "enroll_clusters", "load_faces", "parse_names", "read_names", "write_sheets"]
