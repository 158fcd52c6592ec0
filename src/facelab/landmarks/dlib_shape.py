"""dlib's shape predictors (ensemble of regression trees): 5 and 68 points."""

from __future__ import annotations

import numpy as np

from ..detect.base import dlib_box
from ..detect.orient import UPRIGHT_TOLERANCE
from ..detect.rotate import apply_affine, invert_affine, upright_crop
from ..models import model_path
from ..types import Face, Landmarks
from .base import LANDMARKERS, Landmarker


class DlibShapePredictor(Landmarker):
    model_key = ""

    def load(self) -> None:
        import dlib

        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(model_path(self.model_key)))

    def shape(self, image: np.ndarray, face: Face):
        """dlib's ``full_object_detection`` for an upright face (used by dlib alignment)."""
        self.prepare()
        b = dlib_box(face)  # the box shape the predictor was trained on
        rect = self._dlib.rectangle(int(round(b.left)), int(round(b.top)), int(round(b.right)), int(round(b.bottom)))
        return self._sp(image, rect)

    def _predict(self, image: np.ndarray, face: Face) -> Landmarks:
        if abs(face.rotation) < UPRIGHT_TOLERANCE:  # the model copes with a small roll
            shape = self.shape(image, face)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        else:
            crop, m, box = upright_crop(image, face, margin=0.5)
            upright = Face(box, face.score, face.detector)
            shape = self.shape(crop, upright)
            pts = apply_affine(invert_affine(m), np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64))
        return Landmarks(pts, self.name, self.scheme)


@LANDMARKERS.register("dlib5", help="dlib 5 points: eye corners and nose (fast; used for alignment)")
class Dlib5(DlibShapePredictor):
    name = "dlib5"
    scheme = "5"
    num_points = 5
    model_key = "dlib_sp5"


@LANDMARKERS.register("dlib68", help="dlib 68 points (iBUG 300-W layout)")
class Dlib68(DlibShapePredictor):
    name = "dlib68"
    scheme = "68"
    num_points = 68
    model_key = "dlib_sp68"
