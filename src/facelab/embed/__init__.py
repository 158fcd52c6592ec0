"""Face embeddings and the distances between them.

``embed(image, faces, model="dlib")`` aligns each face and sets ``face.embedding``.
:func:`distance` refuses to compare embeddings of different models.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelMismatchError
from ..io import as_image
from ..types import Embedding, Face
from . import dlib_resnet, onnx_embedder  # noqa: F401  (register the backends)
from .base import EMBEDDERS, Embedder

DEFAULT_EMBEDDER = "dlib"


def get_embedder(name: str = DEFAULT_EMBEDDER, **options: Any) -> Embedder:
    return EMBEDDERS.get(name, **options)


def embed(image: Any, faces: list[Face] | None = None, model: str | Embedder = DEFAULT_EMBEDDER, *, flip: bool = True, **detect_options: Any) -> list[Face]:
    """Set ``face.embedding`` on every face (detected first when ``faces`` is None); returns the faces.

    ``flip`` averages each face's embedding with its mirror image's (the default;
    the calibrated thresholds assume it).
    """
    image = as_image(image)
    if faces is None:
        from ..detect import detect

        faces = detect(image, **detect_options)
    emb = model if isinstance(model, Embedder) else get_embedder(model)
    for face, e in zip(faces, emb.embed(image, faces, flip=flip)):
        face.embedding = e
    return faces


def metric_of(model: str) -> str:
    if model.startswith("onnx:"):
        return onnx_embedder.KNOWN_METRICS.get(model, "cosine")
    try:
        return EMBEDDERS.get(model).metric
    except Exception:
        return "euclidean"


def distance(a: Embedding | Face, b: Embedding | Face) -> float:
    """Distance between two embeddings of the same model (its own metric)."""
    ea = a.embedding if isinstance(a, Face) else a
    eb = b.embedding if isinstance(b, Face) else b
    if ea is None or eb is None:
        raise ValueError("both faces need an embedding (run facelab.embed first)")
    if ea.model != eb.model:
        raise ModelMismatchError(f"cannot compare an embedding of {ea.model!r} with one of {eb.model!r}")
    return float(distances(ea.vector[None], eb.vector[None], metric_of(ea.model))[0, 0])


def distances(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Pairwise distance matrix between rows of ``a`` (N, D) and ``b`` (M, D)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if metric == "cosine":
        an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return 1.0 - an @ bn.T
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "Embedder", "distance", "distances", "embed", "get_embedder", "metric_of"]
