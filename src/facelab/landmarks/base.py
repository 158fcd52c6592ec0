"""The landmarker interface: points on a face, given the image and its detection."""

from __future__ import annotations

import numpy as np

from ..registry import LazyModel, Registry
from ..types import Face, Landmarks

LANDMARKERS: Registry[Landmarker] = Registry("landmark model")


class Landmarker(LazyModel):
    name = "landmarker"
    scheme = ""
    num_points = 0

    def predict(self, image: np.ndarray, faces: list[Face]) -> list[Landmarks]:
        self.prepare()
        return [self._predict(image, f) for f in faces]

    def _predict(self, image: np.ndarray, face: Face) -> Landmarks:  # pragma: no cover - overridden
        raise NotImplementedError
