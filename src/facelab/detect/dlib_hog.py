"""dlib's HOG + linear SVM frontal face detector (fast, CPU, frontal faces >= ~80 px at scale 1)."""

from __future__ import annotations

import threading

import numpy as np

from .base import DETECTORS, Detector
from .scale import PyramidScan


@DETECTORS.register("hog", help="dlib HOG + SVM (fast on CPU, frontal faces >= 80 px; verification and compat use it)")
class HogDetector(PyramidScan, Detector):
    name = "hog"

    def __init__(self, *, upsample: int | None = None, **kw):
        """``upsample`` fixes dlib's own pyramid-up count (as face_recognition does); None chooses by ``min_face``."""
        super().__init__(**kw)
        self.upsample = upsample
        self._lock = threading.Lock()  # dlib's object_detector is not safe to call from two threads at once (it releases the GIL)

    def load(self) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()

    def raw(self, image: np.ndarray, upsample: int, threshold: float = 0.0) -> list[tuple[int, int, int, int, float]]:
        """dlib's own output, in dlib's order: ``(left, top, right, bottom, score)`` for ``upsample`` pyramid-ups."""
        self.prepare()
        with self._lock:
            rects, scores, _ = self._det.run(image, int(upsample), float(threshold))
        return [(r.left(), r.top(), r.right(), r.bottom(), float(s)) for r, s in zip(rects, scores)]
