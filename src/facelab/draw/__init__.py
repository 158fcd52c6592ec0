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


def label_layout(text: str, width: int, height: int, x: int, top: int, bottom: int, thick: int = 1) -> tuple[float, list[tuple[str, int, int]], tuple[int, int, int, int]]:
    """Where a face's label goes so that it stays inside a ``width`` x ``height`` image, whole.

    The label sits above the box (``x``, ``top``), or below it (``bottom``) when there is no room
    above, or inside the image's top/bottom edge when neither fits; it is shifted left to stay
    inside, shrunk (down to a readable size) when wider than the image, then wrapped at spaces
    (and inside words that are still too wide).  Returns the font scale, the lines with their
    text origins, and the background rectangle ``(x0, y0, x1, y1)``.
    """
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.4, min(2.0, max(width, height) / 1000))
    room = max(1, width - 2)
    while scale > 0.3 and cv2.getTextSize(text, font, scale, thick)[0][0] > room:
        scale = round(scale - 0.05, 2)
    lines = _wrap(text, lambda s: cv2.getTextSize(s, font, scale, thick)[0][0], room)
    (_, th), base = cv2.getTextSize("Ag", font, scale, thick)
    line_h = th + base + 2
    block_w = max(cv2.getTextSize(s, font, scale, thick)[0][0] for s in lines) + 2
    block_h = line_h * len(lines)
    if top - 4 - block_h >= 0:
        y0 = top - 4 - block_h
    elif bottom + 4 + block_h <= height:
        y0 = bottom + 4
    else:
        y0 = max(0, min(top - 4 - block_h, height - block_h))
    x0 = max(0, min(x, width - block_w))
    placed = [(s, x0 + 1, y0 + (k + 1) * line_h - base - 1) for k, s in enumerate(lines)]
    return scale, placed, (x0, y0, min(width - 1, x0 + block_w), min(height - 1, y0 + block_h))


def _wrap(text: str, measure: Callable[[str], int], room: int) -> list[str]:
    """Greedy line breaking at spaces; a word wider than ``room`` is cut into pieces that fit."""
    lines: list[str] = []
    for word in text.split():
        pieces = []
        while len(word) > 1 and measure(word) > room:
            k = len(word) - 1
            while k > 1 and measure(word[:k]) > room:
                k -= 1
            pieces.append(word[:k])
            word = word[k:]
        pieces.append(word)
        if lines and measure(f"{lines[-1]} {pieces[0]}") <= room:
            lines[-1] = f"{lines[-1]} {pieces[0]}"
            pieces = pieces[1:]
        lines += pieces
    return lines or [""]


def _label(img: np.ndarray, text: str, x: int, top: int, bottom: int, color, thick: int) -> None:
    h, w = img.shape[:2]
    scale, lines, (x0, y0, x1, y1) = label_layout(text, w, h, x, top, bottom, thick)
    cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
    for s, tx, ty in lines:
        cv2.putText(img, s, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)


def save_image(image: np.ndarray, path: str | os.PathLike[str], quality: int = 92) -> str:
    """Write an RGB array (format from the extension), creating folders as needed."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(image).save(path, quality=quality) if path.lower().endswith((".jpg", ".jpeg")) else Image.fromarray(image).save(path)
    return path


__all__ = ["BOX_COLOR", "COLORS", "default_label", "draw_faces", "label_layout", "landmark_colors", "save_image"]
