"""The rotation sweep: find tilted faces that frontal detectors miss.

Frontal detectors (HOG, Haar, MMOD) find faces tilted by up to ~15-20°.  The
sweep rotates the whole image by each angle (on an expanded canvas, so nothing
is cut), detects, and maps every face back to the original image: the box
centre is mapped exactly, the box keeps its upright size, and
:attr:`Face.rotation` records the angle.  Faces found at several angles are
merged, keeping the highest score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ..types import Box, Face, Landmarks

#: Angles tried by the sweep, nearest to upright first (degrees, counter-clockwise on screen).
DEFAULT_ANGLES: tuple[float, ...] = (-15.0, 15.0, -30.0, 30.0, -45.0, 45.0)
#: Angles for photos that may lie on their side or upside down.
FULL_ANGLES: tuple[float, ...] = DEFAULT_ANGLES + (-60.0, 60.0, -90.0, 90.0, 180.0)


def rotation_matrix(width: int, height: int, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """2x3 affine taking original pixel coords to the rotated, expanded canvas, and the canvas size."""
    cx, cy = width / 2.0, height / 2.0
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw = int(math.ceil(height * s + width * c))
    nh = int(math.ceil(height * c + width * s))
    m[0, 2] += nw / 2.0 - cx
    m[1, 2] += nh / 2.0 - cy
    return m, (nw, nh)


def rotate_image(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image rotated by ``angle`` degrees (counter-clockwise on screen) and the 2x3 matrix used."""
    h, w = image.shape[:2]
    m, (nw, nh) = rotation_matrix(w, h, angle)
    out = cv2.warpAffine(image, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return out, m


def invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]


def map_face_back(face: Face, inv: np.ndarray, angle: float) -> Face:
    """A face found in a rotated image, expressed in the original image."""
    (cx, cy), = apply_affine(inv, [face.box.center])
    box = Box.from_center(float(cx), float(cy), face.box.width, face.box.height)
    kps = None
    if face.keypoints is not None:
        kps = Landmarks(apply_affine(inv, face.keypoints.points[:, :2]), face.keypoints.model, face.keypoints.scheme)
    return Face(box, face.score, face.detector, rotation=float(angle) + face.rotation, keypoints=kps)


def same_face(a: Face, b: Face, overlap: float = 0.5) -> bool:
    """Two detections of one face: centres closer than ``overlap`` x the smaller box side."""
    (ax, ay), (bx, by) = a.box.center, b.box.center
    side = min(a.box.width, a.box.height, b.box.width, b.box.height)
    return math.hypot(ax - bx, ay - by) < overlap * side


def merge_faces(faces: list[Face]) -> list[Face]:
    """Greedy suppression of duplicates across angles: best score first, upright preferred on ties."""
    order = sorted(faces, key=lambda f: (-f.score, abs(f.rotation)))
    kept: list[Face] = []
    for f in order:
        if not any(same_face(f, k) for k in kept):
            kept.append(f)
    return kept


def sweep(detect_upright, image: np.ndarray, angles: Sequence[float] = DEFAULT_ANGLES, *, include_upright: bool = True, upright: list[Face] | None = None) -> list[Face]:
    """Run ``detect_upright(image) -> list[Face]`` at every angle and merge the results.

    ``upright`` are faces already found at 0° (so they are not searched again).
    """
    found: list[Face] = list(upright) if upright is not None else (detect_upright(image) if include_upright else [])
    for angle in angles:
        if angle % 360 == 0:
            continue
        rotated, m = rotate_image(image, angle)
        inv = invert_affine(m)
        found.extend(map_face_back(f, inv, angle) for f in detect_upright(rotated))
    return merge_faces(found)


def upright_crop(image: np.ndarray, face: Face, margin: float = 1.0) -> tuple[np.ndarray, np.ndarray, Box]:
    """Cut out the face turned upright, for models that need it (landmarks, alignment).

    Returns ``(crop, M, box)``: ``M`` (2x3) maps original coords into the crop,
    ``box`` is the face box inside the crop.  The crop spans the box plus
    ``margin`` x its size on each side.
    """
    cx, cy = face.box.center
    w, h = face.box.width, face.box.height
    cw, ch = int(math.ceil(w * (1 + 2 * margin))), int(math.ceil(h * (1 + 2 * margin)))
    m = cv2.getRotationMatrix2D((cx, cy), face.rotation, 1.0)
    m[0, 2] += cw / 2.0 - cx
    m[1, 2] += ch / 2.0 - cy
    crop = cv2.warpAffine(image, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, m, Box.from_center(cw / 2.0, ch / 2.0, w, h)
