"""Identification scoring: open-set thresholds, per-class precision/recall, confusion matrices, contact sheets.

Open-set identification (a gallery or a classifier with an ``unknown``
answer) makes two kinds of trials: a *known* probe is right when the best
match is its person and the distance is within the threshold; a *stranger*
probe is right when the distance is beyond it.  :func:`best_open_set_threshold`
picks the threshold that maximises the accuracy over both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

UNKNOWN = "unknown"


def open_set_accuracy(threshold: float, known_dist: np.ndarray, known_correct: np.ndarray, stranger_dist: np.ndarray) -> float:
    kd, kc, sd = np.asarray(known_dist, float), np.asarray(known_correct, bool), np.asarray(stranger_dist, float)
    right = int(((kd <= threshold) & kc).sum()) + int((sd > threshold).sum())
    return right / max(1, len(kd) + len(sd))


def best_open_set_threshold(known_dist: np.ndarray, known_correct: np.ndarray, stranger_dist: np.ndarray) -> tuple[float, float]:
    """``(threshold, accuracy)`` maximising open-set accuracy; the middle of the best plateau between observed distances."""
    kd = np.asarray(known_dist, np.float64)
    kc = np.asarray(known_correct, bool)
    sd = np.asarray(stranger_dist, np.float64)
    kd_ok = kd[kc & np.isfinite(kd)]
    sd = sd[np.isfinite(sd)]
    n = len(kd) + len(sd)
    if n == 0:
        return float("nan"), float("nan")
    vals = np.unique(np.concatenate([kd_ok, sd]))
    if not len(vals):
        return float("inf"), float(int(kc.sum()) / n)
    cands = np.concatenate([[vals[0] - 1e-6], (vals[:-1] + vals[1:]) / 2.0, [vals[-1] + 1e-6]])
    acc = (np.searchsorted(np.sort(kd_ok), cands, side="right") + (len(sd) - np.searchsorted(np.sort(sd), cands, side="right"))) / n
    best = acc.max()
    idx = np.flatnonzero(acc == best)
    return float(cands[idx[len(idx) // 2]]), float(best)


def confusion_matrix(y_true: list[str] | np.ndarray, y_pred: list[str] | np.ndarray, labels: list[str]) -> np.ndarray:
    """Counts ``(len(labels), len(labels))``: row = true label, column = prediction."""
    pos = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), np.int64)
    for t, p in zip(y_true, y_pred):
        cm[pos[str(t)], pos[str(p)]] += 1
    return cm


def per_class_scores(cm: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label from a confusion matrix."""
    tp = np.diag(cm).astype(float)
    pred = cm.sum(0).astype(float)
    true = cm.sum(1).astype(float)
    out = {}
    for i, lab in enumerate(labels):
        p = tp[i] / pred[i] if pred[i] else 0.0
        r = tp[i] / true[i] if true[i] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        out[lab] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": int(true[i])}
    return out


@dataclass
class IdentityReport:
    """How well a model names the people of a labelled image set."""

    name: str
    labels: list[str]  # confusion-matrix order (the model's people, then "unknown")
    y_true: list[str]
    y_pred: list[str]  # after the open-set threshold
    y_closed: list[str]  # the classifier's person, threshold ignored
    distances: list[float]
    paths: list[str]
    source: str = "predicted"  # or "cross-validated" (the images the model was trained on)
    extra: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        t = np.array(self.y_true)
        p = np.array(self.y_pred)
        c = np.array(self.y_closed)
        known = t != UNKNOWN
        cm = confusion_matrix(t, p, self.labels)
        per = per_class_scores(cm, self.labels)
        people = [lab for lab in self.labels if lab != UNKNOWN and per[lab]["support"]]
        out: dict[str, Any] = {
            "images": int(len(t)),
            "known_images": int(known.sum()),
            "stranger_images": int((~known).sum()),
            "accuracy": round(float((t == p).mean()), 4) if len(t) else None,
            "closed_set_accuracy": round(float((t[known] == c[known]).mean()), 4) if known.any() else None,
            "known_accuracy": round(float((t[known] == p[known]).mean()), 4) if known.any() else None,
            "false_unknown_rate": round(float((p[known] == UNKNOWN).mean()), 4) if known.any() else None,
            "stranger_rejection_rate": round(float((p[~known] == UNKNOWN).mean()), 4) if (~known).any() else None,
            "macro_precision": round(float(np.mean([per[lab]["precision"] for lab in people])), 4) if people else None,
            "macro_recall": round(float(np.mean([per[lab]["recall"] for lab in people])), 4) if people else None,
        }
        return {**out, "per_class": per}

    def misclassified(self) -> list[dict[str, Any]]:
        return [
            {"path": pa, "true": t, "pred": p, "distance": round(d, 4)}
            for pa, t, p, d in zip(self.paths, self.y_true, self.y_pred, self.distances)
            if t != p
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, **self.metrics(), "misclassified": self.misclassified(), **self.extra}


