"""Class balance for training: count classes, then even them out by augmenting small classes more or by class weights.

``balance="augment"``: each item of a class with ``n`` items is used
``min(cap, round(n_max / n))`` times per epoch, each copy augmented afresh (so
small classes are augmented more); ``"weights"``: the loss of each class is
weighted by ``n_items / (n_classes * n)`` (scikit-learn's ``"balanced"``
weights); ``"none"``: as found.  :func:`effective_counts` gives the counts the
training then sees (copies, or counts times weights), for the before/after plot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError

BALANCE_MODES = ("none", "augment", "weights")
#: The most copies of one item per epoch under ``balance="augment"``.
MAX_REPEAT = 8


def check_mode(mode: str) -> str:
    if mode not in BALANCE_MODES:
        raise InputError(f"unknown balance {mode!r}; choose one of {', '.join(BALANCE_MODES)}")
    return mode


def class_counts(labels: np.ndarray, classes: Sequence[str] | None = None) -> dict[str, int]:
    """Items per class; ``labels`` are class names, or class indices (-1 = missing) when ``classes`` is given."""
    y = np.asarray(labels)
    if classes is not None:
        return {str(c): int((y == i).sum()) for i, c in enumerate(classes)}
    names, n = np.unique(y.astype(str), return_counts=True)
    return {str(a): int(b) for a, b in zip(names, n)}


def class_weights(counts: dict[str, int]) -> dict[str, float]:
    """``n_items / (n_classes * n_class)`` for classes that have items (scikit-learn's ``"balanced"``)."""
    present = {c: n for c, n in counts.items() if n > 0}
    total = sum(present.values())
    return {c: total / (len(present) * n) for c, n in present.items()}


def repeat_factors(counts: dict[str, int], cap: int = MAX_REPEAT) -> dict[str, int]:
    """Copies per epoch of each item of a class: ``min(cap, round(n_max / n))`` (1 for the largest class)."""
    present = {c: n for c, n in counts.items() if n > 0}
    if not present:
        return {}
    top = max(present.values())
    return {c: int(min(cap, max(1, round(top / n)))) for c, n in present.items()}


def effective_counts(counts: dict[str, int], mode: str, cap: int = MAX_REPEAT) -> dict[str, float]:
    """What training sees per class under ``mode``: copies for ``augment``, weighted counts for ``weights``."""
    if mode == "augment":
        r = repeat_factors(counts, cap)
        return {c: float(n * r.get(c, 1)) for c, n in counts.items()}
    if mode == "weights":
        w = class_weights(counts)
        return {c: float(n * w.get(c, 0.0)) for c, n in counts.items()}
    return {c: float(n) for c, n in counts.items()}


def item_repeats(labels_per_task: Sequence[tuple[np.ndarray, Sequence[str]]], cap: int = MAX_REPEAT) -> np.ndarray:
    """Copies per epoch of each item for ``augment`` over several tasks: the largest factor among its labels."""
    n = len(labels_per_task[0][0]) if labels_per_task else 0
    rep = np.ones(n, np.int64)
    for y, classes in labels_per_task:
        y = np.asarray(y)
        f = repeat_factors(class_counts(y, classes), cap)
        for i, c in enumerate(classes):
            if c in f:
                rep[y == i] = np.maximum(rep[y == i], f[c])
    return rep


__all__ = ["BALANCE_MODES", "MAX_REPEAT", "check_mode", "class_counts", "class_weights", "effective_counts", "item_repeats", "repeat_factors"]
