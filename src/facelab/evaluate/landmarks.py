"""68-point landmark evaluation: NME, per-region error, failure rate, CED curves.

Data: a folder with ``keypoints.csv`` (``image, x0, y0, ... x67, y67``, iBUG-68
order) and the images in ``images/`` (or beside the CSV), the layout of
``shared/data/keypoints68``.

Protocol (the same for every model, in the same run):

* each image's face box comes from one detector (HOG by default): the detection
  that best overlaps the box of the true points; images where the detector
  finds no such face are counted (``missed``) and left out for every model, so
  all models are scored on the same faces with the same boxes;
* NME of a face is the mean point-to-point error divided by the inter-ocular
  distance (outer eye corners 36-45, the normalisation of the 300-W challenge,
  Sagonas et al., "300 Faces In-The-Wild Challenge", IMAVIS 2016);
* failure rate is the share of faces with NME > 0.1; the CED curve is the
  share of faces at or below each NME; AUC is its area up to 0.1 (normalised).

The held-out split of ``keypoints68`` is by person (frames of one person are
near-duplicates), fixed by a hash of the person's name: :func:`split_of`.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..landmarks.points import EVAL_REGIONS, inter_ocular
from ..progress import track
from ..types import Box, Face

FAILURE_NME = 0.1


@dataclass(frozen=True)
class KeypointSample:
    """One annotated image: its path, the 68 true points (68, 2) and the person it shows."""

    path: str
    points: np.ndarray
    person: str


def person_of(image_name: str) -> str:
    """``Abdel_Aziz_Al-Hakim_00.jpg`` -> ``Abdel_Aziz_Al-Hakim`` (frame number and ``_augN`` of augmented copies dropped)."""
    stem = Path(image_name).stem
    return re.sub(r"(_\d+)?(_aug\d+)?$", "", stem)


def split_of(person: str, val: float = 0.10, test: float = 0.15) -> str:
    """``"test"``, ``"val"`` or ``"train"`` for a person, fixed by the MD5 of the name.

    The split never changes between runs or machines, and all frames of one
    person fall on the same side, so held-out faces are never seen in training.
    """
    u = int(hashlib.md5(person.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"


def read_keypoints(data: str | os.PathLike[str], *, num_points: int | None = 68) -> list[KeypointSample]:
    """Samples of a keypoints folder (``keypoints.csv`` + ``images/``) or of a CSV file (images beside it or in ``images/``).

    ``num_points``: the points each row must have (``None``: any number, read from the header
    ``image, x0, y0, ... x{K-1}, y{K-1}``, e.g. a 15-point eyes/nose/mouth set).
    """
    p = Path(data)
    csv_path = p / "keypoints.csv" if p.is_dir() else p
    if not csv_path.is_file():
        raise InputError("no keypoints.csv here (expected a folder with keypoints.csv and images/, or the CSV itself)", source=str(p))
    base = csv_path.parent
    img_dir = base / "images" if (base / "images").is_dir() else base
    out: list[KeypointSample] = []
    with open(csv_path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        k = num_points if num_points is not None else (len(header) - 1) // 2 if header else 0
        if not header or len(header) != 1 + 2 * k or k < 1:
            want = f"'image, x0, y0, ... x{k - 1}, y{k - 1}' ({1 + 2 * k} columns)" if num_points else "'image, x0, y0, x1, y1, ...' (an odd number of columns)"
            raise InputError(f"expected a header {want}, got {len(header or [])}", source=str(csv_path))
        for ln, row in enumerate(rows, start=2):
            if not row:
                continue
            try:
                vals = np.array([float(v) for v in row[1:]], dtype=np.float32)
            except ValueError:
                raise InputError(f"line {ln}: non-numeric coordinate", source=str(csv_path)) from None
            if vals.shape != (2 * k,) or not np.isfinite(vals).all():
                raise InputError(f"line {ln}: expected {2 * k} finite coordinates", source=str(csv_path))
            out.append(KeypointSample(str(img_dir / row[0]), vals.reshape(k, 2), person_of(row[0])))
    if not out:
        raise InputError("no annotated images in the CSV", source=str(csv_path))
    return out


def subset(samples: Sequence[KeypointSample], split: str, limit: int | None = None) -> list[KeypointSample]:
    """The samples of one split (``train``/``val``/``test``/``all``), in file order, at most ``limit``."""
    chosen = [s for s in samples if split == "all" or split_of(s.person) == split]
    return chosen[:limit] if limit else chosen


def points_box(points: np.ndarray) -> Box:
    p = np.asarray(points)[:, :2]
    return Box(float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))


def inner_points(points: np.ndarray) -> np.ndarray:
    """Brows, eyes, nose and mouth: points 17-67 of the 68-point layout; every point of other sets."""
    p = np.asarray(points)
    return p[17:] if len(p) == 68 else p


def match_face(faces: Sequence[Face], points: np.ndarray, min_iou: float = 0.25) -> Face | None:
    """The detection that best overlaps the box of the true points (inner points 17-67 of 68; all points of other sets), or None."""
    gt = points_box(inner_points(points))
    best, best_iou = None, min_iou
    for f in faces:
        v = f.bounds().iou(gt)
        if v >= best_iou:
            best, best_iou = f, v
    return best


def nme(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-face NME (mean point error / inter-ocular distance) of (N, 68, 2) arrays."""
    pred = np.asarray(pred, np.float64).reshape(-1, 68, 2)
    gt = np.asarray(gt, np.float64).reshape(-1, 68, 2)
    err = np.linalg.norm(pred - gt, axis=-1)
    return err.mean(axis=1) / np.maximum(inter_ocular(gt), 1e-6)