def plot_confusion(cm: np.ndarray, labels: list[str], path: str | os.PathLike[str], title: str = "") -> str:
    """Save a confusion-matrix heat map (rows: true, columns: predicted) as PNG."""
    try:
        import matplotlib
    except ImportError:
        from ..errors import FacelabError

        raise FacelabError("confusion-matrix plots need matplotlib: pip install 'facelab[identities]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    size = min(24.0, max(5.0, 0.28 * n + 2.5))
    fig, ax = plt.subplots(figsize=(size, size * 0.92))
    ax.imshow(cm, cmap="Blues", interpolation="nearest")
    ticks = np.arange(n)
    fs = max(4, min(10, int(300 / max(n, 1))))
    ax.set_xticks(ticks, labels, rotation=90, fontsize=fs)
    ax.set_yticks(ticks, labels, fontsize=fs)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 45:
        hi = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=fs, color="white" if cm[i, j] > hi else "black")
    ax.set_title(title or f"confusion matrix ({int(np.trace(cm))}/{int(cm.sum())} right)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)


def contact_sheet(items: list[dict[str, Any]], path: str | os.PathLike[str], *, cell: int = 140, cols: int = 6, boxes: dict[str, Any] | None = None) -> str | None:
    """A grid of images with ``true -> predicted`` under each (misclassified examples); None when empty.

    ``items``: dicts with ``path``, ``true``, ``pred`` and ``distance``;
    ``boxes`` maps a path to its face box (``Box.to_dict()``), to show the face only.
    """
    import cv2

    from ..draw import save_image
    from ..errors import InputError
    from ..io import load_image

    if not items:
        return None
    rows = (len(items) + cols - 1) // cols
    text_h = 34
    sheet = np.full((rows * (cell + text_h), cols * cell, 3), 255, np.uint8)
    for k, it in enumerate(items):
        r, c = divmod(k, cols)
        try:
            img = load_image(it["path"])
        except InputError:
            img = np.full((cell, cell, 3), 200, np.uint8)
        b = (boxes or {}).get(it["path"])
        if b:
            h, w = img.shape[:2]
            cx, cy, s = (b["left"] + b["right"]) / 2, (b["top"] + b["bottom"]) / 2, 0.7 * max(b["right"] - b["left"], b["bottom"] - b["top"])
            x0, y0, x1, y1 = int(max(0, cx - s)), int(max(0, cy - s)), int(min(w, cx + s)), int(min(h, cy + s))
            if x1 > x0 and y1 > y0:
                img = img[y0:y1, x0:x1]
        h, w = img.shape[:2]
        f = cell / max(h, w)
        img = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        y, x = r * (cell + text_h), c * cell
        sheet[y : y + img.shape[0], x : x + img.shape[1]] = img
        for line, txt, col in ((0, str(it["true"])[:22], (0, 110, 0)), (1, f"-> {str(it['pred'])[:14]} {float(it.get('distance', 0)):.2f}", (190, 0, 0))):
            cv2.putText(sheet, txt, (x + 3, y + cell + 13 + 15 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.42, col, 1, cv2.LINE_AA)
    return save_image(sheet, path)


def write_report(report: IdentityReport, out_dir: str | os.PathLike[str], *, boxes: dict[str, Any] | None = None) -> dict[str, Any]:
    """``report.json``, ``confusion.png`` and ``misclassified.jpg`` (when any) in ``out_dir``; returns the JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = report.to_dict()
    labels = report.labels
    cm = confusion_matrix(report.y_true, report.y_pred, labels)
    d["files"] = {"report": str(out / "report.json"), "confusion_png": plot_confusion(cm, labels, out / "confusion.png", f"{report.name}: {d['accuracy']:.1%} right ({report.source})")}
    sheet = contact_sheet(report.misclassified(), out / "misclassified.jpg", boxes=boxes)
    if sheet:
        d["files"]["misclassified_sheet"] = sheet
    d["confusion_matrix"] = {"labels": labels, "counts": cm.tolist()}
    (out / "report.json").write_text(json.dumps(d, indent=2))
    return d


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table comparing models (rows from :func:`compare_row`)."""
    head = "| model | approach | CV accuracy (mean ± sd) | accuracy | closed-set | macro P | macro R | strangers rejected | threshold |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:

        def f(x: Any) -> str:
            return "-" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))

        cv = f"{r['cv_mean']:.4f} ± {r['cv_std']:.4f} ({r['cv_folds']}-fold)" if r.get("cv_mean") is not None else "-"
        lines.append(
            f"| {r['name']} | {r['approach']} | {cv} | {f(r['accuracy'])} | {f(r['closed_set_accuracy'])} | {f(r['macro_precision'])} | {f(r['macro_recall'])} | {f(r['stranger_rejection_rate'])} | {f(r['threshold'])} |"
        )
    return "\n".join(lines)




