"""The typed results every stage of the pipeline exchanges.

All types are dataclasses with ``to_dict()`` (JSON-ready: plain lists, floats,
strings) and ``from_dict()``.  Coordinates are pixels in the original image,
``x`` to the right and ``y`` down, floats.

Conventions
-----------
* A :class:`Box` is ``left, top, right, bottom``.  For a face found by the
  rotation sweep the box is the face's *upright* box, centred on the face, and
  :attr:`Face.rotation` says how the image must be rotated to see it upright.
* "left"/"right" eye are as seen in the image (the eye on the image's left is
  ``left_eye``), the convention of ``face_recognition`` and of the iBUG-68
  annotation files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    @classmethod
    def from_center(cls, cx: float, cy: float, w: float, h: float) -> Box:
        return cls(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)

    def iou(self, other: Box) -> float:
        iw = min(self.right, other.right) - max(self.left, other.left)
        ih = min(self.bottom, other.bottom) - max(self.top, other.top)
        if iw <= 0 or ih <= 0:
            return 0.0
        inter = iw * ih
        return inter / (self.area + other.area - inter)

    def scaled(self, factor: float) -> Box:
        """The box grown (factor > 1) or shrunk around its centre."""
        cx, cy = self.center
        return Box.from_center(cx, cy, self.width * factor, self.height * factor)

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            min(max(self.left, 0.0), width),
            min(max(self.top, 0.0), height),
            min(max(self.right, 0.0), width),
            min(max(self.bottom, 0.0), height),
        )

    def corners(self, rotation: float = 0.0) -> np.ndarray:
        """The 4 corners (4x2), rotated by ``-rotation`` degrees about the centre.

        For a face with ``Face.rotation = a`` these are the corners of its box
        in the original image.
        """
        cx, cy = self.center
        pts = np.array(
            [[self.left, self.top], [self.right, self.top], [self.right, self.bottom], [self.left, self.bottom]],
            dtype=np.float64,
        )
        if rotation:
            t = math.radians(rotation)
            # rotating the image by +a (counter-clockwise on screen) made the face upright,
            # so the face itself is turned by -a: apply the inverse of that rotation.
            c, s = math.cos(t), math.sin(t)
            d = pts - (cx, cy)
            pts = np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], axis=1) + (cx, cy)
        return pts

    def to_dict(self) -> dict[str, float]:
        return {"left": _r(self.left), "top": _r(self.top), "right": _r(self.right), "bottom": _r(self.bottom)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Box:
        return cls(float(d["left"]), float(d["top"]), float(d["right"]), float(d["bottom"]))

    def to_trbl(self) -> tuple[int, int, int, int]:
        """``(top, right, bottom, left)`` ints, the face_recognition convention."""
        return (int(round(self.top)), int(round(self.right)), int(round(self.bottom)), int(round(self.left)))


_MESH_REGIONS: dict[str, list[int]] = {
    "jaw": [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58,
            132, 93, 234, 127, 162, 21, 54, 103, 67, 109],
    "left_eyebrow": [46, 53, 52, 65, 55, 70, 63, 105, 66, 107],
    "right_eyebrow": [276, 283, 282, 295, 285, 300, 293, 334, 296, 336],
    "left_eye": [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173],
    "right_eye": [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398],
    "nose": [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 294, 278, 344, 440, 275, 45, 220, 115, 48, 64],
    "nose_tip": [1],
    "mouth": [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409, 78, 95, 88, 178, 87, 14, 317, 402,
              318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415],
}

# Regions of each landmark scheme: name -> indices.  Left/right as seen in the image.
LANDMARK_REGIONS: dict[str, dict[str, list[int]]] = {
    "68": {
        "jaw": list(range(0, 17)),
        "left_eyebrow": list(range(17, 22)),
        "right_eyebrow": list(range(22, 27)),
        "nose_bridge": list(range(27, 31)),
        "nose_tip": list(range(31, 36)),
        "left_eye": list(range(36, 42)),
        "right_eye": list(range(42, 48)),
        "top_lip": list(range(48, 55)) + [64, 63, 62, 61, 60],
        "bottom_lip": list(range(54, 60)) + [48, 60, 67, 66, 65, 64],
        "mouth": list(range(48, 68)),
        "nose": list(range(27, 36)),
    },
    # five keypoints of YuNet/SCRFD/MTCNN/ArcFace alignment: eyes, nose tip, mouth corners
    "kp5": {
        "left_eye": [0],
        "right_eye": [1],
        "nose_tip": [2],
        "nose": [2],
        "mouth": [3, 4],
    },
    # the 15-point simple view of 68 landmarks (facelab.landmarks.points.simple_view)
    "15": {
        "left_eye": [0, 1, 2],
        "right_eye": [3, 4, 5],
        "nose": [6, 7, 8, 9, 10],
        "nose_tip": [7],
        "mouth": [11, 12, 13, 14],
    },
    # MediaPipe BlazeFace's 6 keypoints: eyes, nose tip, mouth centre, ear tragions (left/right as seen).
    "blazeface6": {
        "left_eye": [0],
        "right_eye": [1],
        "nose_tip": [2],
        "nose": [2],
        "mouth": [3],
        "left_ear": [4],
        "right_ear": [5],
    },
    # MediaPipe's face mesh (contours of face_mesh_connections.py; left/right as seen in the image).
    "468": _MESH_REGIONS,
    # the mesh plus the irises (468-472 image-left eye, centre first; 473-477 the other)
    "478": {
        **_MESH_REGIONS,
        "left_eye": _MESH_REGIONS["left_eye"] + [468, 469, 470, 471, 472],
        "right_eye": _MESH_REGIONS["right_eye"] + [473, 474, 475, 476, 477],
        "left_iris": [468, 469, 470, 471, 472],
        "right_iris": [473, 474, 475, 476, 477],
    },
    # dlib's 5-point model: two corners of each eye and the bottom of the nose.
    "5": {
        "right_eye": [0, 1],
        "left_eye": [2, 3],
        "nose_tip": [4],
        "nose": [4],
    },
}


@dataclass
class Landmarks:
    """Facial landmark points (N x 2, image pixels) and the model that found them.

    ``scheme`` names the point layout ("5", "68", "468", ...) so regions such as
    ``left_eye`` can be looked up with :meth:`region`.
    """

    points: np.ndarray
    model: str
    scheme: str

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float32)
        self.points = pts.reshape(-1, 2) if pts.ndim != 2 else pts  # (N, 2) or (N, 3) for meshes

    def __len__(self) -> int:
        return len(self.points)

    def region(self, name: str) -> np.ndarray:
        regions = LANDMARK_REGIONS.get(self.scheme, {})
        if name not in regions:
            raise KeyError(f"landmark scheme {self.scheme!r} has no region {name!r} (has: {sorted(regions)})")
        return self.points[regions[name]]

    def regions(self) -> dict[str, np.ndarray]:
        return {k: self.points[v] for k, v in LANDMARK_REGIONS.get(self.scheme, {}).items()}

    def eye_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Centres of the (image-)left and right eyes."""
        return self.region("left_eye")[:, :2].mean(axis=0), self.region("right_eye")[:, :2].mean(axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "scheme": self.scheme,
            "points": [[_r(v) for v in p] for p in self.points.tolist()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Landmarks:
        return cls(np.asarray(d["points"], dtype=np.float32), d["model"], str(d["scheme"]))


@dataclass
class Embedding:
    """A face descriptor and the model that produced it.

    Embeddings of different models are never compared (see :func:`facelab.embed.distance`).
    """

    vector: np.ndarray
    model: str

    def __post_init__(self) -> None:
        self.vector = np.asarray(self.vector, dtype=np.float32).ravel()

    def __len__(self) -> int:
        return int(self.vector.shape[0])

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "vector": [round(float(v), 6) for v in self.vector]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Embedding:
        return cls(np.asarray(d["vector"], dtype=np.float32), d["model"])


@dataclass
class Attribute:
    """One predicted attribute of a face (age, gender, emotion, ethnicity...)."""

    value: str | float
    model: str
    probabilities: dict[str, float] | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"value": _r(self.value, 2) if isinstance(self.value, float) else self.value, "model": self.model}
        if self.confidence is not None:
            d["confidence"] = _r(self.confidence, 4)
        if self.probabilities is not None:
            d["probabilities"] = {k: _r(v, 4) for k, v in self.probabilities.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attribute:
        return cls(d["value"], d["model"], d.get("probabilities"), d.get("confidence"))


@dataclass
class Candidate:
    name: str
    distance: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distance": _r(self.distance, 4)}


@dataclass
class Identity:
    """Who a face is: ``name`` is ``"unknown"`` when no one is close enough."""

    name: str
    distance: float
    threshold: float
    candidates: list[Candidate] = field(default_factory=list)

    UNKNOWN = "unknown"

    @property
    def known(self) -> bool:
        return self.name != self.UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distance": _r(self.distance, 4),
            "threshold": _r(self.threshold, 4),
            "candidates": [c.to_dict() for c in self.candidates],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Identity:
        return cls(d["name"], float(d["distance"]), float(d["threshold"]), [Candidate(c["name"], float(c["distance"])) for c in d.get("candidates", [])])


@dataclass
class Quality:
    """How useful a face is for recognition: parts in [0, 1] (higher is better), pose in degrees, and an overall score.

    ``score`` is the learned score when the quality model ran (``model`` names it), else the
    product of the parts.  ``yaw``/``pitch``/``roll`` are estimates from the landmarks or keypoints
    (None when the face has none).
    """

    score: float
    sharpness: float
    exposure: float
    size: float
    pose: float | None = None
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    learned: float | None = None
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"score": _r(self.score, 4), "sharpness": _r(self.sharpness, 4), "exposure": _r(self.exposure, 4), "size": _r(self.size, 4)}
        for k in ("pose", "learned"):
            v = getattr(self, k)
            if v is not None:
                d[k] = _r(v, 4)
        for k in ("yaw", "pitch", "roll"):
            v = getattr(self, k)
            if v is not None:
                d[k] = _r(v, 1)
        if self.model is not None:
            d["model"] = self.model
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Quality:
        def opt(k: str) -> float | None:
            return float(d[k]) if d.get(k) is not None else None

        return cls(
            float(d["score"]), float(d["sharpness"]), float(d["exposure"]), float(d["size"]),
            opt("pose"), opt("yaw"), opt("pitch"), opt("roll"), opt("learned"), d.get("model"),
        )


@dataclass
class Face:
    """One face in an image and everything the pipeline learned about it."""

    box: Box
    score: float
    detector: str
    rotation: float = 0.0
    landmarks: Landmarks | None = None
    keypoints: Landmarks | None = None  # coarse points some detectors give (e.g. eyes/nose/mouth)
    embedding: Embedding | None = None
    attributes: dict[str, Attribute] = field(default_factory=dict)
    identity: Identity | None = None
    quality: Quality | None = None

    def polygon(self) -> np.ndarray:
        """The face box's corners in the image (rotated for faces found by the sweep)."""
        return self.box.corners(self.rotation)

    def bounds(self) -> Box:
        """Axis-aligned bounding box of :meth:`polygon`."""
        p = self.polygon()
        return Box(float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "box": self.box.to_dict(),
            "score": _r(self.score, 4),
            "detector": self.detector,
            "rotation": _r(self.rotation, 2),
        }
        if self.keypoints is not None:
            d["keypoints"] = self.keypoints.to_dict()
        if self.landmarks is not None:
            d["landmarks"] = self.landmarks.to_dict()
        if self.embedding is not None:
            d["embedding"] = self.embedding.to_dict()
        if self.attributes:
            d["attributes"] = {k: a.to_dict() for k, a in self.attributes.items()}
        if self.identity is not None:
            d["identity"] = self.identity.to_dict()
        if self.quality is not None:
            d["quality"] = self.quality.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Face:
        return cls(
            box=Box.from_dict(d["box"]),
            score=float(d["score"]),
            detector=d["detector"],
            rotation=float(d.get("rotation", 0.0)),
            landmarks=Landmarks.from_dict(d["landmarks"]) if d.get("landmarks") else None,
            keypoints=Landmarks.from_dict(d["keypoints"]) if d.get("keypoints") else None,
            embedding=Embedding.from_dict(d["embedding"]) if d.get("embedding") else None,
            attributes={k: Attribute.from_dict(a) for k, a in d.get("attributes", {}).items()},
            identity=Identity.from_dict(d["identity"]) if d.get("identity") else None,
            quality=Quality.from_dict(d["quality"]) if d.get("quality") else None,
        )


@dataclass
class Verification:
    """Are two faces the same person?  ``same`` is ``distance <= threshold``."""

    distance: float
    threshold: float
    same: bool
    model: str
    metric: str = "euclidean"
    face1: Face | None = None
    face2: Face | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "same": bool(self.same),
            "distance": _r(self.distance, 4),
            "threshold": _r(self.threshold, 4),
            "model": self.model,
            "metric": self.metric,
        }
        if self.face1 is not None:
            d["face1"] = self.face1.to_dict()
        if self.face2 is not None:
            d["face2"] = self.face2.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verification:
        return cls(
            float(d["distance"]), float(d["threshold"]), bool(d["same"]), d["model"], d.get("metric", "euclidean"),
            Face.from_dict(d["face1"]) if d.get("face1") else None,
            Face.from_dict(d["face2"]) if d.get("face2") else None,
        )


@dataclass
class ImageResult:
    """The faces found in one image (or the error that stopped its processing)."""

    source: str
    width: int = 0
    height: int = 0
    faces: list[Face] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None
    annotated: str | None = None  # path of the annotated image, when one was written

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "width": self.width, "height": self.height, "faces": [f.to_dict() for f in self.faces]}
        if self.error is not None:
            d["error"] = self.error
            d["error_code"] = self.error_code
        if self.annotated is not None:
            d["annotated"] = self.annotated
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageResult:
        return cls(d["source"], int(d.get("width", 0)), int(d.get("height", 0)), [Face.from_dict(f) for f in d.get("faces", [])], d.get("error"), d.get("error_code"), d.get("annotated"))


def to_json(obj: Any, **kw: Any) -> str:
    """JSON text of a result, a list of results, or plain data containing them."""
    return json.dumps(_plain(obj), **kw)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
