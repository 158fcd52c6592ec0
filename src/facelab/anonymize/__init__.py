"""Anonymise faces: cover every face found (rotated faces included), optionally keeping enrolled people visible.

>>> res = anonymize("crowd.jpg", method="pixelate")            # Anonymized: .image, .covered, .kept
>>> res = anonymize("team.jpg", gallery=Gallery("staff.db"), keep_known=True)   # staff stay visible
>>> json.dumps(res.to_dict())                                   # the sidecar: what was covered

Faces come from the default detector with the rotation sweep always on (``rotate=True``), so faces
turned up to ±45° are found and their covered region turns with them (the eyes' angle when the detector
gives eye points).  The covered region is the face box grown by ``margin`` on each side, as an ellipse
(default) or a rectangle.  See :mod:`facelab.anonymize.base` for why no original pixel survives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..detect import DEFAULT_DETECTOR, get_detector
from ..detect.orient import check_logits, search
from ..io import as_image, describe_source
from ..errors import InputError
from ..types import Face
from .base import CELLS, METHODS, SHAPES, Anonymized, CoveredFace, cell_size, cover, face_roll, fill, region_of

#: Margin on each side of the face box, as a share of its size, and the default detector's settings for
#: anonymising: recall before precision (a covered hand costs little, a visible face is a leak).  Chosen on
#: 40 face-boxes *training* photos turned by 30 degrees (docs/privacy.md): score >= 0.3 instead of 0.7, a
#: 640 px view instead of 384 and margin 0.3 instead of 0.2 raised faces >= 20 px covered from 0.894 to 0.979 and faces < 20 px from 0.339 to 0.857.
DEFAULT_MARGIN = 0.3
DETECTOR_OPTIONS: dict[str, Any] = {"threshold": 0.3, "input_size": 640}
# the extra views searched for turned faces (recall first: every view's faces are covered)
DEFAULT_ANGLES: tuple[float, ...] = (-45.0, -30.0, -15.0, 15.0, 30.0, 45.0)
FULL_ANGLES: tuple[float, ...] = (*DEFAULT_ANGLES, -90.0, -60.0, 60.0, 90.0, 180.0)
#: a face only the turned views found is covered when the orientation check (a crop of it at its four quarter
#: turns) scores at least this logit: turned copies of a photo make false boxes (background, arms) that
#: scored 0.99 and covered half of samples/photos/obama_and_biden.jpg.  Chosen on face-boxes *training*
#: photos (docs/privacy.md); None covers every swept box.
SWEEP_MIN_LOGIT: float | None = -1.0


def find_faces(image: np.ndarray, detector: str = DEFAULT_DETECTOR, rotate: Any = True, *, min_logit: float | None = SWEEP_MIN_LOGIT, **detect_options: Any) -> list[Face]:
    """The faces :func:`find_faces_and_rolls` finds."""
    return find_faces_and_rolls(image, detector, rotate, min_logit=min_logit, **detect_options)[0]


def find_faces_and_rolls(
    image: np.ndarray, detector: str = DEFAULT_DETECTOR, rotate: Any = True, *, min_logit: float | None = SWEEP_MIN_LOGIT, **detect_options: Any
) -> tuple[list[Face], list[float]]:
    """Every face to cover: the upright detections, plus the rotation sweep's faces that no upright face already
    holds and that pass the orientation check (``min_logit``, see :data:`SWEEP_MIN_LOGIT`).

    Unlike :func:`facelab.detect` (which keeps the best-scoring angle of a face), an upright face keeps its
    upright box here, and a turned face found only by the sweep is added.  Each face's roll
    (:func:`face_roll`) is the score-weighted mean of the eye-line rolls of every detection of it, upright
    and swept (see :func:`_mean_roll`).
    """
    if detector == DEFAULT_DETECTOR:
        detect_options = {**DETECTOR_OPTIONS, **detect_options}
    det = get_detector(detector, **detect_options)
    faces = det.detect(image)
    if isinstance(rotate, (list, tuple)):
        angles: tuple[float, ...] = tuple(float(a) for a in rotate)
    else:
        angles = DEFAULT_ANGLES if rotate is True else FULL_ANGLES if rotate == "full" else ()
    if angles:
        swept = search(det, image, angles, upright=[])  # the turned views' faces only, merged across views
        groups: dict[int, list[Face]] = {id(u): [u] for u in faces}
        new: list[Face] = []
        for f in swept:
            cx, cy = f.box.center
            holder = next((u for u in faces if u.box.left <= cx <= u.box.right and u.box.top <= cy <= u.box.bottom), None)
            if holder is None:
                new.append(f)
            else:
                groups[id(holder)].append(f)
        if min_logit is not None and new:
            for f, lg in zip(new, check_logits(det, image, [_copy(f) for f in new])):
                f.check_logit = lg  # type: ignore[attr-defined]  # read by benchmarks/anonymize.py
            new = [f for f in new if f.check_logit >= min_logit]  # type: ignore[attr-defined]
        for f in new:
            faces.append(f)
            groups[id(f)] = [f]
    else:
        groups = {id(u): [u] for u in faces}
    faces.sort(key=lambda f: -f.box.area)
    return faces, [_mean_roll(groups[id(f)]) for f in faces]


def _copy(f: Face) -> Face:
    return Face(f.box, f.score, f.detector, f.rotation, keypoints=f.keypoints)


def _mean_roll(dets: list[Face]) -> float:
    """Score-weighted circular mean of the eye-line rolls of every detection of one face.

    Keypoints lean towards the angle of the view they were found in (an upright pass reads a face turned
    by 40 degrees as turned by ~5; a pass turned by 45 reads an upright face as turned by ~25): averaging
    the views pulls the estimate towards the truth from both sides, but it stays rough (docs/privacy.md).
    """
    w = np.array([max(d.score, 1e-3) for d in dets])
    a = np.radians([face_roll(d) for d in dets])
    return float(np.degrees(np.arctan2((w * np.sin(a)).sum(), (w * np.cos(a)).sum())))


def _identify(image: np.ndarray, faces: list[Face], gallery: Any) -> None:
    """Set ``face.identity`` from a :class:`~facelab.gallery.Gallery` or :class:`~facelab.gallery.KnownFaces`."""
    from ..embed import embed

    spec = getattr(gallery, "embedder_spec", None) or gallery.model
    embed(image, faces, spec, flip=getattr(gallery, "flip", True))
    gallery.identify_faces(faces)


def choose(faces: list[Face], *, keep_known: bool = False, only_known: bool = False) -> tuple[list[Face], list[Face]]:
    """Split identified faces into (to cover, to keep): ``keep_known`` keeps known people, ``only_known`` covers only them."""
    if keep_known and only_known:
        raise InputError("keep_known and only_known exclude each other")
    if not (keep_known or only_known):
        return list(faces), []
    known = [f for f in faces if f.identity is not None and f.identity.known]
    unknown = [f for f in faces if not (f.identity is not None and f.identity.known)]
    return (unknown, known) if keep_known else (known, unknown)


def anonymize(
    image: Any,
    *,
    method: str = "blur",
    margin: float = DEFAULT_MARGIN,
    shape: str = "ellipse",
    color: tuple[int, int, int] = (0, 0, 0),
    gallery: Any = None,
    keep_known: bool = False,
    only_known: bool = False,
    faces: list[Face] | None = None,
    detector: str = DEFAULT_DETECTOR,
    rotate: Any = True,
    min_logit: float | None = SWEEP_MIN_LOGIT,
    **detect_options: Any,
) -> Anonymized:
    """Cover the faces of an image; returns :class:`Anonymized` (the new image and what was covered).

    ``method``: ``blur``, ``pixelate``, ``solid`` (``color``) or ``mask`` (the face's mean colour).
    ``keep_known`` / ``only_known`` need a ``gallery`` (a ``Gallery`` or ``KnownFaces``).
    ``faces``: cover these instead of detecting.  ``rotate`` / ``min_logit``: see :func:`find_faces_and_rolls`.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if (keep_known or only_known) and gallery is None:
        raise InputError("keep_known/only_known need a gallery of known people")
    img = as_image(image)
    if faces is None:
        faces, rolls = find_faces_and_rolls(img, detector, rotate, min_logit=min_logit, **detect_options)
    else:
        rolls = [face_roll(f) for f in faces]
    roll = {id(f): r for f, r in zip(faces, rolls)}
    if gallery is not None and (keep_known or only_known) and faces:
        _identify(img, faces, gallery)
    to_cover, kept = choose(faces, keep_known=keep_known, only_known=only_known)
    regions = [region_of(f, margin=margin, shape=shape, method=method, angle=roll[id(f)]) for f in to_cover]
    for r in regions:
        if r.face.identity is not None:
            r.name = r.face.identity.name
    out = cover(img, regions, color=color, keep=kept)
    return Anonymized(out, regions, kept, describe_source(image) if not isinstance(image, np.ndarray) else None)


__all__ = [
    "CELLS",
    "DEFAULT_MARGIN",
    "DETECTOR_OPTIONS",
    "METHODS",
    "SHAPES",
    "SWEEP_MIN_LOGIT",
    "Anonymized",
    "CoveredFace",
    "anonymize",
    "cell_size",
    "choose",
    "cover",
    "face_roll",
    "fill",
    "find_faces",
    "find_faces_and_rolls",
    "region_of",
]
