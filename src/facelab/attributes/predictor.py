"""Run an attribute model on whole images: a face crop (``faces="given"``) or the largest detected face."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import NoFaceError
from ..types import Attribute, Box, Face
from .base import AttributeModel
from .data import finish_chip


def crop_face(image: np.ndarray, padding: float = 0.144, shift_x: float = 0.064, shift_y: float = 0.064, detector: str = "hog") -> Face:
    """The face of a face crop: the detector's (no upsampling), else the box the crop's framing implies.

    The default framing is UTKFace's, measured with
    :func:`facelab.attributes.data.measure_framing` (see docs/attributes.md).
    """
    from ..detect import detect

    h, w = image.shape[:2]
    faces = detect(image, detector, max_faces=1, rotate=False, min_face=max(20, min(h, w) // 3))
    if faces:
        return faces[0]
    side = min(h, w) / (1 + 2 * padding)
    return Face(Box.from_center(w / 2 - shift_x * side, h / 2 - shift_y * side, side, side), 0.0, "given")


@dataclass
class Predictor:
    """Runs one model on whole images: ``faces="given"`` (images are face crops) or ``"detect"`` (largest face)."""

    model: AttributeModel
    faces: str = "detect"
    detector: str = "hog"

    def __call__(self, image: np.ndarray, tasks: Sequence[str]) -> tuple[dict[str, Attribute], float]:
        """The attributes of the image's face and the seconds the model took (face detection excluded)."""
        from .onnx_model import OnnxAttributeModel, chips_to_input, outputs_to_attributes

        m = self.model
        m.prepare()
        want = [t for t in tasks if t in m.tasks]
        if self.faces == "given":
            if isinstance(m, OnnxAttributeModel) and m.input == "chip":
                t0 = time.perf_counter()
                out = m.run(chips_to_input(finish_chip(image, m.spec)[None]))
                return outputs_to_attributes(out, m.classes, want, m.name)[0], time.perf_counter() - t0
            face = crop_face(image, detector=self.detector)
        else:
            from ..detect import detect

            found = detect(image, self.detector, max_faces=1)
            if not found:
                raise NoFaceError("no face found")
            face = found[0]
        t0 = time.perf_counter()
        res = m.predict(image, [face], want)[0]
        return res, time.perf_counter() - t0


__all__ = ["Predictor", "crop_face"]
