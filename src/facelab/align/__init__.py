"""Align and crop face chips.

* ``method="dlib"``: dlib's similarity alignment from 5 or 68 landmarks (what
  dlib's ResNet embedder and face_recognition use), ``size`` 150, ``padding``
  0.25 by default.
* ``method="arcface"``: the 5-point ArcFace template (112x112), used by ONNX
  embedders such as ArcFace and SFace.
* :func:`crop`: a square crop around the box (no landmarks needed), turned
  upright for rotated faces.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..types import Face, Landmarks

#: ArcFace / InsightFace 112x112 reference points: image-left eye, image-right eye, nose tip, mouth corners.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32
)


def dlib5_landmarks(image: np.ndarray, face: Face) -> Landmarks:
    """``face.landmarks`` if they are dlib's 5 points, else dlib's 5-point model run on the box.

    dlib's ResNet was trained on chips aligned with these 5 points, so they are
    what :func:`align` uses unless other landmarks are passed explicitly.
    """
    lm = face.landmarks
    if lm is not None and lm.scheme == "5":
        return lm
    from ..landmarks import get_landmarker

    return get_landmarker("dlib5").predict(image, [face])[0]


def dlib_shape(face: Face, lm: Landmarks):
    """A ``dlib.full_object_detection`` from facelab landmarks."""
    import dlib

    b = face.box
    rect = dlib.rectangle(int(round(b.left)), int(round(b.top)), int(round(b.right)), int(round(b.bottom)))
    pts = dlib.points()
    for x, y in np.asarray(lm.points[:, :2], dtype=np.float64):
        pts.append(dlib.point(int(round(x)), int(round(y))))
    return dlib.full_object_detection(rect, pts)


def align(
    image: np.ndarray,
    face: Face,
    size: int = 150,
    padding: float = 0.25,
    method: str = "dlib",
    landmarks: Landmarks | None = None,
) -> np.ndarray:
    """An aligned ``size`` x ``size`` RGB chip of ``face``.

    ``method="dlib"`` aligns on dlib's 5 points (``face.landmarks`` when they are
    those, else the 5-point model is run on the box) or on the ``landmarks``
    given (5 or 68 dlib points).
    """
    if method == "dlib":
        import dlib

        lm = landmarks if landmarks is not None else dlib5_landmarks(image, face)
        if lm.scheme not in ("5", "68"):
            raise ValueError(f"dlib alignment needs dlib's 5 or 68 landmarks, not scheme {lm.scheme!r}")
        return np.asarray(dlib.get_face_chip(image, dlib_shape(face, lm), size=size, padding=padding))
    if method == "arcface":
        return align_arcface(image, face, size=size)
    if method == "crop":
        return crop(image, face, size=size, padding=padding)
    raise ValueError(f"unknown alignment method {method!r} (dlib, arcface, crop)")


def five_points(image: np.ndarray, face: Face) -> tuple[np.ndarray, list[int]]:
    """Reference points in ArcFace order and which template rows they match."""
    for lm in (face.keypoints, face.landmarks):
        if lm is not None and lm.scheme == "kp5":
            return np.asarray(lm.points[:, :2], np.float32), [0, 1, 2, 3, 4]
    lm = face.landmarks if face.landmarks is not None and face.landmarks.scheme == "68" else dlib5_landmarks(image, face)
    p = lm.points[:, :2]
    if lm.scheme == "68":
        return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]]).astype(np.float32), [0, 1, 2, 3, 4]
    # dlib 5: eye corners (image-right eye 0,1; image-left eye 2,3) and the base of the nose
    return np.stack([p[2:4].mean(0), p[0:2].mean(0), p[4]]).astype(np.float32), [0, 1, 2]


def align_arcface(image: np.ndarray, face: Face, size: int = 112) -> np.ndarray:
    src, rows = five_points(image, face)
    dst = ARCFACE_TEMPLATE[rows] * (size / 112.0)
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if m is None:
        m = cv2.getAffineTransform(src[:3], dst[:3])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop(image: np.ndarray, face: Face, size: int = 256, padding: float = 0.25) -> np.ndarray:
    """A square ``size`` crop centred on the face box, ``padding`` x the box side added on each side."""
    m = chip_transform(face, size, padding)
    interp = cv2.INTER_AREA if abs(m[0, 0]) + abs(m[0, 1]) < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def chip_transform(face: Face, size: int, padding: float) -> np.ndarray:
    """The 2x3 matrix :func:`crop` applies (original image -> chip)."""
    cx, cy = face.box.center
    side = max(face.box.width, face.box.height) * (1.0 + 2.0 * padding)
    m = cv2.getRotationMatrix2D((cx, cy), face.rotation, size / max(side, 1.0))
    m[0, 2] += size / 2.0 - cx
    m[1, 2] += size / 2.0 - cy
    return m


__all__ = ["ARCFACE_TEMPLATE", "align", "dlib5_landmarks", "align_arcface", "chip_transform", "crop", "dlib_shape", "five_points"]
