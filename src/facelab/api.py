"""The top-level functions: plain names, plain inputs, typed results.

Every function accepts an image as a path, URL, bytes, numpy array or PIL image.
``detect``, ``landmarks`` and ``embed`` are the stage functions of
:mod:`facelab.detect`, :mod:`facelab.landmarks` and :mod:`facelab.embed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import align as _align
from .detect import DEFAULT_DETECTOR, detect, pick_face
from .embed import distance, embed, get_embedder
from .errors import NoFaceError
from .io import as_image, describe_source
from .landmarks import landmarks
from .types import Face, Verification


def align(image: Any, face: Face, size: int = 150, padding: float = 0.25, method: str = "dlib") -> np.ndarray:
    """An aligned RGB chip of one face (see :func:`facelab.align.align`)."""
    return _align.align(as_image(image), face, size, padding, method)


#: Detection for verification: HOG for faces >= 80 px, then HOG for faces >= 40 px, then the
#: MMOD CNN, each only when the previous one found nothing (then the rotation sweep).
VERIFY_DETECTOR = "hog,hog@2,cnn"
VERIFY_MIN_FACE = 80


def largest_face(
    image: Any,
    *,
    model: str = "dlib",
    flip: bool = True,
    pick: str = "largest",
    detector: str = VERIFY_DETECTOR,
    min_face: int = VERIFY_MIN_FACE,
    **detect_options: Any,
) -> Face:
    """The main face of an image (``pick``: ``"largest"`` or ``"central"``), embedded.

    Raises :class:`NoFaceError` if there is no face.
    """
    img = as_image(image)
    faces = detect(img, detector, min_face=min_face, **detect_options)
    if not faces:
        raise NoFaceError("no face found", source=describe_source(image))
    return embed(img, [pick_face(faces, img.shape, pick)], model, flip=flip)[0]


def verify(
    a: Any, b: Any, *, model: str = "dlib", threshold: float | None = None, flip: bool = True, pick: str = "largest", **detect_options: Any
) -> Verification:
    """Are the (largest) faces of two images the same person?

    ``a`` and ``b`` may also be :class:`Face` objects that already have embeddings.
    The default threshold is the embedder's calibrated one.
    """
    fa = a if isinstance(a, Face) and a.embedding is not None else largest_face(a, model=model, flip=flip, pick=pick, **detect_options)
    fb = b if isinstance(b, Face) and b.embedding is not None else largest_face(b, model=model, flip=flip, pick=pick, **detect_options)
    emb = get_embedder(model)
    thr = emb.threshold if threshold is None else float(threshold)
    d = distance(fa, fb)
    return Verification(d, thr, d <= thr, fa.embedding.model, emb.metric, fa, fb)


def analyze(
    image: Any,
    *,
    detector: str = DEFAULT_DETECTOR,
    landmarks: str | None = "dlib68",
    embedder: str | None = "dlib",
    actions: Sequence[str] | str = (),
    **options: Any,
) -> list[Face]:
    """Detect, then landmarks and embeddings for every face (see :class:`facelab.FaceAnalysis`).

    ``actions``: attributes to predict per face, any of ``age, gender, emotion,
    ethnicity`` (a list or ``"age,gender"``); results in ``face.attributes``.
    """
    from .attributes import parse_actions
    from .pipeline import FaceAnalysis

    acts = parse_actions(actions)
    return FaceAnalysis(detector=detector, landmarks=landmarks, embedder=embedder, attributes=acts, **options).get(as_image(image))


__all__ = ["align", "analyze", "detect", "distance", "embed", "landmarks", "largest_face", "verify"]
