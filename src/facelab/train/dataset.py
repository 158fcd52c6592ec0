"""Labelled face images and their embeddings, computed once (with an on-disk cache).

A dataset is a folder with one sub-folder per person (``DIR/<name>/*.jpg``, as
``facelab enroll-dir`` reads), or a flat folder whose file names carry the
label, picked out by a regular expression (Yale: ``subject01.happy`` with
``--label-regex '^(subject\\d+)'``).

:func:`embed_dataset` embeds the largest face of every image.  Results are
cached per file (path, size, mtime and the embedding settings) in
``$FACELAB_HOME/cache/embeddings.db``, so training and evaluating on the same
folder computes each embedding once.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FacelabError, InputError
from ..io import iter_image_paths, load_image
from ..io.paths import facelab_home
from ..progress import track


@dataclass(frozen=True)
class LabeledImage:
    path: str
    label: str


def identity_dataset(
    root: str | os.PathLike[str], *, label_regex: str | None = None, min_per_class: int = 1, limit_per_class: int | None = None
) -> list[LabeledImage]:
    """The labelled images under ``root``.

    Without ``label_regex`` the label is the first sub-folder (``root/<label>/...``);
    files directly in ``root`` are refused.  With ``label_regex`` the label is its
    first group (or whole match) searched in the file name; files that do not
    match are refused.  ``limit_per_class`` keeps the first N images of each class (a quick try); classes
    with fewer than ``min_per_class`` images are then dropped.
    """
    r = Path(root)
    if not r.exists():
        raise InputError("no such folder", source=str(r))
    if not r.is_dir():
        raise InputError("not a folder (expected one sub-folder per person)", source=str(r))
    rx = re.compile(label_regex) if label_regex else None
    items: list[LabeledImage] = []
    for p in iter_image_paths(r):
        rel = Path(p).relative_to(r)
        if rx is not None:
            m = rx.search(rel.name)
            if not m:
                raise InputError(f"file name does not match --label-regex {label_regex!r}", source=p)
            label = m.group(1) if m.groups() else m.group(0)
        elif len(rel.parts) < 2:
            raise InputError("image directly in the dataset folder: put each person's images in DIR/<name>/ (or pass a label regex)", source=p)
        else:
            label = rel.parts[0]
        items.append(LabeledImage(p, label))
    if not items:
        raise InputError("no images found (expected DIR/<name>/*.jpg)", source=str(r))
    if limit_per_class is not None:
        taken: Counter[str] = Counter()
        capped = []
        for i in items:
            if taken[i.label] < limit_per_class:
                taken[i.label] += 1
                capped.append(i)
        items = capped
    counts = Counter(i.label for i in items)
    items = [i for i in items if counts[i.label] >= min_per_class]
    if len({i.label for i in items}) < 2:
        raise InputError(f"need at least 2 people with >= {min_per_class} image(s) each, found {len({i.label for i in items})}", source=str(r))
    return items


@dataclass
class EmbeddedSet:
    """Embeddings of a labelled image set: row ``i`` is ``paths[i]`` of person ``labels[i]``."""

    paths: list[str]
    labels: np.ndarray  # (N,) str
    vectors: np.ndarray  # (N, D) float32
    model: str
    n_faces: np.ndarray  # (N,) faces found (0 = whole image used)
    fallback: np.ndarray  # (N,) bool
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of images left out
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels.tolist()))

    def subset(self, mask: np.ndarray) -> EmbeddedSet:
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return EmbeddedSet(
            [self.paths[i] for i in idx], self.labels[idx], self.vectors[idx], self.model, self.n_faces[idx], self.fallback[idx], list(self.failed), dict(self.settings)
        )

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self),
            "people": len(self.classes),
            "model": self.model,
            "several_faces": int((self.n_faces > 1).sum()),
            "whole_image_fallback": int(self.fallback.sum()),
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "settings": self.settings,
        }


class EmbeddingCache:
    """Per-file embedding cache (SQLite, safe for several processes)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else facelab_home() / "cache" / "embeddings.db"
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(
                "CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vector BLOB, n_faces INTEGER NOT NULL, fallback INTEGER NOT NULL, error TEXT)"
            )
            self._con = con
        return self._con

    @staticmethod
    def key(path: str, settings: dict[str, Any]) -> str | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return json.dumps([os.path.realpath(path), st.st_size, st.st_mtime_ns, settings], sort_keys=True)

    def get(self, key: str) -> tuple[np.ndarray | None, int, bool, str | None] | None:
        with self._lock:
            row = self._db().execute("SELECT vector, n_faces, fallback, error FROM emb WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        vec = None if row[0] is None else np.frombuffer(row[0], np.float32).copy()
        return vec, int(row[1]), bool(row[2]), row[3]

    def put(self, key: str, vector: np.ndarray | None, n_faces: int, fallback: bool, error: str | None = None) -> None:
        blob = None if vector is None else np.asarray(vector, np.float32).tobytes()
        with self._lock:
            self._db().execute("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?, ?)", (key, blob, int(n_faces), int(fallback), error))

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def embed_dataset(
    items: list[LabeledImage],
    *,
    embedder: str = "dlib",
    detector: str = "hog",
    min_face: int = 40,
    rotate: Any = "auto",
    flip: bool = True,
    fallback: bool = True,
    cache: EmbeddingCache | bool = True,
    progress: bool = False,
    description: str = "embedding",
) -> EmbeddedSet:
    """Embed the largest face of every image (see :func:`facelab.gallery.faces.choose_face`).

    Images that cannot be read, or (with ``fallback=False``) have no face, are
    left out and listed in ``failed``.  ``cache=True`` uses the default cache,
    ``False`` none.
    """
    from ..gallery.faces import choose_face, enroll_pipeline

    pipe = enroll_pipeline(embedder, detector, min_face=min_face, rotate=rotate, flip=flip)
    settings = {"embedder": embedder, "detector": detector, "min_face": int(min_face), "rotate": rotate, "flip": bool(flip), "fallback": bool(fallback)}
    store = EmbeddingCache() if cache is True else (cache or None)
    model = None
    rows: list[tuple[str, str, np.ndarray, int, bool]] = []
    failed: list[tuple[str, str]] = []
    try:
        for it in track(items, len(items), description, show=progress):
            key = store.key(it.path, settings) if store is not None else None
            got = store.get(key) if key is not None else None
            if got is None:
                vec, n, fb, error = None, 0, False, None
                try:
                    choice = choose_face(load_image(it.path), pipe, fallback=fallback)
                    if choice is None:
                        error = "no face found"
                    else:
                        vec, n, fb = choice.face.embedding.vector, choice.n_faces, choice.fallback
                        model = choice.face.embedding.model
                except InputError as e:
                    error = e.reason
                if key is not None:
                    store.put(key, vec, n, fb, error)
            else:
                vec, n, fb, error = got
            if vec is None:
                failed.append((it.path, error or "failed"))
            else:
                rows.append((it.path, it.label, vec, n, fb))
    finally:
        if store is not None and cache is True:
            store.close()
    if model is None:
        from ..embed import get_embedder

        model = get_embedder(embedder).name
    if not rows:
        raise FacelabError("no image could be embedded", source=os.path.commonpath([i.path for i in items]) if items else None)
    dim = len(rows[0][2])
    return EmbeddedSet(
        [r[0] for r in rows],
        np.array([r[1] for r in rows]),
        np.stack([r[2] for r in rows]).astype(np.float32).reshape(-1, dim),
        model,
        np.array([r[3] for r in rows], int),
        np.array([r[4] for r in rows], bool),
        failed,
        settings,
    )


@dataclass
class Extra:
    """Training-only rows added to a set: augmented copies of images (``source``: the row of the original they come from)."""

    vectors: np.ndarray
    labels: np.ndarray
    source: np.ndarray

    @classmethod
    def empty(cls, dim: int, dtype) -> Extra:
        return cls(np.zeros((0, dim), np.float32), np.zeros(0, dtype), np.zeros(0, np.int64))

    def of(self, rows: np.ndarray) -> np.ndarray:
        """Indices of the extra rows made from ``rows`` of the original set."""
        return np.flatnonzero(np.isin(self.source, rows))


def augment_rows(
    es: EmbeddedSet, *, preset_name: str = "light", seed: int = 0, cap: int | None = None, cache: EmbeddingCache | bool = True, progress: bool = False
):
    """Augmented copies of the images of small classes, embedded like the originals (``balance="augment"``).

    A person with ``n`` images gets ``min(cap, round(n_max / n)) - 1`` augmented copies of each
    (:class:`facelab.datasets.augment.Augmenter`, preset ``light``: small rotation, scale, shift,
    brightness/contrast, blur, noise), so small classes are augmented more and every class ends
    near ``n_max``.  Copies where no face is found are dropped.  Returns a
    :class:`Extra` (``source`` = the original's row).
    """
    from ..datasets.augment import Augmenter, preset
    from ..gallery.faces import choose_face, enroll_pipeline
    from .balance import MAX_REPEAT, class_counts, repeat_factors

    reps = repeat_factors(class_counts(es.labels), cap or MAX_REPEAT)
    jobs = [(i, c) for i, lab in enumerate(es.labels.tolist()) for c in range(1, reps.get(str(lab), 1))]
    if not jobs:
        return Extra.empty(es.vectors.shape[1], es.labels.dtype)
    st = es.settings
    pipe = enroll_pipeline(st.get("embedder", "dlib"), st.get("detector", "hog"), min_face=st.get("min_face", 40), rotate=st.get("rotate", "auto"), flip=st.get("flip", True))
    store = EmbeddingCache() if cache is True else (cache or None)
    vecs, labels, source = [], [], []
    try:
        for i, copy in track(jobs, len(jobs), "augmenting small classes", show=progress):
            settings = {**st, "augment": preset_name, "copy": copy, "seed": seed}
            key = store.key(es.paths[i], settings) if store is not None else None
            got = store.get(key) if key is not None else None
            if got is None:
                aug = Augmenter(preset(preset_name), seed=(seed * 1_000_003 + i * 101 + copy) % 2**31)
                image, _ = aug(load_image(es.paths[i]), np.zeros((0, 2), np.float32))
                choice = choose_face(image, pipe, fallback=bool(st.get("fallback", False)))
                vec = None if choice is None else choice.face.embedding.vector
                if key is not None:
                    store.put(key, vec, 0 if choice is None else choice.n_faces, False, None if vec is not None else "no face found")
            else:
                vec = got[0]
            if vec is not None:
                vecs.append(vec)
                labels.append(es.labels[i])
                source.append(i)
    finally:
        if store is not None and cache is True:
            store.close()
    if not vecs:
        return Extra.empty(es.vectors.shape[1], es.labels.dtype)
    return Extra(np.stack(vecs).astype(np.float32), np.array(labels, dtype=es.labels.dtype), np.array(source, np.int64))


#: The research sets facelab measures itself on (``../shared/data``; never shipped): sub-folder, label
#: regex, fewest images per person kept, the detector's ``min_face`` and whole-image fallback.
#: ORL's 92x112 faces are all found with min_face=40; Yale's 320x243 frames need no upsampling
#: (min_face=80; 3 of 164 images have no detected face and are embedded whole); LFW View 1 people
#: with >= 5 photos (81 people, 472 images).
REFERENCE_SETS: dict[str, dict[str, Any]] = {
    "orl": {"folder": ("orl",), "label_regex": None, "min_per_class": 1, "min_face": 40, "fallback": False},
    "yale": {"folder": ("yale",), "label_regex": r"^(subject\d+)", "min_per_class": 1, "min_face": 80, "fallback": True},
    "lfw": {"folder": ("lfw", "lfw-deepfunneled"), "label_regex": None, "min_per_class": 5, "min_face": 80, "fallback": False},
}


def reference_set(name: str, data_root: str | os.PathLike[str], *, progress: bool = False) -> EmbeddedSet:
    """Embeddings of one of :data:`REFERENCE_SETS` found under ``data_root``."""
    s = REFERENCE_SETS[name]
    items = identity_dataset(Path(data_root).joinpath(*s["folder"]), label_regex=s["label_regex"], min_per_class=s["min_per_class"])
    return embed_dataset(items, min_face=s["min_face"], fallback=s["fallback"], progress=progress, description=name)


__all__ = ["REFERENCE_SETS", "EmbeddedSet", "Extra", "augment_rows", "EmbeddingCache", "LabeledImage", "embed_dataset", "facelab_home", "identity_dataset", "reference_set"]
