"""One face per enrolment image: the largest, embedded; and the image's content hash.

Enrolment (``Gallery.enroll``) and training sets (``facelab.train.dataset``)
both turn an image into exactly one embedding: the largest face found, with a
note when there were several.  Tiny, pre-cropped face images (ORL's 92x112
greys) can fall back to the whole image as the face box when the detector
finds nothing (``fallback=True``); the choice is recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..detect import DEFAULT_DETECTOR, detect
from ..embed import get_embedder
from ..pipeline import FaceAnalysis
from ..types import Box, Face

#: Detector name written on faces that are the whole image (detector found nothing, fallback on).
WHOLE_IMAGE = "whole-image"


@dataclass
class FaceChoice:
    """The face used for an image: the largest one, embedded."""

    face: Face
    n_faces: int  # faces the detector found (0 when the whole image was used)
    fallback: bool = False  # True when no face was found and the whole image was used

    @property
    def note(self) -> str:
        if self.fallback:
            return "no face found: used the whole image"
        if self.n_faces > 1:
            return f"{self.n_faces} faces: used the largest"
        return ""


def content_hash(image: np.ndarray) -> str:
    """SHA-256 of the decoded pixels (and shape): the same picture gives the same hash whatever its file name."""
    h = hashlib.sha256()
    h.update(repr(tuple(image.shape)).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def vector_hash(vector: np.ndarray, model: str) -> str:
    """Content hash of an embedding enrolled without its image."""
    v = np.ascontiguousarray(np.asarray(vector, np.float32))
    return "vec:" + hashlib.sha256(model.encode() + b"\0" + v.tobytes()).hexdigest()


def enroll_pipeline(embedder: str = "dlib", detector: str = DEFAULT_DETECTOR, *, min_face: int = 40, rotate: Any = "auto", flip: bool = True) -> FaceAnalysis:
    """The pipeline used to embed enrolment images (no 68-point landmarks: the embedder aligns itself)."""
    return FaceAnalysis(detector=detector, landmarks=None, embedder=embedder, rotate=rotate, flip=flip, detector_options={"min_face": int(min_face)})


def choose_face(image: np.ndarray, pipeline: FaceAnalysis, *, fallback: bool = False) -> FaceChoice | None:
    """The largest face of ``image`` with its embedding, or ``None`` when there is none.

    With ``fallback=True`` an image without a detected face is embedded as a
    whole (its full frame is the face box): meant for datasets of pre-cropped faces.
    """
    faces = detect(image, pipeline.detector, rotate=pipeline.rotate, min_score=pipeline.min_score, **pipeline.detector_options)
    if faces:
        face, n, fb = faces[0], len(faces), False
    elif fallback:
        h, w = image.shape[:2]
        face, n, fb = Face(Box(0.0, 0.0, float(w), float(h)), 0.0, WHOLE_IMAGE), 0, True
    else:
        return None
    emb = get_embedder(pipeline.embedder or "dlib", **pipeline.embedder_options)
    face.embedding = emb.embed(image, [face], flip=pipeline.flip)[0]
    return FaceChoice(face, n, fb)


__all__ = ["WHOLE_IMAGE", "FaceChoice", "choose_face", "content_hash", "enroll_pipeline", "vector_hash"]
