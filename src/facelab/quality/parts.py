"""The measured parts of face quality: sharpness, exposure, size and pose.

Each part is a number in [0, 1], higher is better.  Sharpness and exposure are read on a fixed-size grey
crop of the face box (turned upright), so a small face blown up to the crop size reads as blurred.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..align import crop
from ..types import Face

#: side of the grey crop sharpness and exposure are read on
CHIP = 64
#: Laplacian variance (on the CHIP crop) scoring 0 and 1 (log scale between).  On the quality model's training
#: photos (LFW people outside pairsDevTest): clean faces 5th-95th percentile 2,413-10,267 (median 5,101); the
#: blurred copies' median 181, the downscaled copies' 842.
SHARPNESS_ZERO, SHARPNESS_FULL = 100.0, 3000.0
#: face size (box's shorter side, px) that scores 1; 16 px scores 0 (log scale between)
SIZE_FULL, SIZE_ZERO = 112.0, 16.0


def grey_chip(image: np.ndarray, face: Face, size: int = CHIP) -> np.ndarray:
    """The face box (no padding), upright, as a ``size`` x ``size`` grey float crop in [0, 255]."""
    c = crop(image, face, size=size, padding=0.0)
    g = cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) if c.ndim == 3 else c
    return g.astype(np.float32)


def laplacian_variance(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the centre of the chip (the face, not its background)."""
    n = chip.shape[0]
    m = n // 8
    lap = cv2.Laplacian(chip, cv2.CV_32F, ksize=3)
    return float(lap[m:n - m, m:n - m].var())


def sharpness_score(lapvar: float) -> float:
    return float(np.clip(math.log(max(lapvar, 1e-6) / SHARPNESS_ZERO) / math.log(SHARPNESS_FULL / SHARPNESS_ZERO), 0.0, 1.0))


def exposure_parts(chip: np.ndarray) -> tuple[float, float, float]:
    """(mean brightness in [0,1], share of clipped pixels, contrast: std in [0,1]) of the chip's centre."""
    n = chip.shape[0]
    m = n // 8
    c = chip[m:n - m, m:n - m] / 255.0
    clipped = float(((c <= 0.02) | (c >= 0.98)).mean())
    return float(c.mean()), clipped, float(c.std())


def exposure_score(mean: float, clipped: float, contrast: float) -> float:
    """1 for a mid-grey face with some contrast and nothing clipped; falls off for dark, bright, flat or clipped faces."""
    level = max(0.0, 1.0 - abs(mean - 0.5) / 0.4)
    flat = min(1.0, contrast / 0.12)
    return float(level * flat * (1.0 - min(1.0, clipped * 2.0)))


def size_score(face: Face) -> float:
    side = max(1.0, min(face.box.width, face.box.height))
    return float(np.clip(math.log(side / SIZE_ZERO) / math.log(SIZE_FULL / SIZE_ZERO), 0.0, 1.0))


def _points(face: Face) -> dict[str, np.ndarray] | None:
    """Eye centres, nose tip and mouth centre from the landmarks (68, 5-kp, mesh) or the detector's keypoints."""
    for lm in (face.landmarks, face.keypoints):
        if lm is None:
            continue
        try:
            le, re = lm.eye_centers()
            nose = lm.region("nose_tip")[:, :2].mean(axis=0)
            mouth = lm.region("mouth")[:, :2].mean(axis=0)
        except (KeyError, IndexError, ValueError):
            continue
        return {"le": np.asarray(le[:2], np.float64), "re": np.asarray(re[:2], np.float64), "nose": nose.astype(np.float64), "mouth": mouth.astype(np.float64)}
    return None


#: nose-below-eyes / mouth-below-eyes for a frontal face (mean of LFW DevTrain faces with dlib68 landmarks)
PITCH_RATIO = 0.55


def head_pose(face: Face) -> tuple[float, float, float] | None:
    """(yaw, pitch, roll) in degrees, rough estimates from eyes, nose and mouth (None without points).

    Roll: the eye line's angle.  Yaw: the nose tip's sideways offset from the eyes' midpoint, over half
    the eye distance, as a sine.  Pitch: how far down the nose sits between eyes and mouth, against a
    frontal face's ratio.
    """
    p = _points(face)
    if p is None:
        return None
    eye = p["re"] - p["le"]
    iod = float(np.hypot(*eye))
    if iod < 1e-3:
        return None
    u = eye / iod
    v = np.array([-u[1], u[0]])
    mid = (p["le"] + p["re"]) / 2.0
    roll = math.degrees(math.atan2(u[1], u[0]))
    dx = float((p["nose"] - mid) @ u) / (iod / 2.0)
    yaw = math.degrees(math.asin(float(np.clip(dx, -1.0, 1.0))))
    down_mouth = float((p["mouth"] - mid) @ v)
    ratio = float((p["nose"] - mid) @ v) / down_mouth if abs(down_mouth) > 1e-3 else PITCH_RATIO
    pitch = float(np.clip((ratio - PITCH_RATIO) * 180.0, -90.0, 90.0))
    return yaw, pitch, roll


def pose_score(yaw: float, pitch: float) -> float:
    """1 for a frontal face; cos of yaw and pitch (roll is undone by alignment, so it does not count)."""
    return float(max(0.0, math.cos(math.radians(yaw))) * max(0.0, math.cos(math.radians(pitch))))
