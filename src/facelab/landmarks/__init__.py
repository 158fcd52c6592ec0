"""Facial landmarks: 5 points (dlib), 68 points (dlib, facelab's CNN; iBUG layout), 15-point simple view.

``landmarks(image, faces, model="dlib68")`` fills ``face.landmarks`` and returns
the faces.  Faces found by the rotation sweep are turned upright before the
model runs and their points mapped back.
"""

from __future__ import annotations

from typing import Any

from ..io import as_image
from ..types import Face
from . import cnn, dlib_shape, mesh468, simple  # noqa: F401  (register the backends)
from .base import LANDMARKERS, Landmarker

DEFAULT_LANDMARKS = "dlib68"


def get_landmarker(name: str = DEFAULT_LANDMARKS, **options: Any) -> Landmarker:
    return LANDMARKERS.get(name, **options)


def landmarks(image: Any, faces: list[Face] | None = None, model: str | Landmarker = DEFAULT_LANDMARKS, **detect_options: Any) -> list[Face]:
    """Set ``face.landmarks`` on every face (detected first when ``faces`` is None); returns the faces."""
    image = as_image(image)
    if faces is None:
        from ..detect import detect

        faces = detect(image, **detect_options)
    lm = model if isinstance(model, Landmarker) else get_landmarker(model)
    for face, pts in zip(faces, lm.predict(image, faces)):
        face.landmarks = pts
    return faces


__all__ = ["DEFAULT_LANDMARKS", "LANDMARKERS", "Landmarker", "get_landmarker", "landmarks"]
