"""Face detection: several backends behind one function, plus the rotation sweep.

>>> faces = detect(image)                      # dlib HOG, sweep only if nothing is upright
>>> faces = detect(image, detector="cnn", rotate=True)
>>> faces = detect(image, detector="my_yunet.onnx")

Backends register in :data:`DETECTORS` (``hog``, ``cnn``, ``haar``, ``yunet``
for a user's ONNX file; more in other modules) and are built once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from ..io import as_image
from ..types import Face
from . import blazeface, blazeface_ft, cascade, dlib_hog, dlib_mmod, haar, onnx_yunet  # noqa: F401  (register the backends)
from .base import DETECTORS, Detector
from .rotate import DEFAULT_ANGLES, FULL_ANGLES, rotate_image, sweep, upright_crop

DEFAULT_DETECTOR = "blazeface_ft"

Rotate = Union[bool, str, Sequence[float], None]


def get_detector(name: str = DEFAULT_DETECTOR, **options: Any) -> Detector:
    """The shared detector instance for ``name`` (a registered name or an ``.onnx`` path)."""
    return DETECTORS.get(name, **options)


def pick_face(faces: list[Face], image_shape: tuple[int, ...], pick: str = "largest") -> Face:
    """The main face: ``"largest"`` box, or the one whose centre is nearest the image centre (``"central"``)."""
    if not faces:
        raise ValueError("no faces to pick from")
    if pick == "largest":
        return max(faces, key=lambda f: f.box.area)
    if pick == "central":
        cy, cx = image_shape[0] / 2.0, image_shape[1] / 2.0
        return min(faces, key=lambda f: (f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2)
    raise ValueError(f"pick must be 'largest' or 'central', not {pick!r}")


def detect(
    image: Any,
    detector: str | Detector = DEFAULT_DETECTOR,
    *,
    rotate: Rotate = "auto",
    min_score: float | None = None,
    max_faces: int | None = None,
    **options: Any,
) -> list[Face]:
    """Find the faces in an image (array, path, URL, bytes), largest first.

    ``rotate``: ``"auto"`` (default) runs the rotation sweep only when no upright
    face is found; ``True`` always sweeps (±15°, ±30°, ±45°); ``"full"`` also
    tries ±60°, ±90° and 180°; a list gives the angles; ``False``/``None``
    never rotates.  ``detector`` may be a fallback chain such as ``"hog,cnn"``.
    ``options`` go to the backend (e.g. ``min_face=40``, ``upsample=1`` for dlib).
    """
    image = as_image(image)
    det = detector if isinstance(detector, Detector) else get_detector(detector, **options)
    faces = det.detect(image)
    angles: Sequence[float] = ()
    if rotate is True or rotate == "always":
        angles = DEFAULT_ANGLES
    elif rotate == "full":
        angles = FULL_ANGLES
    elif rotate == "auto":
        angles = DEFAULT_ANGLES if not faces else ()
    elif isinstance(rotate, (list, tuple)):
        angles = tuple(float(a) for a in rotate)
    elif rotate not in (False, None, "off", "none"):
        raise ValueError(f"rotate must be 'auto', True, False, 'full' or a list of angles, not {rotate!r}")
    if angles:
        faces = sweep(det.detect, image, angles, upright=faces)
    if min_score is not None:
        faces = [f for f in faces if f.score >= min_score]
    faces.sort(key=lambda f: -f.box.area)
    if max_faces is not None:
        faces = faces[:max_faces]
    return faces


__all__ = [
    "DEFAULT_ANGLES",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "FULL_ANGLES",
    "Detector",
    "detect",
    "get_detector",
    "pick_face",
    "rotate_image",
    "sweep",
    "upright_crop",
]
