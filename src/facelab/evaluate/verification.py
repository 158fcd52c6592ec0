"""Face verification protocols: LFW pair lists, threshold calibration, k-fold accuracy.

LFW (Huang et al., 2007, http://vis-www.cs.umass.edu/lfw/) View 1 has
``pairsDevTrain.txt`` (1,100 matched + 1,100 mismatched pairs) for choosing
parameters and ``pairsDevTest.txt`` (500 + 500) for reporting; View 2's
``pairs.txt`` has 10 folds of 300 + 300 for the 10-fold protocol (choose the
threshold on 9 folds, test on the 10th).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Pair:
    a: str  # image path
    b: str
    same: bool
    fold: int = 0


def lfw_image_path(root: str | os.PathLike[str], name: str, num: int) -> str:
    return os.path.join(os.fspath(root), name, f"{name}_{num:04d}.jpg")


def read_pairs(pairs_file: str | os.PathLike[str], lfw_dir: str | os.PathLike[str]) -> list[Pair]:
    """Parse an LFW pairs file (View 1 ``pairsDev*.txt`` or View 2 ``pairs.txt``).

    The first line is either ``N`` (one set) or ``folds N`` (View 2).  Then
    ``name i j`` lines are matched pairs and ``name1 i name2 j`` mismatched ones;
    in View 2 each fold is N matched lines followed by N mismatched lines.
    """
    p = Path(pairs_file)
    try:
        lines = [ln.split() for ln in p.read_text().splitlines() if ln.strip()]
    except OSError as e:
        raise InputError(f"cannot read pairs file ({e.strerror or e})", source=str(p)) from None
    if not lines or not all(t.isdigit() for t in lines[0]):
        raise InputError("first line must be 'N' or 'folds N'", source=str(p))
    head = [int(t) for t in lines[0]]
    folds, n = (1, head[0]) if len(head) == 1 else (head[0], head[1])
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise InputError(f"expected {folds * 2 * n} pair lines for {folds} fold(s) of {n}+{n}, found {len(body)}", source=str(p))
    pairs = []
    for i, t in enumerate(body):
        fold = i // (2 * n)
        try:
            if len(t) == 3:
                pairs.append(Pair(lfw_image_path(lfw_dir, t[0], int(t[1])), lfw_image_path(lfw_dir, t[0], int(t[2])), True, fold))
            elif len(t) == 4:
                pairs.append(Pair(lfw_image_path(lfw_dir, t[0], int(t[1])), lfw_image_path(lfw_dir, t[2], int(t[3])), False, fold))
            else:
                raise ValueError
        except ValueError:
            raise InputError(f"line {i + 2} is not 'name i j' or 'name1 i name2 j': {' '.join(t)}", source=str(p)) from None
    return pairs


def best_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The threshold maximising accuracy of ``distance <= t`` and that accuracy.

    Candidates are midpoints between consecutive sorted distances; ties resolve to
    the midpoint of the best plateau.
    """
    d = np.asarray(distances, np.float64)
    y = np.asarray(same, bool)
    order = np.argsort(d, kind="mergesort")
    ds, ys = d[order], y[order]
    # accuracy if the threshold sits just after index k (predict same for 0..k)
    tp = np.cumsum(ys)
    fp = np.arange(1, len(ds) + 1) - tp
    tn = (~ys).sum() - fp
    acc = np.concatenate([[(~ys).sum()], tp + tn]) / len(ds)
    cands = np.concatenate([[ds[0] - 1e-6], (ds[:-1] + ds[1:]) / 2.0, [ds[-1] + 1e-6]])
    best = acc.max()
    idx = np.flatnonzero(acc == best)
    # choose the middle of the widest run of best positions for stability
    k = idx[len(idx) // 2]
    return float(cands[k]), float(best)


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    d = np.asarray(distances, np.float64)
    y = np.asarray(same, bool)
    return float(((d <= threshold) == y).mean())


def kfold_accuracy(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float, list[float], list[float]]:
    """The LFW 10-fold protocol: for each fold choose the threshold on the others, test on it.

    Returns ``(mean accuracy, std, per-fold accuracies, per-fold thresholds)``.
    """
    d = np.asarray(distances, np.float64)
    y = np.asarray(same, bool)
    f = np.asarray(folds)
    accs, thrs = [], []
    for k in np.unique(f):
        test = f == k
        t, _ = best_threshold(d[~test], y[~test])
        thrs.append(t)
        accs.append(accuracy_at(d[test], y[test], t))
    return float(np.mean(accs)), float(np.std(accs)), accs, thrs


def roc_curve(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds) for ``distance <= t``."""
    d = np.asarray(distances, np.float64)
    y = np.asarray(same, bool)
    order = np.argsort(d, kind="mergesort")
    ys = y[order]
    tpr = np.concatenate([[0.0], np.cumsum(ys) / max(1, ys.sum())])
    fpr = np.concatenate([[0.0], np.cumsum(~ys) / max(1, (~ys).sum())])
    return fpr, tpr, np.concatenate([[-np.inf], d[order]])


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.trapezoid(tpr, fpr)) if hasattr(np, "trapezoid") else float(np.trapz(tpr, fpr))
