"""``Gallery``: enrol people once, identify faces for years.

>>> g = Gallery("~/.facelab/gallery.db")          # or "postgresql://...", default $FACELAB_DB
>>> g.enroll("Barack Obama", ["obama.jpg", "obama2.jpg"])
>>> [f.identity.name for f in g.identify("group.jpg")]
['Barack Obama', 'unknown']

Matching (``match=``):

* ``"nearest"`` (default): a person's distance is that of their *closest*
  enrolled embedding.  Robust when a person's photos vary a lot (age, pose,
  lighting): one good match is enough.  Cost grows with the number of embeddings.
* ``"centroid"``: a person's distance is to the *mean* of their embeddings.
  Smoother (one odd enrolment photo matters less) and one vector per person,
  but a person enrolled with very different photos gets a blurred centre.

A face is ``unknown`` when its best distance is above the open-set threshold:
calibrated per model and matching mode (:mod:`facelab.gallery.calibration`),
overridable with ``threshold=``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..detect import DEFAULT_DETECTOR
from ..embed import get_embedder, metric_of
from ..errors import EmptyGalleryError, FacelabError, InputError, ModelMismatchError
from ..io import as_image, describe_source, load_image
from ..types import Candidate, Embedding, Face, Identity
from .calibration import default_threshold
from .faces import choose_face, content_hash, enroll_pipeline, vector_hash
from .search import EXACT_MAX, IVF_REGROW, ExactIndex, FaissIndex, VectorIndex, rank_people
from .backends import open_store
from .store import EmbeddingRecord, NewEmbedding, PersonRecord, Store, StoreState, _check_name, default_db, parse_url

MATCH_MODES = ("nearest", "centroid")
SEARCH_MODES = ("auto", "exact", "faiss", "pgvector")
EXPORT_FORMAT = "facelab-gallery"


@dataclass
class EnrollResult:
    """What happened to one enrolment image.

    ``status``: ``added``; ``duplicate`` (this image is already enrolled for
    this person: nothing to do); ``conflict`` (already enrolled as someone
    else); ``no_face``; ``error`` (unreadable image).
    """

    source: str
    person: str
    status: str
    id: int | None = None
    n_faces: int = 0
    note: str = ""
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("added", "duplicate")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "person": self.person, "status": self.status, "id": self.id, "n_faces": self.n_faces}
        if self.note:
            d["note"] = self.note
        if self.error_code:
            d["error_code"] = self.error_code
        return d


class Gallery:
    """A persistent gallery of people (see the module docstring).

    ``db``: a path, ``sqlite:///path`` or ``postgresql://...`` (default
    :func:`facelab.gallery.store.default_db`).  ``model``: the embedder; by
    default the one the gallery was made with (``dlib`` for a new gallery).
    ``search``: ``auto`` (exact below :data:`~facelab.gallery.search.EXACT_MAX`
    embeddings, then FAISS IVF for SQLite or pgvector HNSW for PostgreSQL),
    ``exact``, ``faiss`` or ``pgvector``.

    Picklable (it reopens its store in the other process), so it can travel to
    :func:`facelab.runner.run_many` workers; thread-safe.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        detector: str = DEFAULT_DETECTOR,
        min_face: int = 40,
        rotate: Any = "auto",
        flip: bool = True,
        threshold: float | None = None,
        match: str = "nearest",
        search: str | None = None,
        top_k: int = 3,
        batch_size: int = 64,
    ):
        if match not in MATCH_MODES:
            raise InputError(f"match must be one of {', '.join(MATCH_MODES)}, not {match!r}")
        self.url = os.fspath(db) if db is not None else default_db()
        if "://" not in self.url:
            self.url = os.path.expanduser(self.url)
        search = search or parse_url(self.url).options.get("search", "auto")
        if search not in SEARCH_MODES:
            raise InputError(f"search must be one of {', '.join(SEARCH_MODES)}, not {search!r}")
        self._config = dict(model=model, detector=detector, min_face=min_face, rotate=rotate, flip=flip, threshold=threshold, match=match, search=search, top_k=top_k, batch_size=batch_size)
        self._apply(self._config)

    def _apply(self, c: dict[str, Any]) -> None:
        self._model_arg = c["model"]
        self.detector, self.min_face, self.rotate, self.flip = c["detector"], c["min_face"], c["rotate"], c["flip"]
        self._threshold_arg = c["threshold"]
        self.match, self.search, self.top_k, self.batch_size = c["match"], c["search"], c["top_k"], c["batch_size"]
        self._store: Store | None = None
        self._lock = threading.RLock()
        self._index: VectorIndex | None = None
        self._index_pids: np.ndarray | None = None  # person id per exact-index row (or per centroid)
        self._state: StoreState | None = None
        self._names: dict[int, str] = {}
        self._pipeline = None

    # --- pickling (for worker processes) ----------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "config": self._config}

    def __setstate__(self, st: dict[str, Any]) -> None:
        self.url, self._config = st["url"], st["config"]
        self._apply(self._config)

    # --- store and model -----------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.url)
        return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            self._index = None
            self._state = None

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def embedder_spec(self) -> str:
        """What embeds faces: the ``model`` argument, else the gallery's own, else ``dlib``."""
        return self._model_arg or self.store.get_meta("embedder_spec") or self.store.model() or "dlib"

    @property
    def model(self) -> str:
        """The embedding model name (``dlib``, ``onnx:<file>``)."""
        return self.store.model() or get_embedder(self.embedder_spec).name

    @property
    def metric(self) -> str:
        return self.store.get_meta("metric") or metric_of(self.model)

    @property
    def threshold(self) -> float:
        if self._threshold_arg is not None:
            return float(self._threshold_arg)
        return default_threshold(self.model, self.match)

    @property
    def pipeline(self):
        if self._pipeline is None:
            self._pipeline = enroll_pipeline(self.embedder_spec, self.detector, min_face=self.min_face, rotate=self.rotate, flip=self.flip)
        return self._pipeline

    def _check_model(self, model: str) -> None:
        have = self.store.model()
        if have is not None and model != have:
            raise ModelMismatchError(f"this gallery holds {have!r} embeddings; cannot use {model!r} ones with it", source=self.store.display)

    # --- enrolment ---------------------------------------------------------------------

    def enroll(
        self,
        name: str,
        images: Iterable[Any],
        *,
        fallback: bool = False,
        on_result: Callable[[EnrollResult], None] | None = None,
    ) -> list[EnrollResult]:
        """Enrol the largest face of every image as ``name``.

        Images are committed in transactions of ``batch_size``; an image already
        enrolled (same pixels) is skipped (``duplicate``), one enrolled as
        someone else is refused (``conflict``).  Problems with one image never
        stop the others: see each :class:`EnrollResult`.
        """
        name = _check_name(name)
        if isinstance(images, (str, bytes, bytearray, os.PathLike, np.ndarray)) or hasattr(images, "getpixel"):
            images = [images]  # one image (a path, bytes, an array, a PIL image), not a sequence of them
        emb_name = get_embedder(self.embedder_spec).name
        self._check_model(emb_name)
        results: list[EnrollResult] = []
        pending: list[tuple[EnrollResult, NewEmbedding]] = []

        def flush() -> None:
            if not pending:
                return
            outcomes = self.store.add(name, [p[1] for p in pending], metric=metric_of(emb_name))
            for (res, _), o in zip(pending, outcomes):
                res.status, res.id = o.status, o.id
                if o.status == "conflict":
                    res.note, res.error_code = f"this image is already enrolled as {o.owner!r}", "duplicate_face"
                elif o.status == "duplicate":
                    res.note = "already enrolled"
                if on_result:
                    on_result(res)
            pending.clear()
            if self.store.get_meta("embedder_spec") is None and any(o.status == "added" for o in outcomes):
                self.store.set_meta("embedder_spec", self.embedder_spec)

        def done(res: EnrollResult) -> None:
            results.append(res)
            if on_result:
                on_result(res)

        for src in images:
            label = describe_source(src)
            try:
                img = load_image(src)
            except InputError as e:
                done(EnrollResult(label, name, "error", note=e.reason, error_code=e.code))
                continue
            h = content_hash(img)
            owner = self.store.owners([h]).get(h) or next((r.person for r, p in pending if p.content_hash == h), None)
            if owner is not None:
                st = "duplicate" if owner == name else "conflict"
                note = "already enrolled" if st == "duplicate" else f"this image is already enrolled as {owner!r}"
                done(EnrollResult(label, name, st, note=note, error_code="duplicate_face" if st == "conflict" else None))
                continue
            try:
                choice = choose_face(img, self.pipeline, fallback=fallback)
            except InputError as e:
                done(EnrollResult(label, name, "error", note=e.reason, error_code=e.code))
                continue
            if choice is None:
                done(EnrollResult(label, name, "no_face", note="no face found", error_code="no_face"))
                continue
            f = choice.face
            res = EnrollResult(label, name, "added", n_faces=choice.n_faces, note=choice.note)
            results.append(res)
            pending.append((res, NewEmbedding(f.embedding.vector, f.embedding.model, h, label, f.box.to_dict(), choice.n_faces)))
            if len(pending) >= self.batch_size:
                flush()
        flush()
        return results

    def enroll_embeddings(self, name: str, embeddings: list[Embedding], *, sources: list[str] | None = None, hashes: list[str] | None = None) -> list[EnrollResult]:
        """Enrol precomputed embeddings (idempotent by ``hashes``, default: a hash of each vector)."""
        name = _check_name(name)
        items = []
        for i, e in enumerate(embeddings):
            self._check_model(e.model)
            h = hashes[i] if hashes is not None else vector_hash(e.vector, e.model)
            items.append(NewEmbedding(e.vector, e.model, h, sources[i] if sources else None))
        out = self.store.add(name, items, metric=metric_of(embeddings[0].model)) if items else []
        return [
            EnrollResult(it.source or f"<embedding {i}>", name, o.status, o.id, 1, "" if o.status == "added" else f"already enrolled as {o.owner!r}")
            for i, (it, o) in enumerate(zip(items, out))
        ]

    def enroll_dir(self, root: str | os.PathLike[str], *, fallback: bool = False, on_result: Callable[[EnrollResult], None] | None = None) -> list[EnrollResult]:
        """Enrol ``root/<name>/*`` (and ``root/<name>.jpg``) files, one person at a time."""
        from .known import known_people_from_folder

        r = Path(root)
        if not r.is_dir():
            raise InputError("not a folder (expected one sub-folder per person)", source=str(r))
        people: dict[str, list[str]] = {}
        for name, path in known_people_from_folder(r):
            people.setdefault(name, []).append(path)
        if not people:
            raise InputError("no images found (expected DIR/<name>/*.jpg)", source=str(r))
        results: list[EnrollResult] = []
        for name, paths in people.items():
            try:
                results += self.enroll(name, paths, fallback=fallback, on_result=on_result)
            except InputError as e:  # e.g. a folder named "unknown"
                for p in paths:
                    res = EnrollResult(p, name, "error", note=e.reason, error_code=e.code)
                    results.append(res)
                    if on_result:
                        on_result(res)
        return results

    # --- identification ------------------------------------------------------------------

    def __len__(self) -> int:
        return self.store.count()

    def _refresh(self) -> None:
        """(Re)load the search structures when the store changed since they were built."""
        st = self.store.state()
        if st == self._state:
            return
        with self._lock:
            if st == self._state:
                return
            old = self._state
            self._names = self.store.person_names()
            if old is None or (old.count, old.max_id) != (st.count, st.max_id) or self._index is None:
                self._index, self._index_pids = self._build_index(st)
            self._state = st

    def search_kind(self, count: int | None = None) -> str:
        n = self.store.count() if count is None else count
        if self.match == "centroid":
            return "exact"
        if self.search != "auto":
            if self.search == "pgvector" and self.store.kind != "postgresql":
                raise InputError("search='pgvector' needs a PostgreSQL gallery")
            return self.search
        if n < EXACT_MAX:
            return "exact"
        return "pgvector" if self.store.kind == "postgresql" else "faiss"

    def _build_index(self, st: StoreState) -> tuple[VectorIndex | None, np.ndarray | None]:
        kind = self.search_kind(st.count)
        metric = self.metric
        if st.count == 0 or kind == "pgvector":
            return None, None
        if kind == "faiss":
            return self._faiss_index(st, metric), None
        ids, pids, vecs = self.store.load_vectors()
        if self.match == "centroid":
            keys, inv = np.unique(pids, return_inverse=True)
            cents = np.zeros((len(keys), vecs.shape[1]), np.float64)
            np.add.at(cents, inv, vecs)
            cents /= np.bincount(inv)[:, None]
            return ExactIndex(keys, cents.astype(np.float32), metric), keys
        return ExactIndex(ids, vecs, metric), pids

    def index_path(self) -> Path | None:
        """Where the FAISS index of a SQLite gallery is saved (next to the database)."""
        if self.store.kind != "sqlite":
            return None
        return Path(f"{self.store.display}.faiss")

    def _faiss_index(self, st: StoreState, metric: str) -> FaissIndex:
        path = self.index_path()
        dim = int(self.store.get_meta("dim") or 0)
        model = self.store.model()
        idx = FaissIndex.load(path) if path is not None and path.exists() else None
        if idx is not None and (idx.state.get("model") != model or idx.dim != dim or idx.metric != metric):
            idx = None
        max_id = -1
        if idx is not None:
            old_count, max_id = int(idx.state.get("count", -1)), int(idx.state.get("max_id", -1))
            if (old_count, max_id) == (st.count, st.max_id):
                return idx
            grown = idx.index_kind == "ivf" and st.count > IVF_REGROW * int(idx.state.get("trained", 0) or 1)
            if not grown and old_count == len(idx) and self.store.count_upto(max_id) == old_count:  # only additions: append
                ids, _, vecs = self.store.load_vectors(min_id=max_id)
                idx.add(ids, vecs)
                max_id = int(ids.max()) if len(ids) else max_id
            else:
                idx = None  # rows were removed (or an IVF outgrew its cells): rebuild
        if idx is None:
            ids, _, vecs = self.store.load_vectors()
            idx = FaissIndex.build(ids, vecs, metric)
            max_id = int(ids.max()) if len(ids) else 0
        new_state = {"model": model, "count": len(idx), "max_id": max_id, "trained": int(idx.state.get("trained", 0))}
        if path is not None and not self.store.read_only:
            try:
                idx.save(path, new_state)
            except OSError:
                idx.state = new_state  # cannot write next to the DB: keep it in memory
        else:
            idx.state = new_state
        return idx

    def identify_vectors(self, vectors: np.ndarray, *, top_k: int | None = None) -> list[Identity]:
        """The identity of each embedding vector (rows of ``vectors``, of the gallery's model)."""
        top_k = self.top_k if top_k is None else int(top_k)
        q = np.atleast_2d(np.asarray(vectors, np.float32))
        self._refresh()
        st = self._state
        if st is None or st.count == 0:
            raise EmptyGalleryError("the gallery is empty: enroll people first (facelab enroll NAME IMAGE...)", source=self.store.display)
        thr = self.threshold
        out = []
        index, pids = self._index, self._index_pids
        if isinstance(index, ExactIndex):
            d = index.all_distances(q)
            ranked = [rank_people(pids, row, max(top_k, 1)) for row in d]
        else:
            k = min(st.count, max(top_k, 1) * 8 + 32)
            ranked = []
            for row in q:
                if index is None:
                    dd, ii = self.store.native_search(row, k)
                else:
                    dd, ii = index.search(row[None], k)
                    dd, ii = dd[0], ii[0]
                owner = self.store.person_ids_of(ii)
                keep = np.array([i in owner for i in ii.tolist()], bool)
                ranked.append(rank_people(np.array([owner.get(int(i), -1) for i in ii], np.int64)[keep], dd[keep], max(top_k, 1)))
        for r in ranked:
            if not r:
                out.append(Identity(Identity.UNKNOWN, float("inf"), thr, []))
                continue
            cands = [Candidate(self._names.get(int(p), f"#{p}"), float(dist)) for p, dist in r]
            best = cands[0]
            out.append(Identity(best.name if best.distance <= thr else Identity.UNKNOWN, best.distance, thr, cands[:top_k]))
        return out

    def identify_embedding(self, embedding: Embedding, *, top_k: int | None = None) -> Identity:
        self._check_model(embedding.model)
        return self.identify_vectors(embedding.vector[None], top_k=top_k)[0]

    def identify_faces(self, faces: list[Face], top_k: int | None = None) -> list[Face]:
        """Set ``face.identity`` on every face that has an embedding (the :class:`KnownFaces` protocol)."""
        with_emb = [f for f in faces if f.embedding is not None]
        if with_emb:
            for f in with_emb:
                self._check_model(f.embedding.model)
            for f, ident in zip(with_emb, self.identify_vectors(np.stack([f.embedding.vector for f in with_emb]), top_k=top_k)):
                f.identity = ident
        return faces

    def check_ready(self) -> None:
        """Raise :class:`EmptyGalleryError` for an empty gallery, :class:`ModelMismatchError` when ``model`` is not the gallery's."""
        if not self.store.count():
            raise EmptyGalleryError("the gallery is empty: enroll people first (facelab enroll NAME IMAGE...)", source=self.store.display)
        self._check_model(get_embedder(self.embedder_spec).name)

    def identify(self, image: Any, *, top_k: int | None = None) -> list[Face]:
        """Every face of ``image`` (largest first) with its :class:`~facelab.types.Identity`."""
        self.check_ready()
        faces = self.pipeline.get(as_image(image))
        return self.identify_faces(faces, top_k)

    # --- management --------------------------------------------------------------------

    def people(self) -> list[PersonRecord]:
        return self.store.people()

    def person(self, name: str) -> PersonRecord:
        return self.store.person(name)

    def embeddings(self, name: str | None = None) -> list[EmbeddingRecord]:
        return list(self.store.embeddings(name))

    def rename(self, old: str, new: str) -> None:
        self.store.rename(old, new)

    def remove(self, name: str) -> int:
        return self.store.remove(name)

    def info(self) -> dict[str, Any]:
        d = self.store.info()
        d.update({"match": self.match, "threshold": round(self.threshold, 4), "search": self.search_kind(d["embeddings"]) if d["embeddings"] else "exact"})
        p = self.index_path()
        if d["search"] == "faiss" and p is not None:
            d["index_file"] = str(p)
        return d

    def export(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """Write every person and embedding to a JSON file (portable between stores and machines)."""
        people: dict[str, dict[str, Any]] = {p.name: {"name": p.name, "created": p.created, "embeddings": []} for p in self.people()}
        n = 0
        for rec in self.store.embeddings():
            people[rec.person]["embeddings"].append(
                {
                    "vector": base64.b64encode(np.asarray(rec.vector, "<f4").tobytes()).decode(),
                    "content_hash": rec.content_hash,
                    "source": rec.source,
                    "box": rec.box,
                    "n_faces": rec.n_faces,
                    "created": rec.created,
                }
            )
            n += 1
        doc = {
            "format": EXPORT_FORMAT,
            "version": 1,
            "model": self.store.model(),
            "embedder_spec": self.store.get_meta("embedder_spec"),
            "metric": self.store.get_meta("metric"),
            "dim": int(self.store.get_meta("dim") or 0),
            "people": list(people.values()),
        }
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        try:
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, p)
        except OSError as e:
            raise InputError(f"cannot write ({e.strerror or e})", source=str(p)) from None
        return {"people": len(people), "embeddings": n}

    def import_(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """Add the people of an exported file (idempotent: embeddings already here are skipped)."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except OSError as e:
            raise InputError(f"cannot read ({e.strerror or e})", source=str(p)) from None
        except ValueError as e:
            raise InputError(f"not a JSON file ({e})", source=str(p)) from None
        if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
            raise InputError(f"not a facelab gallery export (no \"format\": \"{EXPORT_FORMAT}\")", source=str(p))
        if int(doc.get("version", 0)) > 1:
            raise InputError(f"export version {doc.get('version')} is newer than this facelab reads (1)", source=str(p))
        model, dim = doc.get("model"), int(doc.get("dim") or 0)
        counts = {"people": 0, "added": 0, "duplicate": 0, "conflict": 0}
        if model is None:
            return counts
        self._check_model(model)
        for person in doc.get("people", []):
            try:
                items = [
                    NewEmbedding(np.frombuffer(base64.b64decode(e["vector"]), "<f4"), model, e["content_hash"], e.get("source"), e.get("box"), e.get("n_faces"))
                    for e in person.get("embeddings", [])
                ]
                bad = [len(it.vector) for it in items if len(it.vector) != dim]
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(f"damaged export entry for {person.get('name')!r} ({e})", source=str(p)) from None
            if bad:
                raise InputError(f"an embedding of {person.get('name')!r} has {bad[0]} values, expected {dim}", source=str(p))
            if not items:
                continue
            for o in self.store.add(person["name"], items, metric=doc.get("metric") or metric_of(model)):
                counts[o.status] += 1
            counts["people"] += 1
        if doc.get("embedder_spec") and self.store.get_meta("embedder_spec") is None:
            self.store.set_meta("embedder_spec", doc["embedder_spec"])
        return counts


def open_gallery(db: str | os.PathLike[str] | None = None, **kw: Any) -> Gallery:
    """A :class:`Gallery` (opened now, so a bad URL or a newer schema fails here)."""
    g = Gallery(db, **kw)
    try:
        g.store  # noqa: B018 (opening is the point)
    except FacelabError:
        g.close()
        raise
    return g


__all__ = ["EXPORT_FORMAT", "MATCH_MODES", "SEARCH_MODES", "EnrollResult", "Gallery", "open_gallery"]