def ced(nmes: np.ndarray, max_nme: float = FAILURE_NME, steps: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: thresholds (0..max_nme) and share of faces at or below each."""
    xs = np.linspace(0.0, max_nme, steps)
    v = np.sort(np.asarray(nmes, np.float64))
    ys = np.searchsorted(v, xs, side="right") / max(1, len(v))
    return xs, ys


@dataclass
class LandmarkScore:
    """How one model did on a set of faces."""

    model: str
    nmes: np.ndarray
    region_errors: dict[str, float]
    ms_per_face: float
    missed: int = 0  # images left out because the detector found no matching face
    per_image: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(len(self.nmes))

    @property
    def nme(self) -> float:
        return float(np.mean(self.nmes)) if self.n else float("nan")

    @property
    def median_nme(self) -> float:
        return float(np.median(self.nmes)) if self.n else float("nan")

    @property
    def failure_rate(self) -> float:
        return float(np.mean(self.nmes > FAILURE_NME)) if self.n else float("nan")

    @property
    def auc(self) -> float:
        xs, ys = ced(self.nmes)
        return float(np.trapezoid(ys, xs) / xs[-1]) if self.n else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "nme": round(self.nme, 5),
            "median_nme": round(self.median_nme, 5),
            "failure_rate": round(self.failure_rate, 4),
            "auc_0.1": round(self.auc, 4),
            "n": self.n,
            "missed": self.missed,
            "ms_per_face": round(self.ms_per_face, 3),
            "region_nme": {k: round(v, 5) for k, v in self.region_errors.items()},
        }


@dataclass
class EvalFace:
    """One evaluation face: the image, its true points and the detected face (box) given to every model."""

    sample: KeypointSample
    image: np.ndarray
    face: Face


def prepare_faces(samples: Sequence[KeypointSample], detector: str = "hog", progress: bool = False) -> tuple[list[EvalFace], list[str]]:
    """Load and detect every sample once: the faces to score, and the paths where no matching face was found."""
    from ..detect import detect
    from ..io import load_image

    faces: list[EvalFace] = []
    missed: list[str] = []
    for s in track(samples, len(samples), "detecting", progress):
        img = load_image(s.path)
        f = match_face(detect(img, detector, rotate="auto"), s.points)
        if f is None:
            missed.append(s.path)
        else:
            faces.append(EvalFace(s, img, f))
    return faces, missed


def score_model(model: Any, faces: Sequence[EvalFace], *, missed: int = 0, name: str | None = None, progress: bool = False) -> LandmarkScore:
    """Run one landmarker (a name, a path, or a Landmarker) on prepared faces and score it."""
    from ..landmarks import get_landmarker
    from ..landmarks.base import Landmarker

    lm = model if isinstance(model, Landmarker) else get_landmarker(str(model))
    lm.prepare()
    if faces:  # warm up (first-call allocations are not the model's speed)
        lm.predict(faces[0].image, [faces[0].face])
    preds, t_total = [], 0.0
    for ef in track(faces, len(faces), f"landmarks {name or lm.name}", progress):
        t = time.perf_counter()
        out = lm.predict(ef.image, [ef.face])[0]
        t_total += time.perf_counter() - t
        if len(out) != 68:
            raise InputError(f"model {name or lm.name} gives {len(out)} points, evaluation needs the 68-point layout")
        preds.append(out.points[:, :2])
    gts = np.stack([ef.sample.points for ef in faces]) if faces else np.zeros((0, 68, 2))
    pred = np.stack(preds) if preds else np.zeros((0, 68, 2))
    nmes = nme(pred, gts)
    iod = np.maximum(inter_ocular(gts), 1e-6) if len(gts) else np.zeros(0)
    err = np.linalg.norm(pred - gts, axis=-1) if len(gts) else np.zeros((0, 68))
    regions = {r: float(np.mean(err[:, idx].mean(axis=1) / iod)) if len(gts) else float("nan") for r, idx in EVAL_REGIONS.items()}
    per_image = [{"image": ef.sample.path, "nme": round(float(v), 5)} for ef, v in zip(faces, nmes)]
    return LandmarkScore(name or lm.name, nmes, regions, 1000.0 * t_total / max(1, len(faces)), missed, per_image)


def evaluate_landmarks(
    samples: Sequence[KeypointSample], models: Sequence[Any], *, detector: str = "hog", progress: bool = False
) -> list[LandmarkScore]:
    """Score every model on the same detected faces of ``samples`` (see the module docstring)."""
    faces, missed = prepare_faces(samples, detector, progress)
    if not faces:
        from ..errors import NothingEvaluatedError

        raise NothingEvaluatedError(f"nothing evaluated: the detector {detector!r} found none of the {len(samples)} annotated faces")
    return [score_model(m, faces, missed=len(missed), name=_model_name(m), progress=progress) for m in models]


def _model_name(m: Any) -> str:
    if isinstance(m, str) and os.path.sep in m:
        return Path(m).name
    return str(m) if isinstance(m, (str, os.PathLike)) else getattr(m, "name", "model")


_PLOT_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def ced_plot(scores: Sequence[LandmarkScore], path: str | os.PathLike[str], *, max_nme: float = FAILURE_NME, size: tuple[int, int] = (720, 480)) -> str:
    """Write the CED curves of ``scores`` as a PNG (drawn with OpenCV, no plotting library needed)."""
    import cv2

    from ..draw import save_image

    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 70, w - 20, 40, h - 60
    font = cv2.FONT_HERSHEY_SIMPLEX

    def xy(x: float, y: float) -> tuple[int, int]:
        return int(round(left + (right - left) * x / max_nme)), int(round(bottom - (bottom - top) * y))

    for i in range(11):  # grid and ticks
        gx = max_nme * i / 10
        cv2.line(img, xy(gx, 0), xy(gx, 1), (225, 225, 225), 1)
        cv2.putText(img, f"{gx:.2f}", (xy(gx, 0)[0] - 14, bottom + 18), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
        gy = i / 10
        cv2.line(img, xy(0, gy), xy(max_nme, gy), (225, 225, 225), 1)
        cv2.putText(img, f"{gy:.1f}", (left - 32, xy(0, gy)[1] + 4), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (right, bottom), (0, 0, 0), 1)
    cv2.putText(img, "NME (inter-ocular)", (left + (right - left) // 2 - 70, h - 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "share of faces", (8, top - 14), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "Cumulative error distribution", (left + 150, 24), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for k, s in enumerate(scores):
        col = _PLOT_COLORS[k % len(_PLOT_COLORS)]
        xs, ys = ced(s.nmes, max_nme, 201)
        pts = np.array([xy(x, y) for x, y in zip(xs, ys)], np.int32)
        cv2.polylines(img, [pts], False, col, 2, cv2.LINE_AA)
        ly = bottom - 20 - 20 * (len(scores) - 1 - k)
        cv2.line(img, (right - 250, ly - 4), (right - 225, ly - 4), col, 3)
        label = f"{s.model}: NME {s.nme:.4f}, fail {100 * s.failure_rate:.1f}%"
        cv2.putText(img, label, (right - 218, ly), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return save_image(img, path)


__all__ = [
    "FAILURE_NME",
    "EvalFace",
    "KeypointSample",
    "LandmarkScore",
    "ced",
    "ced_plot",
    "evaluate_landmarks",
    "match_face",
    "nme",
    "person_of",
    "points_box",
    "prepare_faces",
    "inner_points",
    "read_keypoints",
    "score_model",
    "split_of",
    "subset",
]
