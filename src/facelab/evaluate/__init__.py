"""All of facelab's evaluation, in one place: verification protocols (LFW pairs, k-fold), detection (VOC), landmarks (NME, CED),
identities (confusion, per-class reports), attributes (accuracy / MAE by group), clustering."""

from .detection import DetectionScore, match, read_voc, voc_dataset
from .verification import Pair, accuracy_at, auc, best_threshold, kfold_accuracy, read_pairs, roc_curve

__all__ = [
    "DetectionScore",
    "match",
    "read_voc",
    "voc_dataset",
   "Pair", "accuracy_at", "auc", "best_threshold", "kfold_accuracy", "read_pairs", "roc_curve"]
