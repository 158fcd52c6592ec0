"""Annotated images: boxes, labels and landmarks in fixed colours.

Landmark colours (RGB): left eye blue, right eye red, nose green, mouth white
(left/right as seen in the image); other points (jaw, brows) yellow.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from ..types import Face, Landmarks

COLORS: dict[str, tuple[int, int, int]] = {
    "left_eye": (0, 0, 255),
    "right_eye": (255, 0, 0),
    "nose": (0, 255, 0),
    "mouth": (255, 255, 255),
    "other": (255, 215, 0),
}
BOX_COLOR = (0, 200, 255)
UNKNOWN_COLOR = (255, 80, 80)

_REGION_GROUPS = {
    "left_eye": "left_eye",
    "right_eye": "right_eye",
    "nose": "nose",
    "nose_tip": "nose",
    "nose_bridge": "nose",
    "mouth": "mouth",
    "top_lip": "mouth",
    "bottom_lip": "mouth",
}


def landmark_colors(lm: Landmarks) -> np.ndarray:
    """An (N, 3) array with the fixed colour of every landmark point."""
    cols = np.tile(np.array(COLORS["other"], np.uint8), (len(lm), 1))
    from ..types import LANDMARK_REGIONS

    regions = LANDMARK_REGIONS.get(lm.scheme, {})
    for region, group in _REGION_GROUPS.items():
        if region in regions:
            cols[regions[region]] = COLORS[group]
    return cols


def default_label(face: Face) -> str:
    parts = []
    if face.identity is not None:
        parts.append(f"{face.identity.name} ({face.identity.distance:.2f})")
    for key in ("age", "gender", "emotion", "ethnicity"):
        a = face.attributes.get(key)
        if a is not None:
            parts.append(f"{a.value:.0f}" if isinstance(a.value, float) else str(a.value))
    return " ".join(parts)


def draw_faces(
    image: np.ndarray,
    faces: list[Face],
    *,
    labels: list[str] | None = None,
    label_fn: Callable[[Face], str] = default_label,
    landmarks: bool = True,
    keypoints: bool = True,
) -> np.ndarray:
    """A copy of ``image`` (RGB) with every face drawn on it."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    thick = max(1, int(round(max(h, w) / 500)))
    radius = max(1, int(round(max(h, w) / 400)))
    for i, face in enumerate(faces):
        color = UNKNOWN_COLOR if face.identity is not None and not face.identity.known else BOX_COLOR
        poly = np.round(face.polygon()).astype(np.int32)
        cv2.polylines(out, [poly], True, color, thick, cv2.LINE_AA)
        for lm, show in ((face.landmarks, landmarks), (face.keypoints, keypoints and face.landmarks is None)):
            if lm is None or not show:
                continue
            pts = np.round(lm.points[:, :2]).astype(np.int32)
            cols = landmark_colors(lm)
            r = radius if len(pts) < 100 else max(1, radius // 2)
            if len(pts) >= 100:  # dense meshes: only the contours (the points of the scheme's regions)
                from ..types import LANDMARK_REGIONS

                idx = sorted({i for v in LANDMARK_REGIONS.get(lm.scheme, {}).values() for i in v}) or list(range(len(pts)))
                pts, cols = pts[idx], cols[idx]
            for (x, y), c in zip(pts, cols):
                cv2.circle(out, (int(x), int(y)), r, tuple(int(v) for v in c), -1, cv2.LINE_AA)
        text = labels[i] if labels is not None and i < len(labels) else label_fn(face)
        if text:
            _label(out, text, int(poly[:, 0].min()), int(poly[:, 1].min()), int(poly[:, 1].max()), color, thick)
    return out


def _label(img: np.ndarray, text: str, x: int, top: int, bottom: int, color, thick: int) -> None:
    h, w = img.shape[:2]
    scale = max(0.4, min(2.0, max(h, w) / 1000))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    y = top - 4 if top - th - base - 4 > 0 else min(h - 1, bottom + th + base + 4)
    x = max(0, min(x, w - tw - 2))
    cv2.rectangle(img, (x, y - th - base), (x + tw + 2, y + base // 2), color, -1)
    cv2.putText(img, text, (x + 1, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)


def save_image(image: np.ndarray, path: str | os.PathLike[str], quality: int = 92) -> str:
    """Write an RGB array (format from the extension), creating folders as needed."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(image).save(path, quality=quality) if path.lower().endswith((".jpg", ".jpeg")) else Image.fromarray(image).save(path)
    return path


__all__ = ["BOX_COLOR", "COLORS", "default_label", "draw_faces", "landmark_colors", "save_image"]
