"""OpenCV's Viola-Jones Haar cascade (frontal faces; fastest, least accurate)."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..errors import ModelNotFoundError
from ..models import model_path
from ..types import Box, Face
from .base import DETECTORS, Detector


@DETECTORS.register("haar", help="OpenCV Haar cascade (fast, least accurate)")
class HaarDetector(Detector):
    name = "haar"
    native_min_face = 24

    def __init__(self, *, scale_factor: float = 1.1, min_neighbors: int = 5, **kw):
        super().__init__(**kw)
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self._lock = threading.Lock()  # an OpenCV CascadeClassifier is not safe to share between threads

    def load(self) -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelNotFoundError("this OpenCV has no CascadeClassifier (OpenCV 5 removed it): pip install 'opencv-python-headless<5'")
        path = model_path("haar_frontalface")
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelNotFoundError(f"OpenCV could not load the Haar cascade {path}")

    def _detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        s = min(1.0, (self.max_scan_pixels / (h * w)) ** 0.5)  # never upsample; shrink huge photos
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if s < 1.0:
            gray = cv2.resize(gray, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(self.native_min_face, int(self.min_face * s))
        with self._lock:
            rects, _, weights = self._cascade.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side), outputRejectLevels=True
            )
        thr = -np.inf if self.threshold is None else float(self.threshold)
        out = []
        for (x, y, bw, bh), wt in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).ravel()):
            if wt < thr:
                continue
            out.append(Face(Box(float(x / s), float(y / s), float((x + bw) / s), float((y + bh) / s)), float(wt), self.name))
        return out