def evaluate_model(model: Any, es: Any, *, name: str | None = None, use_cv: bool = True) -> IdentityReport:
    """Score an :class:`~facelab.train.identities.IdentityModel` on an embedded labelled set.

    People the model does not know are expected to come back ``unknown``.
    Images the model was trained on are scored with their cross-validated
    (out-of-fold) predictions saved in the model file, never with the final
    model that has seen them (``use_cv=False`` to predict them anyway).
    """
    classes = model.classes
    known = set(classes)
    oof = model.meta.get("oof", {}) if use_cv else {}
    oof_at = {p: i for i, p in enumerate(oof.get("paths", []))}
    thr = model.threshold
    preds = model.identify_vectors(es.vectors, top_k=1)
    y_true, y_pred, y_closed, dist = [], [], [], []
    n_cv = 0
    for path, label, ident in zip(es.paths, es.labels, preds):
        j = oof_at.get(os.path.abspath(path))
        if j is not None:
            closed, d = oof["pred"][j], float(oof["distance"][j])
            n_cv += 1
        else:
            closed, d = ident.candidates[0].name, ident.distance
        y_true.append(str(label) if str(label) in known else UNKNOWN)
        y_closed.append(closed)
        y_pred.append(closed if d <= thr else UNKNOWN)
        dist.append(d)
    source = "cross-validated" if n_cv == len(es) else ("predicted" if n_cv == 0 else f"mixed ({n_cv} cross-validated, {len(es) - n_cv} predicted)")
    meta = model.meta
    extra = {
        "model_file": model.path,
        "classifier": meta.get("classifier"),
        "approach": meta.get("approach"),
        "params": meta.get("params"),
        "threshold": round(thr, 4),
        "cv": meta.get("cv"),
        "dataset": es.summary(),
    }
    return IdentityReport(name or Path(model.path or "model").stem, [*classes, UNKNOWN], y_true, y_pred, y_closed, dist, list(es.paths), source, extra)


def compare_row(report: IdentityReport) -> dict[str, Any]:
    m = report.metrics()
    cv = report.extra.get("cv") or {}
    return {
        "name": report.name,
        "classifier": report.extra.get("classifier"),
        "approach": report.extra.get("approach"),
        "cv_mean": cv.get("mean_accuracy"),
        "cv_std": cv.get("std_accuracy"),
        "cv_folds": cv.get("folds"),
        "accuracy": m["accuracy"],
        "closed_set_accuracy": m["closed_set_accuracy"],
        "macro_precision": m["macro_precision"],
        "macro_recall": m["macro_recall"],
        "stranger_rejection_rate": m["stranger_rejection_rate"],
        "threshold": report.extra.get("threshold"),
        "source": report.source,
    }



