"""Short test videos made from still photos: people appear, move across a background and leave.

Used by the stream tests and ``benchmarks/stream_fps.py``:

>>> obama = Actor(head_crop(load_image("obama.jpg")), start=10, end=45, x0=40, x1=420, y=80)
>>> frames = list(scene([obama], n_frames=60, size=(640, 360)))
>>> write_video("walk.mp4", frames, fps=15)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..detect import detect
from ..errors import NoFaceError


@dataclass
class Actor:
    """A photo (``sprite``, RGB) on screen from frame ``start`` to ``end`` (excluded), moving from x0 to x1 at height y."""

    sprite: np.ndarray
    start: int
    end: int
    x0: int
    x1: int
    y: int

    def position(self, frame: int) -> tuple[int, int] | None:
        if not self.start <= frame < self.end:
            return None
        a = (frame - self.start) / max(1, self.end - 1 - self.start)
        return int(round(self.x0 + a * (self.x1 - self.x0))), self.y


def head_crop(image: np.ndarray, size: int = 160, margin: float = 0.6) -> np.ndarray:
    """A square crop around the largest face of a photo (the face plus ``margin`` of its size on each side), resized to ``size``."""
    faces = detect(image, min_face=40)
    if not faces:
        raise NoFaceError("no face to crop")
    b = faces[0].box
    side = max(b.width, b.height) * (1 + 2 * margin)
    cx, cy = b.center
    h, w = image.shape[:2]
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = Image.fromarray(image[top:bottom, left:right]).resize((size, size), Image.BILINEAR)
    return np.asarray(crop)


def background(size: tuple[int, int] = (640, 360), seed: int = 0) -> np.ndarray:
    """A plain grey-blue backdrop with a little noise (``size`` is width, height)."""
    w, h = size
    rng = np.random.default_rng(seed)
    grad = np.linspace(90, 150, h, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(grad, (h, w, 1)) * np.array([0.9, 1.0, 1.1], np.float32)
    img = img + rng.normal(0, 4, (h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def scene(actors: Sequence[Actor], n_frames: int, size: tuple[int, int] = (640, 360), seed: int = 0) -> Iterator[np.ndarray]:
    """The frames (RGB) of actors pasted on a background at their positions."""
    bg = background(size, seed)
    h, w = bg.shape[:2]
    for i in range(n_frames):
        frame = bg.copy()
        for a in actors:
            pos = a.position(i)
            if pos is None:
                continue
            x, y = pos
            sh, sw = a.sprite.shape[:2]
            x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + sw), min(h, y + sh)
            if x1 > x0 and y1 > y0:
                frame[y0:y1, x0:x1] = a.sprite[y0 - y : y1 - y, x0 - x : x1 - x]
        yield frame


__all__ = ["Actor", "background", "head_crop", "scene"]
