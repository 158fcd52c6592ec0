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


def crop_name(stem: str, index: int, face: Face, ext: str = ".jpg") -> str:
    """``<stem>_face<i>[_<name>].jpg``: the image's stem, the face's index (largest first) and its identity when known."""
    import re

    who = ""
    if face.identity is not None and face.identity.name and face.identity.name != face.identity.UNKNOWN:
        who = "_" + re.sub(r"[^\w.-]+", "-", face.identity.name).strip("-")[:60]
    return f"{stem}_face{index}{who}{ext}"


def save_crops(
    image: Any,
    out_dir: str | Any,
    faces: list[Face] | None = None,
    *,
    stem: str | None = None,
    size: int = 150,
    padding: float = 0.25,
    method: str = "dlib",
    ext: str = ".jpg",
    **detect_options: Any,
) -> list[str]:
    """Write an aligned chip of every face of ``image`` to ``out_dir``; returns the paths, in face order.

    ``faces`` default to :func:`detect`'s; names are :func:`crop_name` (``stem`` defaults to the
    image file's name).  ``method``: ``dlib`` (dlib's 5-point alignment, what the embedder sees),
    ``arcface`` (112 px template) or ``crop`` (upright box crop).
    """
    import os

    from .draw import save_image

    img = as_image(image)
    if faces is None:
        faces = detect(img, **detect_options)
    if stem is None:
        src = describe_source(image) if isinstance(image, (str, os.PathLike)) else "image"
        stem = os.path.splitext(os.path.basename(str(src).split("?")[0]))[0] or "image"
    os.makedirs(out_dir, exist_ok=True)
    out = []
    for i, f in enumerate(faces):
        path = os.path.join(str(out_dir), crop_name(stem, i, f, ext))
        out.append(save_image(_align.align(img, f, size=size, padding=padding, method=method), path))
    return out


__all__ = ["align", "analyze", "crop_name", "detect", "distance", "embed", "landmarks", "largest_face", "save_crops", "verify"]
