"""Evaluation: verification protocols (LFW pairs, k-fold), and reports."""

from .detection import DetectionScore, match, read_voc, voc_dataset
from .verification import Pair, accuracy_at, auc, best_threshold, kfold_accuracy, read_pairs, roc_curve

__all__ = [
    "DetectionScore",
    "match",
    "read_voc",
    "voc_dataset",
   "Pair", "accuracy_at", "auc", "best_threshold", "kfold_accuracy", "read_pairs", "roc_curve"]
