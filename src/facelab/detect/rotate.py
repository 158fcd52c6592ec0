"""Geometry of turned images: the expanded-canvas rotation, affine helpers, upright face crops.

Used by the any-angle search (:mod:`facelab.detect.orient`): the whole image is
turned (on an expanded canvas, so nothing is cut), detected, and every face is
mapped back to the original image (the box centre exactly, the box keeping its
upright size, :attr:`Face.rotation` the angle that turns it upright).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..types import Box, Face, Landmarks

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


def same_face(a: Face, b: Face, overlap: float = 0.5) -> bool:
    """Two detections of one face: centres closer than ``overlap`` x the smaller box side."""
    (ax, ay), (bx, by) = a.box.center, b.box.center
    side = min(a.box.width, a.box.height, b.box.width, b.box.height)
    return math.hypot(ax - bx, ay - by) < overlap * side


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
