"""``simple15``: the 15-point eyes/nose/mouth view of any 68-point model."""

from __future__ import annotations

import numpy as np

from ..types import Face, Landmarks
from .base import LANDMARKERS, Landmarker
from .points import simple_view


@LANDMARKERS.register("simple15", help="15 points (eyes, nose, mouth) from a 68-point model (base=dlib68)")
class Simple15(Landmarker):
    """Runs a 68-point model (``base``) and keeps the 15-point view (:func:`facelab.landmarks.points.simple_view`)."""

    scheme = "15"
    num_points = 15

    def __init__(self, base: str = "dlib68"):
        super().__init__()
        self.base = base
        self.name = "simple15" if base == "dlib68" else f"simple15:{base}"

    def load(self) -> None:
        self._base = LANDMARKERS.get(self.base)
        self._base.prepare()
        if self._base.scheme != "68":
            raise ValueError(f"simple15 needs a 68-point base model, {self.base!r} gives scheme {self._base.scheme!r}")

    def predict(self, image: np.ndarray, faces: list[Face]) -> list[Landmarks]:
        self.prepare()
        return [simple_view(lm) for lm in self._base.predict(image, faces)]
