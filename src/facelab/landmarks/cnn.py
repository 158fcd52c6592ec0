"""A small CNN for 68 landmarks (or any point set), trained by facelab (``facelab train landmarks``), run with onnxruntime.

The network sees a square grey crop around the detector's box (turned upright
for faces found by the rotation sweep) and returns 68 points in that crop
(heatmaps + soft-argmax).  How the crop is made is stored in the ONNX file's
metadata (``input_size``, ``crop_scale``, ``y_shift``), so a model trained with
other settings runs the same way (``num_points`` says how many points it gives:
68, or e.g. 15 for a model trained on a 15-point CSV):

* centre: the box centre moved down by ``y_shift`` x the box side;
* side: ``crop_scale`` x the box side; resized to ``input_size`` pixels.

Backends: ``cnn68`` (the model shipped in ``facelab/assets``, see its model
card ``landmarks68.md``) and any ``.onnx`` file from ``facelab train landmarks``
given as the model name.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..detect.base import dlib_box
from ..errors import ModelError, ModelNotFoundError
from ..models import ModelFile, register_model_file
from ..types import Face, Landmarks
from .base import LANDMARKERS, Landmarker
from .points import FLIP_68


@dataclass(frozen=True)
class CropSpec:
    """How a face box becomes the network's input."""

    input_size: int = 64
    crop_scale: float = 1.5
    y_shift: float = 0.08

    def matrix(self, face: Face) -> np.ndarray:
        """2x3 affine from image pixels to the crop (upright for faces found by the rotation sweep)."""
        b = dlib_box(face)  # the networks are trained on HOG's boxes: other detectors' boxes are mapped there
        side = max(b.width, b.height)
        # shifts are along the face's own axes (the face may be rotated in the image): the box adapter's, then y_shift
        dx, dy = b.center[0] - face.box.center[0], b.center[1] - face.box.center[1] + self.y_shift * side
        t = math.radians(face.rotation)
        cx, cy = face.box.center
        cx, cy = cx + dx * math.cos(t) - dy * math.sin(t), cy + dx * math.sin(t) + dy * math.cos(t)
        m = cv2.getRotationMatrix2D((cx, cy), face.rotation, self.input_size / max(1.0, side * self.crop_scale))
        m[0, 2] += self.input_size / 2.0 - cx
        m[1, 2] += self.input_size / 2.0 - cy
        return m

    def crop(self, gray: np.ndarray, m: np.ndarray) -> np.ndarray:
        n = self.input_size
        interp = cv2.INTER_AREA if abs(m[0, 0]) + abs(m[0, 1]) < 0.8 else cv2.INTER_LINEAR
        return cv2.warpAffine(gray, m, (n, n), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def read_spec(meta: dict[str, str]) -> CropSpec:
    try:
        return CropSpec(int(meta.get("input_size", 64)), float(meta.get("crop_scale", 1.5)), float(meta.get("y_shift", 0.08)))
    except ValueError as e:
        raise ModelError(f"bad crop metadata in the landmark model: {e}") from None


class OnnxLandmarker(Landmarker):
    """68 points (or the ``num_points`` of its metadata) from a facelab-trained ONNX landmark model."""

    scheme = "68"
    num_points = 68

    def __init__(self, path: str | os.PathLike[str] | None = None, *, threads: int | None = None, name: str = "cnn68", flip: bool = True):
        super().__init__()
        self.path = path
        self.name = name
        self.threads = threads
        self.flip = flip  # also run the mirrored crop and average (test-time flip: lower error, twice the network time)
        self._lock = threading.Lock()

    def model_file(self) -> Path:
        if self.path is not None:
            p = Path(self.path)
            if not p.is_file():
                raise ModelNotFoundError(f"landmark model file not found: {p} (train one with `facelab train landmarks`)")
            return p
        from ..models import model_path

        return model_path("facelab_landmarks68")

    def load(self) -> None:
        from ..models import ort_session

        path = self.model_file()
        self._sess = ort_session(path, self.threads, default_threads=1, what="landmark model")
        meta = self._sess.get_modelmeta().custom_metadata_map
        if meta.get("facelab") not in ("landmarks68", "landmarks"):
            raise ModelError(f"{path} is not a facelab landmark model (no 'facelab=landmarks68' metadata); train one with `facelab train landmarks`")
        self.spec = read_spec(meta)
        try:
            self.num_points = int(meta.get("num_points", 68))
        except ValueError:
            raise ModelError(f"{path}: bad num_points in its metadata ({meta.get('num_points')!r})") from None
        self.scheme = "68" if self.num_points == 68 else str(self.num_points)
        self._input = self._sess.get_inputs()[0].name

    def crops(self, image: np.ndarray, faces: list[Face]) -> tuple[np.ndarray, list[np.ndarray]]:
        gray = to_gray(image)
        mats = [self.spec.matrix(f) for f in faces]
        return np.stack([self.spec.crop(gray, m) for m in mats]).astype(np.float32)[:, None], mats

    def predict(self, image: np.ndarray, faces: list[Face]) -> list[Landmarks]:
        self.prepare()
        if not faces:
            return []
        x, mats = self.crops(image, faces)
        n = len(faces)
        flip = self.flip and self.num_points == 68  # the mirror's point order is known for the 68-point layout only
        if flip:
            x = np.concatenate([x, x[..., ::-1]])
        with self._lock:  # one session, many threads: onnxruntime is thread-safe, but keep the pool size bounded
            out = self._sess.run(None, {self._input: np.ascontiguousarray(x)})[0].reshape(-1, self.num_points, 2)
        if flip:
            mirrored = out[n:][:, FLIP_68].copy()
            # pixel j of the mirror is pixel S-1-j: in the network's [0, 1] units x -> (S-1)/S - x
            mirrored[..., 0] = (self.spec.input_size - 1) / self.spec.input_size - mirrored[..., 0]
            out = (out[:n] + mirrored) / 2.0
        res = []
        for pts, m in zip(out, mats):
            inv = cv2.invertAffineTransform(m)
            p = pts.astype(np.float64) * self.spec.input_size
            res.append(Landmarks((p @ inv[:, :2].T + inv[:, 2]).astype(np.float32), self.name, self.scheme))
        return res

    def _predict(self, image: np.ndarray, face: Face) -> Landmarks:
        return self.predict(image, [face])[0]


register_model_file(
    ModelFile(
        "facelab_landmarks68",
        "facelab",
        "assets/landmarks68.onnx",
        "46d172bb4070682ef167feebfa630e7622bb833e60a06570508304175eedc526",
        "reinstall facelab (the file ships in facelab/assets), or train your own with `facelab train landmarks` and pass the .onnx",
        "MIT (weights trained by facelab on keypoints68, research-use data: see assets/landmarks68.md)",
    )
)


@LANDMARKERS.register("cnn68", help="facelab's small CNN, 68 points (ONNX, see assets/landmarks68.md)")
def _cnn68(**options) -> OnnxLandmarker:
    return OnnxLandmarker(**options)


def _resolve(spec: str):
    if spec.lower().endswith(".onnx"):
        return "cnn68", {"path": spec, "name": Path(spec).name}
    return None


LANDMARKERS.add_resolver(_resolve)

__all__ = ["CropSpec", "OnnxLandmarker", "read_spec", "to_gray"]
