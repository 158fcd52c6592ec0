"""Scoring a clustering of faces against the true identities: pairwise precision, recall, F-score.

Every pair of faces put in the same cluster is a "predicted same" pair; every
pair of faces of the same person a "true same" pair.  Precision is the share of
predicted pairs that are true, recall the share of true pairs that are found,
F the harmonic mean (the measure of e.g. Otto, Wang & Jain, "Clustering
Millions of Faces by Identity", TPAMI 2018).  Faces left out of every cluster
(label ``-1``) are singletons.  Counting uses per-label sizes, O(n).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass
class PairwiseScores:
    precision: float
    recall: float
    f_score: float
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def _pairs(counts: Counter) -> int:
    return sum(c * (c - 1) // 2 for c in counts.values())


def pairwise_scores(truth: Sequence[Hashable], predicted: Sequence[int]) -> PairwiseScores:
    """Pairwise precision / recall / F of ``predicted`` cluster labels (``-1``: unclustered) against ``truth``."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predicted ones")
    pred = [("single", i) if p == -1 else p for i, p in enumerate(predicted)]
    tp = _pairs(Counter(zip(truth, pred)))
    pp = _pairs(Counter(pred))
    tt = _pairs(Counter(truth))
    precision = tp / pp if pp else 1.0
    recall = tp / tt if tt else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairwiseScores(precision, recall, f, pp, tt, tp)


__all__ = ["PairwiseScores", "pairwise_scores"]
