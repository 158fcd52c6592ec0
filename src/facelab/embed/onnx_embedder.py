"""Bring-your-own ONNX embedder (ArcFace / SFace style), run by onnxruntime.

Pass the file path as the embedder name: ``embed(img, faces, model="w600k_r50.onnx")``.
Faces are aligned to the 5-point ArcFace template at the model's input size
(112x112 usually); the output is L2-normalised and compared by cosine distance.
facelab does not ship or download such models: the user brings the file.

A file that carries a ``facelab_embedder`` entry in its ONNX metadata (a JSON
object, written by ``facelab train embedder``) says how to use it, and that
overrides the ArcFace defaults: ``align`` (``dlib`` | ``arcface``), ``chip_size``,
``padding``, ``mean`` / ``std`` (scalars or one per RGB channel), ``metric``
(``euclidean`` | ``cosine``) and ``threshold`` (the calibrated verification threshold).
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..errors import ModelError, ModelNotFoundError
from ..models import ort_session
from .base import EMBEDDERS, Embedder

PRESETS = {
    # (mean, std, rgb): ArcFace/insightface normalise to [-1, 1] in RGB; OpenCV's SFace takes raw 0-255 RGB.
    "arcface": (127.5, 127.5, True),
    "sface": (0.0, 1.0, True),
}


#: ONNX metadata key holding how to use an embedder (see the module docstring).
META_KEY = "facelab_embedder"
#: Metric of every loaded ONNX embedder, by embedding model name (``onnx:<file>``): read by ``facelab.embed.metric_of``.
KNOWN_METRICS: dict[str, str] = {}


def embedder_metadata(meta: dict[str, str], path: str) -> dict:
    """The ``facelab_embedder`` settings of an ONNX file's metadata map (``{}`` when absent)."""
    raw = meta.get(META_KEY)
    if not raw:
        return {}
    try:
        spec = json.loads(raw)
    except ValueError:
        raise ModelError(f"{path}: the {META_KEY} metadata entry is not JSON") from None
    if not isinstance(spec, dict) or spec.get("align", "arcface") not in ("dlib", "arcface") or spec.get("metric", "cosine") not in ("euclidean", "cosine"):
        raise ModelError(f"{path}: the {META_KEY} metadata entry needs align dlib|arcface and metric euclidean|cosine")
    return spec


@EMBEDDERS.register("onnx", help="your own ONNX embedder (ArcFace/SFace style): pass its path")
class OnnxEmbedder(Embedder):
    metric = "cosine"
    align_method = "arcface"
    padding = 0.0

    def __init__(self, *, path: str = "", preset: str = "arcface", threshold: float = 0.5, threads: int = 0):
        super().__init__()
        if preset not in PRESETS:
            raise ValueError(f"unknown ONNX embedder preset {preset!r} (choose from {', '.join(PRESETS)})")
        self.path = path
        self.preset = preset
        self.mean, self.std, self.rgb = PRESETS[preset]
        self.threshold = threshold
        self.threads = threads
        self.name = f"onnx:{os.path.basename(path)}" if path else "onnx"

    def load(self) -> None:
        if not self.path:
            raise ModelNotFoundError("the onnx embedder needs a model file: pass model='path/to/arcface.onnx'")
        if not os.path.isfile(self.path):
            raise ModelNotFoundError(f"ONNX embedder file not found: {self.path}")
        self._sess = ort_session(self.path, self.threads, what="ONNX embedder")
        spec = embedder_metadata(self._sess.get_modelmeta().custom_metadata_map, self.path)
        if spec:
            self.align_method = spec.get("align", self.align_method)
            self.padding = float(spec.get("padding", 0.25 if self.align_method == "dlib" else 0.0))
            self.metric = spec.get("metric", self.metric)
            self.mean = np.asarray(spec.get("mean", self.mean), np.float32)
            self.std = np.asarray(spec.get("std", self.std), np.float32)
            self.rgb = bool(spec.get("rgb", True))
            if "threshold" in spec:
                self.threshold = float(spec["threshold"])
        KNOWN_METRICS[self.name] = self.metric
        inp = self._sess.get_inputs()[0]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelError(f"{self.path}: expected an image input of rank 4 (N,3,H,W or N,H,W,3), got {shape}")
        self._nchw = shape[1] == 3
        h, w = (shape[2], shape[3]) if self._nchw else (shape[1], shape[2])
        if not (isinstance(h, int) and isinstance(w, int)):
            h = w = 112
        if h != w:
            raise ModelError(f"{self.path}: expected a square input, got {h}x{w}")
        self.chip_size = int(h)
        self._input = inp.name
        out = self._sess.get_outputs()[0].shape
        self.dim = int(out[-1]) if isinstance(out[-1], int) else 0
        if not self._sess.get_inputs()[0].type.startswith("tensor(float"):
            raise ModelError(f"{self.path}: expected a float input tensor, got {inp.type}")
        self._fixed_batch = shape[0] if isinstance(shape[0], int) else None

    def chips(self, image, faces):
        self.prepare()  # chip_size comes from the model's input
        return super().chips(image, faces)

    def _forward(self, chips: list[np.ndarray]) -> np.ndarray:
        x = np.stack(chips).astype(np.float32)
        if not self.rgb:
            x = x[..., ::-1]
        x = (x - self.mean) / self.std
        if self._nchw:
            x = x.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x)
        if self._fixed_batch == 1 and len(x) > 1:
            outs = [self._sess.run(None, {self._input: x[i : i + 1]})[0] for i in range(len(x))]
            y = np.concatenate(outs)
        else:
            y = self._sess.run(None, {self._input: x})[0]
        y = y.reshape(len(x), -1)
        self.dim = y.shape[1]
        return y


def resolve_onnx_path(spec: str):
    if spec.lower().endswith(".onnx"):
        return "onnx", {"path": spec}
    return None


EMBEDDERS.add_resolver(resolve_onnx_path)
