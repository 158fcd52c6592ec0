"""The detector interface: every backend turns an RGB image into upright faces."""

from __future__ import annotations

import math

import numpy as np

from ..registry import LazyModel, Registry
from ..types import Box, Face

DETECTORS: Registry[Detector] = Registry("detector")


def dlib_box(face: Face) -> Box:
    """``face.box`` as dlib's HOG detector would have drawn it (see :attr:`Detector.dlib_box`)."""
    cls = DETECTORS.factory(face.detector)
    return cls.to_dlib_box(face.box) if isinstance(cls, type) and issubclass(cls, Detector) else face.box


class Detector(LazyModel):
    """A face detector.  Subclasses implement :meth:`load` and :meth:`_detect`.

    ``min_face`` is the smallest face (pixels, in the input image) the caller
    wants found; backends choose their scan scale from it.  ``max_scan_pixels``
    caps the size of the image actually scanned, so huge photos stay fast.
    """

    name = "detector"
    #: side (px) of the smallest face the backend finds at scale 1
    native_min_face = 80
    #: How this detector's boxes differ from dlib HOG's, the boxes dlib's shape predictors (and so the
    #: alignment of dlib's embedder) were trained on: ``(dx, dy, sw, sh)`` moves the centre by
    #: ``(dx * width, dy * height)`` and scales the size by ``(sw, sh)``.  None: already HOG-like.
    dlib_box: tuple[float, float, float, float] | None = None

    def __init__(self, *, min_face: int = 40, max_scan_pixels: int = 4_000_000, threshold: float | None = None):
        super().__init__()
        self.min_face = int(min_face)
        self.max_scan_pixels = int(max_scan_pixels)
        self.threshold = threshold

    @classmethod
    def to_dlib_box(cls, box: Box) -> Box:
        if cls.dlib_box is None:
            return box
        dx, dy, sw, sh = cls.dlib_box
        cx, cy = box.center
        return Box.from_center(cx + dx * box.width, cy + dy * box.height, box.width * sw, box.height * sh)

    def scan_scale(self, height: int, width: int) -> float:
        """The factor the image is resized by before scanning."""
        s = self.native_min_face / max(1, self.min_face)
        s = min(s, math.sqrt(self.max_scan_pixels / max(1, height * width)))
        return s

    def detect(self, image: np.ndarray) -> list[Face]:
        """Upright faces in ``image`` (RGB uint8), largest first."""
        self.prepare()
        faces = self._detect(image)
        faces.sort(key=lambda f: -f.box.area)
        return faces

    def _detect(self, image: np.ndarray) -> list[Face]:  # pragma: no cover - overridden
        raise NotImplementedError
