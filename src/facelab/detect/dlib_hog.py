"""dlib's HOG + linear SVM frontal face detector (fast, CPU, frontal faces >= ~80 px at scale 1)."""

from __future__ import annotations

import threading

import numpy as np

from ..types import Box, Face
from .base import DETECTORS, Detector
from .scale import resized


@DETECTORS.register("hog", help="dlib HOG + SVM (default; fast on CPU, frontal faces)")
class HogDetector(Detector):
    name = "hog"

    def __init__(self, *, upsample: int | None = None, **kw):
        """``upsample`` fixes dlib's own pyramid-up count (as face_recognition does); None chooses by ``min_face``."""
        super().__init__(**kw)
        self.upsample = upsample
        self._lock = threading.Lock()  # dlib's object_detector is not safe to call from two threads at once (it releases the GIL)

    def load(self) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()

    def _detect(self, image: np.ndarray) -> list[Face]:
        thr = 0.0 if self.threshold is None else float(self.threshold)
        if self.upsample is not None:
            scale, up, img = 1.0, int(self.upsample), image
        else:
            scale, up, img = resized(image, self.scan_scale(*image.shape[:2]))
        with self._lock:
            rects, scores, _ = self._det.run(img, up, thr)
        return [
            Face(Box(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale), float(s), self.name)
            for r, s in zip(rects, scores)
        ]
