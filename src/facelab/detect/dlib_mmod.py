"""dlib's MMOD CNN face detector (more pose-tolerant than HOG, slower).

``backend="onnx"`` (default) runs the installed network converted to ONNX
(identical boxes, ~15x faster than dlib-bin on CPU); ``backend="dlib"`` calls dlib.
"""

from __future__ import annotations

import threading

import numpy as np

from ..models import model_path
from .base import DETECTORS, Detector
from .scale import PyramidScan


@DETECTORS.register("cnn", help="dlib MMOD CNN (more poses than HOG; run by onnxruntime)")
class MmodDetector(PyramidScan, Detector):
    name = "cnn"

    def __init__(self, *, upsample: int | None = None, backend: str = "onnx", threads: int | None = None, **kw):
        super().__init__(**kw)
        if backend not in ("onnx", "dlib"):
            raise ValueError(f"backend must be 'onnx' or 'dlib', not {backend!r}")
        self.upsample = upsample
        self.backend = backend
        self.threads = threads
        self._lock = threading.Lock()  # dlib DNN objects are not safe to share between threads

    def load(self) -> None:
        path = model_path("dlib_mmod")
        if self.backend == "onnx":
            from .._dlibdnn import converted_onnx_path, create_session

            self._sess = create_session(converted_onnx_path(path), self.threads)
        else:
            import dlib

            self._net = dlib.cnn_face_detection_model_v1(str(path))

    def raw(self, image: np.ndarray, upsample: int, threshold: float = 0.0) -> list[tuple[int, int, int, int, float]]:
        """dlib's own output: ``(left, top, right, bottom, confidence)`` for ``upsample`` pyramid-ups.

        ``threshold`` is dlib's ``adjust_threshold`` (its Python API always uses 0).
        """
        self.prepare()
        if self.backend == "onnx":
            from .._dlibdnn import mmod_detect

            return mmod_detect(self._sess, image, upsample, adjust_threshold=threshold)
        with self._lock:
            dets = self._net(image, upsample)
        return [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), float(d.confidence)) for d in dets if d.confidence >= threshold]
