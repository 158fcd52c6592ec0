"""68-point landmark scoring on ``../shared/data/keypoints68`` (YouTube Faces frames, iBUG-68 order).

:func:`nme` is the 300-W normalised mean error: the mean point-to-point
distance divided by the outer-eye-corner distance (points 36 and 45).
:func:`read_keypoints68` reads ``keypoints.csv``; rows with an even index
(0, 2, ...) are the "fit" half (used to choose the mesh -> 68 mapping in
:mod:`facelab.landmarks.mesh468`), odd rows the "eval" half.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..types import Face


@dataclass(frozen=True)
class Keypoints68:
    image: str  # path
    points: np.ndarray  # (68, 2)


def read_keypoints68(root: str | os.PathLike[str], half: str = "all") -> list[Keypoints68]:
    """Frames and their 68 points; ``half`` is ``"fit"`` (even rows), ``"eval"`` (odd rows) or ``"all"``."""
    root = Path(root)
    path = root / "keypoints.csv"
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise InputError(f"cannot read keypoints ({e.strerror or e})", source=str(path)) from None
    out = []
    for i, r in enumerate(rows[1:]):
        if half == "fit" and i % 2:
            continue
        if half == "eval" and not i % 2:
            continue
        if len(r) != 137:
            raise InputError(f"row {i + 2} has {len(r)} columns, expected 137 (image, x0, y0, ... x67, y67)", source=str(path))
        out.append(Keypoints68(str(root / "images" / r[0]), np.asarray(r[1:], np.float32).reshape(68, 2)))
    return out


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean point error / outer-eye-corner distance (iBUG points 36 and 45)."""
    pred, gt = np.asarray(pred, np.float64)[:, :2], np.asarray(gt, np.float64)[:, :2]
    iod = float(np.linalg.norm(gt[36] - gt[45]))
    return float(np.linalg.norm(pred - gt, axis=1).mean() / max(iod, 1e-6))


def face_of(faces: list[Face], gt: np.ndarray) -> Face | None:
    """The detected face whose box centre lies inside the ground truth's bounding box, nearest its centre."""
    x0, y0 = gt.min(axis=0)
    x1, y1 = gt.max(axis=0)
    c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    best, dist = None, np.inf
    for f in faces:
        fc = np.array(f.bounds().center)
        if x0 <= fc[0] <= x1 and y0 <= fc[1] <= y1:
            d = float(np.linalg.norm(fc - c))
            if d < dist:
                best, dist = f, d
    return best
