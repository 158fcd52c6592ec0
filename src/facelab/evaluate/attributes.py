"""Measure an attribute model on labelled items: accuracy per task, MAE for age, breakdowns, confusion matrices.

Every metric is also broken down by the true gender, ethnicity and age band of
the items that carry those labels (children and the elderly are where models
fail most).  :func:`evaluate` returns a JSON-ready report; :func:`write_report`
adds a PNG confusion matrix per classification task.  Running a model on an image is
:class:`facelab.attributes.predictor.Predictor`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..attributes.base import AttributeModel
from ..attributes.data import Failure, Fetcher, Item
from ..attributes.labels import AGE_BANDS, FIXED_CLASSES, age_band
from ..attributes.predictor import Predictor
from ..errors import FacelabError, InputError


@dataclass
class EvalResult:
    model: str
    report: dict[str, Any]
    failures: list[Failure] = field(default_factory=list)


def _group_metric(task: str, pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.abs(pred - true).mean()) if task == "age" else float((pred == true).mean())


def evaluate(
    model: AttributeModel,
    items: Sequence[Item],
    *,
    faces: str = "detect",
    tasks: Sequence[str] | None = None,
    fetcher: Fetcher | None = None,
    on_item: Callable[[], None] | None = None,
) -> EvalResult:
    """Predict every item and score each task the model predicts and the items label."""
    model.prepare()
    fetcher = fetcher or Fetcher()
    want = [t for t in (tasks or model.tasks) if t in model.tasks]
    want = [t for t in want if any(t in it.labels for it in items)]
    if not want:
        raise InputError(f"the items have no labels for the tasks model {model.name!r} predicts ({', '.join(model.tasks)})")
    classes = {t: list(getattr(model, "classes", {}).get(t) or FIXED_CLASSES.get(t, ())) for t in want if t != "age"}
    for it in items:
        for t in want:
            v = it.labels.get(t)
            if t != "age" and v is not None and v not in classes[t]:
                raise InputError(f"{t} label {v!r} is not one of the model's classes ({', '.join(classes[t])})", source=it.name)
    predictor = Predictor(model, faces)
    preds: list[dict[str, Attribute] | None] = []
    failures: list[Failure] = []
    secs, n_ok = 0.0, 0
    for it in items:
        try:
            image = fetcher.load(it.source)
            res, dt = predictor(image, [t for t in want if t in it.labels])
            secs += dt
            n_ok += 1
            preds.append(res)
        except FacelabError as e:
            failures.append(Failure(it.name or it.source, e.reason, e.code))
            preds.append(None)
        if on_item is not None:
            on_item()
    if items and not n_ok:
        from collections import Counter

        from ..errors import NothingEvaluatedError

        why = Counter(f.error for f in failures).most_common(3)
        raise NothingEvaluatedError(f"nothing evaluated: all {len(items)} items failed ({'; '.join(f'{n}x {r}' for r, n in why)})")
    report: dict[str, Any] = {
        "model": model.name, "faces": faces, "items": len(items), "evaluated": n_ok, "failures": [f.to_dict() for f in failures],
        "ms_per_face": round(1000 * secs / max(n_ok, 1), 2), "tasks": {},
    }
    for t in want:
        rows = [(it, p[t]) for it, p in zip(items, preds) if p is not None and t in it.labels and t in p]
        if not rows:
            continue
        if t == "age":
            true = np.array([float(it.labels["age"]) for it, _ in rows])
            pred = np.array([float(a.value) for _, a in rows])
        else:
            cl = classes[t]
            true = np.array([cl.index(str(it.labels[t])) for it, _ in rows])
            pred = np.array([cl.index(str(a.value)) for _, a in rows])
        entry: dict[str, Any] = {"metric": "mae" if t == "age" else "accuracy", "value": round(_group_metric(t, pred, true), 4), "n": len(rows)}
        if t != "age":
            cl = classes[t]
            cm = np.zeros((len(cl), len(cl)), np.int64)
            np.add.at(cm, (true, pred), 1)
            entry["classes"] = cl
            entry["confusion"] = cm.tolist()
            entry["per_class"] = {c: {"accuracy": round(float(cm[i, i] / cm[i].sum()), 4), "n": int(cm[i].sum())} for i, c in enumerate(cl) if cm[i].sum()}
        by: dict[str, dict[str, Any]] = {}
        for g in ("gender", "ethnicity", "age_band"):
            keys = []
            for it, _ in rows:
                if g == "age_band":
                    keys.append(age_band(float(it.labels["age"])) if "age" in it.labels else None)
                else:
                    keys.append(it.labels.get(g))
            if all(k is None for k in keys) or (g == t):
                continue
            order = [b[0] for b in AGE_BANDS] if g == "age_band" else list(classes.get(g) or FIXED_CLASSES.get(g) or sorted({k for k in keys if k}))
            groups = {}
            for k in order:
                m = np.array([kk == k for kk in keys])
                if m.any():
                    groups[k] = {"value": round(_group_metric(t, pred[m], true[m]), 4), "n": int(m.sum())}
            by[g] = groups
        entry["by"] = by
        report["tasks"][t] = entry
    return EvalResult(model.name, report, failures)


def draw_confusion(cm: np.ndarray, classes: Sequence[str], title: str) -> np.ndarray:
    """An RGB image of a confusion matrix: rows true, columns predicted, cells shaded by row fraction."""
    import cv2

    n = len(classes)
    cell, left, top = 64, 110, 70
    w, h = left + n * cell + 20, top + n * cell + 40
    img = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (10, 22), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "true (rows) vs predicted (columns)", (10, 42), font, 0.4, (80, 80, 80), 1, cv2.LINE_AA)
    rows = cm.sum(1, keepdims=True).clip(min=1)
    frac = cm / rows
    for i in range(n):
        for j in range(n):
            x0, y0 = left + j * cell, top + i * cell
            v = float(frac[i, j])
            col = (int(255 - 200 * v), int(255 - 120 * v), 255) if i != j else (int(255 - 200 * v), 255, int(255 - 200 * v))
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), col, -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (200, 200, 200), 1)
            txt = str(int(cm[i, j]))
            (tw, th), _ = cv2.getTextSize(txt, font, 0.45, 1)
            cv2.putText(img, txt, (x0 + (cell - tw) // 2, y0 + (cell + th) // 2), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, str(classes[i])[:12], (6, top + i * cell + cell // 2 + 5), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        label = str(classes[i])[:8]
        cv2.putText(img, label, (left + i * cell + 4, top + n * cell + 18), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_report(result: EvalResult, out_dir: str | os.PathLike[str]) -> Path:
    """``report.json`` and ``confusion_<task>.png`` in ``out_dir``; returns the JSON path."""
    from ..draw import save_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for t, e in result.report["tasks"].items():
        if "confusion" in e:
            png = out / f"confusion_{t}.png"
            acc = e["value"]
            save_image(draw_confusion(np.array(e["confusion"]), e["classes"], f"{result.model}: {t}, accuracy {acc:.1%} (n={e['n']})"), png)
            e["confusion_png"] = str(png)
    path = out / "report.json"
    path.write_text(json.dumps(result.report, indent=2))
    return path


__all__ = ["EvalResult", "draw_confusion", "evaluate", "write_report"]
