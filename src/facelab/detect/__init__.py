"""Face detection: several backends behind one function, faces at any angle.

>>> faces = detect(image)                      # blazeface_ft; searches other angles only when needed
>>> faces = detect(image, detector="cnn", rotate=True)
>>> faces = detect(image, detector="my_yunet.onnx")

Backends register in :data:`DETECTORS` (``hog``, ``cnn``, ``haar``, ``yunet``
for a user's ONNX file; more in other modules) and are built once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any, Union

from ..io import as_image
from ..types import Face
from . import blazeface, blazeface_ft, cascade, dlib_hog, dlib_mmod, haar, onnx_yunet  # noqa: F401  (register the backends)
from . import orient
from .base import DETECTORS, Detector
from .rotate import rotate_image, upright_crop

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


ROTATE_MODES = ("off", "auto", "on", "full")


def rotate_mode(rotate: Rotate) -> str | tuple[float, ...]:
    """``rotate`` as one of :data:`ROTATE_MODES`, or a tuple of angles.

    Accepts ``False``/``None``/``"off"``/``"none"``, ``"auto"``, ``True``/``"on"``/``"always"``,
    ``"full"`` and a list of angles (and a ``str`` enum of these names, e.g. the CLI's).
    """
    if isinstance(rotate, Enum):
        rotate = rotate.value
    if rotate is None or rotate is False or rotate in ("off", "none"):
        return "off"
    if rotate is True or rotate in ("on", "always"):
        return "on"
    if rotate in ("auto", "full"):
        return str(rotate)
    if isinstance(rotate, (list, tuple)):
        try:
            return tuple(float(a) for a in rotate)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"rotate must be 'off', 'auto', 'on', 'full' (or False/True, a list of angles), not {rotate!r}")


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

    Every face's :attr:`~facelab.types.Face.rotation` is its measured in-plane
    roll: the angle (degrees, counter-clockwise) that turns the image so the face
    is upright, from the detector's keypoints (BlazeFace) or the view it was found in.

    ``rotate``: ``"off"``/``False`` never turns the image (the roll is still
    measured from keypoints); ``"auto"`` (default) checks the orientation of the
    faces found upright (detectors with keypoints: a turned crop of each face
    scored at 0/90/180/270°) and searches the whole image at every angle only
    when nothing was found or a face is turned (a photo whose faces all lean by
    12.5-30° is also looked at levelled, :data:`orient.LEVEL_ROLL`); ``"on"``/``True`` always
    searches (45° steps and the 30° steps between them for the BlazeFace family,
    15° then 30° steps for frontal detectors); ``"full"`` searches every 15°; a list gives the angles.
    ``detector`` may be a fallback chain such as ``"hog,cnn"``.
    ``options`` go to the backend (e.g. ``min_face=40``, ``upsample=1`` for dlib).
    """
    mode = rotate_mode(rotate)
    image = as_image(image)
    det = detector if isinstance(detector, Detector) else get_detector(detector, **options)
    faces = det.detect(image)
    if mode == "off":
        faces = [orient.fine_roll(image, orient.measure_roll(f)) for f in faces]
    elif mode == "auto":
        faces = [orient.fine_roll(image, f) for f in orient.orient_faces(det, image, faces, half_turns=True, quick=True)]
        if orient.needs_search(faces):
            faces = _search(det, image, orient.search_angles(det), faces)
        elif orient.doubt_upside_down(det, faces):
            faces = _search(det, image, (180.0,), faces) or faces
        elif (tilt := orient.photo_tilt(det, faces)) is not None:
            faces = _levelled(det, image, tilt, faces)
    else:
        angles = mode if isinstance(mode, tuple) else orient.search_angles(det, full=mode == "full")
        faces = _search(det, image, angles, faces)
    if min_score is not None:
        faces = [f for f in faces if f.score >= min_score]
    faces.sort(key=lambda f: -f.box.area)
    if max_faces is not None:
        faces = faces[:max_faces]
    return faces


def _search(det: Detector, image, angles, upright: list[Face]) -> list[Face]:
    """Whole-image search at ``angles``; then each face's orientation checked, false turned boxes dropped.

    A fallback chain searches with its first detector at every angle, and only when that finds nothing
    with the next (a chain run per view would fall through to the slowest detector in every view
    that shows no face: the MMOD CNN in 14 of 15 views of a turned portrait, 2.4 s per LFW image).
    """
    if isinstance(det, cascade.CascadeDetector):
        for i, member in enumerate(det.members()):
            faces = _search(member, image, angles, upright if i == 0 else [])
            if faces:
                return faces
        return []
    if orient.checker(det) is None:
        found = orient.search(det, image, angles, upright=upright)  # no orientation check: at least drop the parts of faces turned copies show
        return [orient.fine_roll(image, f) for f in orient.drop_inner(found)]
    # once the image is searched at every angle, every detection of every view (the upright ones first) must
    # convince the orientation check (false boxes from the turned copies' edges, parts of a turned face taken
    # for a face...): one batch of crops for all of them
    return _checked_views(det, image, angles, upright)


def _checked_views(det: Detector, image, angles, upright: list[Face], *, through_canvas: bool = False) -> list[Face]:
    """``upright`` and the faces of the image turned by ``angles``, each convincing the check
    (:func:`orient.view_min_logit`), one per place (``through_canvas``: see :func:`orient.search_views`)."""
    views = orient.search_views(det, image, angles, upright=upright, through_canvas=through_canvas)
    floors = [orient.view_min_logit(det, v) for v, _ in views]
    faces = orient.orient_faces(det, image, [f for _, f in views], min_logit=floors)
    return orient.dedupe([orient.fine_roll(image, f) for f in faces])


def _levelled(det: Detector, image, tilt: float, faces: list[Face]) -> list[Face]:
    """``faces`` and the faces of the image levelled at ``tilt`` (scanned through a dark canvas, see
    :data:`facelab.detect.blazeface.PADDING_LIMIT`): a face found both ways keeps the levelled read
    (drawn on the face upright, scanned finer), faces found only upright stay (see :data:`orient.LEVEL_ROLL`)."""
    levelled = _checked_views(det, image, (tilt,), [], through_canvas=True)
    kept = [f for f in faces if not any(orient.clash(g, f) for g in levelled)]
    return kept + levelled


__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "ROTATE_MODES",
    "Detector",
    "detect",
    "get_detector",
    "pick_face",
    "rotate_mode",
    "rotate_image",
    "upright_crop",
]
