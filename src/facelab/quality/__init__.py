"""Face quality: how useful a face is for recognition.

>>> q = assess(image, face)          # Quality(score, sharpness, exposure, size, pose, yaw, pitch, roll, learned)
>>> faces = quality("photo.jpg")      # detect, then face.quality on every face

Parts (:mod:`.parts`): sharpness, exposure, size and pose, each in [0, 1].  The learned score
(``facelab_quality``, ``assets/quality_mlp.onnx``, trained by :mod:`.train` on LFW people outside the
View 1 test pairs) predicts how far a face's dlib embedding lies from its person's other photos, from
the parts and the embedding itself, and maps it to [0, 1].  It is trained on research-use data, so under
``FACELAB_LICENCE=commercial`` it is unavailable and ``score`` is the product of the parts.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..errors import LicenceError, ModelError
from ..io import as_image
from ..models import ModelFile, licence_policy, model_path, ort_session, register_model_file
from ..registry import LazyModel
from ..types import Face, Quality
from .parts import (
    exposure_parts,
    exposure_score,
    grey_chip,
    head_pose,
    laplacian_variance,
    pose_score,
    sharpness_score,
    size_score,
)

QUALITY_MODEL = "facelab_quality"
QUALITY_FILE = "assets/quality_mlp.onnx"
QUALITY_SHA256 = "710d1f082b49e21b44d8d50a883013a4951bae5f90236242df74f40b5b6a70b9"
#: the embedder the learned score reads (its input includes the face's embedding)
QUALITY_EMBEDDER = "dlib"

register_model_file(
    ModelFile(
        QUALITY_MODEL, "facelab", QUALITY_FILE, QUALITY_SHA256,
        "reinstall facelab (the file ships in facelab/assets/; retrain with `python -m facelab.quality.train`)",
        "MIT (weights trained by facelab on LFW, research use: see assets/quality_mlp.md)",
    )
)

#: names of the hand-made features, in the order the learned model reads them (after the embedding)
FEATURES: tuple[str, ...] = ("log_sharpness", "brightness", "clipped", "contrast", "log_size", "abs_yaw", "abs_pitch", "abs_roll", "detector_score", "has_pose")
#: length of the embedding that comes before the hand-made features in a feature row
EMBEDDING_DIM = 128


def feature_columns(names, embedding: bool = False) -> list[int]:
    """Columns of a :func:`feature_vector` row holding the hand-made features ``names`` (after the embedding's when ``embedding``)."""
    return ([*range(EMBEDDING_DIM)] if embedding else []) + [EMBEDDING_DIM + FEATURES.index(n) for n in names]


def measure(image: np.ndarray, face: Face) -> dict[str, float]:
    """The raw measurements behind the parts."""
    chip = grey_chip(image, face)
    lv = laplacian_variance(chip)
    mean, clipped, contrast = exposure_parts(chip)
    pose = head_pose(face)
    side = max(1.0, min(face.box.width, face.box.height))
    m = {
        "lapvar": lv, "brightness": mean, "clipped": clipped, "contrast": contrast, "side": side,
        "yaw": pose[0] if pose else None, "pitch": pose[1] if pose else None, "roll": pose[2] if pose else None,
    }
    return m


def feature_vector(face: Face, m: dict[str, float]) -> np.ndarray:
    """The learned model's hand-made features (FEATURES order) from :func:`measure`'s output.

    Without pose points (a detector without keypoints, e.g. HOG) the pose features are 0 and the
    detector score is read as 1: the model was trained on both forms of every row.
    """
    has = m["yaw"] is not None
    return np.array(
        [
            math.log1p(m["lapvar"]), m["brightness"], m["clipped"], m["contrast"], math.log(m["side"]),
            abs(m["yaw"]) / 90.0 if has else 0.0, abs(m["pitch"]) / 90.0 if has else 0.0, abs(m["roll"]) / 90.0 if has else 0.0,
            float(face.score) if has else 1.0, 1.0 if has else 0.0,  # scores of other detectors are on other scales
        ],
        np.float32,
    )


class QualityModel(LazyModel):
    """The learned quality score (ONNX MLP): features + embedding -> predicted distance to the person's other photos."""

    name = QUALITY_MODEL

    def __init__(self, path: str | None = None, threads: int | None = 1):
        super().__init__()
        self.path, self.threads = path, threads

    def load(self) -> None:
        path = self.path or model_path(QUALITY_MODEL)
        self._sess = ort_session(path, self.threads, what="quality model")
        meta = self._sess.get_modelmeta().custom_metadata_map
        self.d_good, self.d_bad = float(meta.get("d_good", 0.3)), float(meta.get("d_bad", 0.7))
        self.embedder = meta.get("embedder", QUALITY_EMBEDDER)  # "" : the model reads no embedding
        self.features = tuple(json.loads(meta.get("features", json.dumps(FEATURES))))
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ModelError(f"quality model {path} reads features this facelab does not measure: {', '.join(sorted(unknown))}")
        self._cols = feature_columns(self.features, embedding=bool(self.embedder))
        # the hand-made features' range in training: an MLP extrapolates wildly outside it, so inputs are clipped into it
        lo, hi = meta.get("feature_min"), meta.get("feature_max")
        self.feature_min = np.asarray(json.loads(lo), np.float32) if lo else None
        self.feature_max = np.asarray(json.loads(hi), np.float32) if hi else None

    def predict_distance(self, x: np.ndarray) -> np.ndarray:
        """Predicted distances of full rows ``[embedding (128), FEATURES]`` (the model picks the columns it reads)."""
        self.prepare()
        x = np.asarray(x, np.float32).reshape(len(x), -1)[:, self._cols]
        if self.feature_min is not None and self.feature_max is not None:
            n = len(self.feature_min)
            x[:, -n:] = np.clip(x[:, -n:], self.feature_min, self.feature_max)
        return self._sess.run(None, {"features": x})[0].reshape(-1)

    def score(self, distance: np.ndarray) -> np.ndarray:
        """Predicted distance -> quality in [0, 1] (1 at the good end of training targets, 0 at the bad end)."""
        return np.clip((self.d_bad - np.asarray(distance)) / (self.d_bad - self.d_good), 0.0, 1.0)


_model: QualityModel | None = None


def get_quality_model() -> QualityModel:
    global _model
    if _model is None:
        _model = QualityModel()
    return _model.prepare()


def learned_allowed() -> bool:
    return licence_policy() != "commercial"


def assess_faces(image: Any, faces: list[Face], *, learned: bool | None = None) -> list[Face]:
    """Set ``face.quality`` on every face; returns the faces.

    ``learned``: run the learned score (True), skip it (False), or None: run it unless the
    licence policy is ``commercial`` (it is trained on research-use data).  The learned score needs
    the face's dlib embedding: ``face.embedding`` when it is one, else it is computed.
    """
    img = as_image(image)
    use = learned_allowed() if learned is None else bool(learned)
    if use and not learned_allowed():
        from ..models import check_licence

        check_licence(QUALITY_MODEL, "facelab's learned quality score")
    ms = [measure(img, f) for f in faces]
    learned_scores: list[float | None] = [None] * len(faces)
    if use and faces:
        qm = get_quality_model()
        embs = _embeddings(img, faces, qm.embedder) if qm.embedder else [np.zeros(EMBEDDING_DIM, np.float32)] * len(faces)
        x = np.stack([np.concatenate([e, feature_vector(f, m)]) for f, m, e in zip(faces, ms, embs)])
        learned_scores = [float(v) for v in qm.score(qm.predict_distance(x))]
    for f, m, ls in zip(faces, ms, learned_scores):
        f.quality = to_quality(f, m, ls)
    return faces


def to_quality(face: Face, m: dict[str, float], learned: float | None) -> Quality:
    sh, ex, sz = sharpness_score(m["lapvar"]), exposure_score(m["brightness"], m["clipped"], m["contrast"]), size_score(face)
    ps = pose_score(m["yaw"], m["pitch"]) if m["yaw"] is not None else None
    combined = sh * ex * sz * (ps if ps is not None else 1.0)
    return Quality(
        learned if learned is not None else combined, sh, ex, sz, ps, m["yaw"], m["pitch"], m["roll"], learned,
        QUALITY_MODEL if learned is not None else None,
    )


def _embeddings(image: np.ndarray, faces: list[Face], embedder: str) -> list[np.ndarray]:
    """Each face's embedding of ``embedder`` (flip-averaged, as the model was trained), computed when missing."""
    from ..embed import embed, get_embedder

    want = get_embedder(embedder).name
    missing = [f for f in faces if f.embedding is None or f.embedding.model != want]
    if missing:
        copies = [Face(f.box, f.score, f.detector, f.rotation, landmarks=f.landmarks, keypoints=f.keypoints) for f in missing]
        embed(image, copies, embedder, flip=True)
        got = {id(f): c.embedding.vector for f, c in zip(missing, copies)}
    else:
        got = {}
    return [got[id(f)] if id(f) in got else f.embedding.vector for f in faces]


def assess(image: Any, face: Face, *, learned: bool | None = None) -> Quality:
    """The quality of one face (also set on ``face.quality``)."""
    return assess_faces(image, [face], learned=learned)[0].quality


def quality(image: Any, *, learned: bool | None = None, **detect_options: Any) -> list[Face]:
    """Detect the faces of an image and set ``face.quality`` on each."""
    from ..detect import detect

    img = as_image(image)
    return assess_faces(img, detect(img, **detect_options), learned=learned)


def best_face(image: Any, faces: list[Face], *, learned: bool | None = None) -> Face:
    """The face with the highest quality score."""
    if not faces:
        raise ValueError("no faces to choose from")
    todo = [f for f in faces if f.quality is None]
    if todo:
        assess_faces(image, todo, learned=learned)
    return max(faces, key=lambda f: f.quality.score)


__all__ = [
    "FEATURES",
    "QUALITY_MODEL",
    "LicenceError",
    "QualityModel",
    "assess",
    "assess_faces",
    "best_face",
    "feature_vector",
    "get_quality_model",
    "learned_allowed",
    "measure",
    "quality",
    "to_quality",
]
