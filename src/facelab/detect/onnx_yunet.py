"""Bring-your-own ONNX face detector (YuNet layout) run by OpenCV's ``FaceDetectorYN``.

Pass the file path as the detector name (``detect(img, detector="face_detection_yunet_2023mar.onnx")``).
YuNet returns a box, five keypoints (eyes, nose tip, mouth corners) and a score per face.
facelab does not ship or download YuNet: the user brings the file.
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from ..errors import ModelError, ModelNotFoundError
from ..types import Box, Face, Landmarks
from .base import DETECTORS, Detector


@DETECTORS.register("yunet", help="your own YuNet-style ONNX detector (detector='path/to/model.onnx')")
class YuNetDetector(Detector):
    name = "yunet"
    native_min_face = 10

    def __init__(self, *, path: str = "", score_threshold: float = 0.6, nms_threshold: float = 0.3, top_k: int = 5000, **kw):
        super().__init__(**kw)
        self.path = path
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self._lock = threading.Lock()

    def load(self) -> None:
        if not self.path:
            raise ModelNotFoundError("the yunet detector needs a model file: pass detector='path/to/face_detection_yunet.onnx'")
        if not os.path.isfile(self.path):
            raise ModelNotFoundError(f"ONNX detector file not found: {self.path}")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelNotFoundError("this OpenCV build has no FaceDetectorYN (needs opencv-python-headless >= 4.5.4)")
        try:
            self._det = cv2.FaceDetectorYN.create(self.path, "", (320, 320), self.score_threshold, self.nms_threshold, self.top_k)
        except cv2.error as e:
            raise ModelError(f"{self.path} is not a YuNet-style ONNX detector OpenCV can load ({str(e).strip().splitlines()[-1]})") from None

    def _detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        s = min(1.0, (self.max_scan_pixels / (h * w)) ** 0.5)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if s < 1.0:
            bgr = cv2.resize(bgr, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        with self._lock:
            self._det.setInputSize((bgr.shape[1], bgr.shape[0]))
            try:
                _, rows = self._det.detect(bgr)
            except cv2.error as e:
                raise ModelError(f"{self.path}: the model's outputs are not YuNet's ({str(e).strip().splitlines()[-1]})") from None
        out = []
        for r in [] if rows is None else rows:
            x, y, bw, bh = (float(v) / s for v in r[:4])
            kps = (np.asarray(r[4:14], dtype=np.float32).reshape(5, 2)) / s
            # YuNet order is the "kp5" scheme: image-left eye, image-right eye, nose tip, mouth corners
            out.append(Face(Box(x, y, x + bw, y + bh), float(r[14]), self.name, keypoints=Landmarks(kps, "yunet", "kp5")))
        return out


def resolve_onnx_path(spec: str):
    if spec.lower().endswith(".onnx"):
        return "yunet", {"path": spec}
    return None


DETECTORS.add_resolver(resolve_onnx_path)