@dataclass
class OpenSetTrials:
    """Distances of a gallery's best match for known probes (and whether it was right) and for strangers."""

    known_dist: np.ndarray
    known_correct: np.ndarray
    stranger_dist: np.ndarray
    enrolled_people: int = 0

    def accuracy_at(self, threshold: float) -> dict[str, float]:
        kd, kc, sd = self.known_dist, self.known_correct, self.stranger_dist
        return {
            "open_set_accuracy": round(open_set_accuracy(threshold, kd, kc, sd), 4),
            "known_identified": round(float(((kd <= threshold) & kc).mean()), 4) if len(kd) else float("nan"),
            "strangers_unknown": round(float((sd > threshold).mean()), 4) if len(sd) else float("nan"),
            "closed_set_rank1": round(float(kc.mean()), 4) if len(kc) else float("nan"),
        }

    @staticmethod
    def concat(trials: list[OpenSetTrials]) -> OpenSetTrials:
        return OpenSetTrials(
            np.concatenate([t.known_dist for t in trials]),
            np.concatenate([t.known_correct for t in trials]),
            np.concatenate([t.stranger_dist for t in trials]),
            sum(t.enrolled_people for t in trials),
        )


def open_set_split(labels: np.ndarray, *, per_person: int = 3, enrolled_fraction: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(enrol, known_probes, stranger_probes)`` indices: a random ``enrolled_fraction`` of the people
    enrol ``per_person`` random images each and are probed with the rest; the others are never enrolled."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    people = np.unique(labels)
    rng.shuffle(people)
    enrolled = set(people[: int(round(len(people) * enrolled_fraction))].tolist())
    enrol, known, strangers = [], [], []
    for p in people:
        idx = np.flatnonzero(labels == p)
        if p in enrolled:
            idx = rng.permutation(idx)
            enrol += idx[:per_person].tolist()
            known += idx[per_person:].tolist()
        else:
            strangers += idx.tolist()
    return np.array(enrol, int), np.array(known, int), np.array(strangers, int)


def gallery_open_set_trials(es: Any, db: str, *, match: str = "nearest", per_person: int = 3, seed: int = 0, search: str = "auto") -> OpenSetTrials:
    """Enrol part of an embedded set in a fresh gallery at ``db`` (:func:`open_set_split`) and identify the rest.

    Uses :class:`facelab.gallery.Gallery` itself, with an infinite threshold so
    every probe reports its best match and distance.
    """
    from ..gallery import Gallery
    from ..types import Embedding

    enrol, known, strangers = open_set_split(es.labels, per_person=per_person, seed=seed)
    with Gallery(db, match=match, threshold=float("inf"), search=search) as g:
        by_person: dict[str, list[int]] = {}
        for i in enrol:
            by_person.setdefault(str(es.labels[i]), []).append(int(i))
        for name, idx in by_person.items():
            g.enroll_embeddings(name, [Embedding(es.vectors[i], es.model) for i in idx], sources=[es.paths[i] for i in idx])
        ids_known = g.identify_vectors(es.vectors[known], top_k=1) if len(known) else []
        ids_str = g.identify_vectors(es.vectors[strangers], top_k=1) if len(strangers) else []
    return OpenSetTrials(
        np.array([i.distance for i in ids_known]),
        np.array([i.candidates[0].name == str(es.labels[k]) for i, k in zip(ids_known, known)], bool),
        np.array([i.distance for i in ids_str]),
        len(by_person),
    )

__all__ = [
    "UNKNOWN",
    "IdentityReport",
    "OpenSetTrials",
    "best_open_set_threshold",
    "compare_row",
    "comparison_table",
    "confusion_matrix",
    "contact_sheet",
    "evaluate_model",
    "gallery_open_set_trials",
    "open_set_accuracy",
    "open_set_split",
    "per_class_scores",
    "plot_confusion",
    "write_report",
]
