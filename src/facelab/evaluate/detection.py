"""Detector scoring on annotated boxes (Pascal VOC XML): recall, precision, small faces.

Matching is greedy by IoU (highest first) at ``IoU >= iou``; a ground-truth
box whose short side is below ``small`` pixels counts as "small" and is scored
apart (recall on small faces; detections matched to them are not false
positives, and unmatched detections are false positives).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..types import Box


def read_voc(xml_path: str | os.PathLike[str]) -> list[Box]:
    """Boxes of every ``<object>`` in a VOC annotation file."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise InputError(f"cannot read VOC annotation ({e})", source=str(xml_path)) from None
    boxes = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        vals = [float(bb.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax")]
        if not all(np.isfinite(vals)):
            continue
        boxes.append(Box(*vals))
    return boxes


def voc_dataset(root: str | os.PathLike[str]) -> list[tuple[str, list[Box]]]:
    """``(image path, boxes)`` for every ``images/<stem>.*`` that has ``annotations/<stem>.xml``."""
    root = Path(root)
    out = []
    for xml in sorted((root / "annotations").glob("*.xml")):
        for ext in (".jpg", ".jpeg", ".png"):
            img = root / "images" / (xml.stem + ext)
            if img.exists():
                out.append((str(img), read_voc(xml)))
                break
    return out


def match(gt: list[Box], pred: list[Box], iou: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one matching: (gt index, pred index) pairs with IoU >= ``iou``."""
    cands = []
    for i, g in enumerate(gt):
        for j, p in enumerate(pred):
            v = g.iou(p)
            if v >= iou:
                cands.append((v, i, j))
    cands.sort(reverse=True)
    used_g, used_p, pairs = set(), set(), []
    for _, i, j in cands:
        if i not in used_g and j not in used_p:
            used_g.add(i)
            used_p.add(j)
            pairs.append((i, j))
    return pairs


@dataclass
class DetectionScore:
    gt: int = 0
    gt_small: int = 0
    tp: int = 0
    tp_small: int = 0
    fp: int = 0
    images: int = 0
    per_image: list[dict] = field(default_factory=list)

    def add(self, gt: list[Box], pred: list[Box], *, iou: float = 0.5, small: float = 20.0, name: str = "") -> None:
        pairs = match(gt, pred, iou)
        is_small = [min(g.width, g.height) < small for g in gt]
        matched_g = {i for i, _ in pairs}
        self.images += 1
        self.gt += sum(not s for s in is_small)
        self.gt_small += sum(is_small)
        tp = sum(1 for i in matched_g if not is_small[i])
        tps = sum(1 for i in matched_g if is_small[i])
        self.tp += tp
        self.tp_small += tps
        self.fp += len(pred) - len(pairs)
        self.per_image.append({"image": name, "gt": len(gt), "pred": len(pred), "matched": len(pairs)})

    @property
    def recall(self) -> float:
        return self.tp / self.gt if self.gt else 0.0

    @property
    def recall_small(self) -> float:
        return self.tp_small / self.gt_small if self.gt_small else 0.0

    @property
    def precision(self) -> float:
        n = self.tp + self.tp_small + self.fp
        return (self.tp + self.tp_small) / n if n else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
            "recall_small": round(self.recall_small, 4),
            "gt": self.gt,
            "gt_small": self.gt_small,
            "images": self.images,
        }
