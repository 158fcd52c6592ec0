"""Class balance for identity classifiers: none vs class weights vs augmenting small classes, on an imbalanced set.

LFW View 1 people with >= 5 photos (81 people, 472 images, 5 to 8 photos a
person: mildly imbalanced) and, with ``--cut 3``, the same set made strongly
imbalanced: every other person (by name) keeps only their first 3 photos.
For each classifier and ``balance`` mode: stratified
k-fold CV (the same folds for every cell; augmented copies join a training
fold only with their original image and are never scored), reporting the
accuracy, the balanced accuracy (mean recall over people) and the recall of
the people with the fewest photos (<= 6), and the time.  Prints a Markdown
table and writes ``--json-out`` (default ``benchmarks/results/class_balance.json``).

Usage: nice -n 10 python benchmarks/class_balance.py [--data ../shared/data] [--models svm,logreg] [--folds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.train.dataset import augment_rows, reference_set  # noqa: E402
from facelab.train.identities import cross_validate  # noqa: E402


def recalls(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {c: float((pred[y == c] == c).mean()) for c in np.unique(y)}


def run(full, cut_n: int, args) -> list[dict]:
    rows = []
    es = full
    if cut_n:
        people = sorted(set(es.labels.tolist()))
        cut = set(people[1::2])
        seen: dict[str, int] = {}
        keep = []
        for i, lab in enumerate(es.labels.tolist()):
            seen[lab] = seen.get(lab, 0) + 1
            if lab not in cut or seen[lab] <= cut_n:
                keep.append(i)
        es = es.subset(np.array(keep))
    names, counts = np.unique(es.labels, return_counts=True)
    small = set(names[counts <= (cut_n or args.small)].tolist())
    extra, aug_secs = None, 0.0
    if "augment" in args.modes.split(","):
        t = time.perf_counter()
        extra = augment_rows(es, progress=True)
        aug_secs = time.perf_counter() - t
    print(f"\n{args.set}{f' (every other person cut to {cut_n} photos)' if cut_n else ''}: {len(es)} images of {len(names)} people ({counts.min()}-{counts.max()} photos each; {len(small)} people with <= {cut_n or args.small})")
    print(f"augmented copies: {0 if extra is None else len(extra.source)} ({aug_secs:.0f} s to make and embed)")
    print("| classifier | balance | CV accuracy | balanced accuracy | recall, people with <= %d photos | time (s) |" % (cut_n or args.small))
    print("|---|---|---|---|---|---|")
    for model in args.models.split(","):
        for mode in args.modes.split(","):
            t = time.perf_counter()
            cv = cross_validate(es, model, folds=args.folds, balance="weights" if mode == "weights" else "none", extra=extra if mode == "augment" else None)
            secs = time.perf_counter() - t
            rec = recalls(es.labels, cv.oof_pred)
            row = {
                "data": args.set + (f" (every other person cut to {cut_n} photos)" if cut_n else ""), "small_people": len(small), "images": len(es), "people": len(names), "classifier": model, "balance": mode, "folds": cv.folds,
                "accuracy": round(cv.mean_accuracy, 4), "accuracy_sd": round(cv.std_accuracy, 4),
                "balanced_accuracy": round(float(np.mean(list(rec.values()))), 4),
                "small_class_recall": round(float(np.mean([rec[c] for c in small])), 4) if small else None,
                "augmented_copies": int(len(extra.source)) if mode == "augment" and extra is not None else 0,
                "seconds": round(secs + (aug_secs if mode == "augment" else 0.0), 1),
            }
            rows.append(row)
            print(f"| {model} | {mode} | {row['accuracy']:.4f} ± {row['accuracy_sd']:.4f} | {row['balanced_accuracy']:.4f} | {row['small_class_recall']} | {row['seconds']} |")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FACELAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--set", default="lfw")
    ap.add_argument("--models", default="svm,logreg")
    ap.add_argument("--modes", default="none,weights,augment")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--small", type=int, default=6, help="people with at most this many photos count as small classes")
    ap.add_argument("--cuts", default="0,3", help="for each value, keep only this many photos of every other person (0: the set as it is)")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "class_balance.json"))
    args = ap.parse_args()
    full = reference_set(args.set, args.data, progress=True)
    rows = []
    for cut_n in [int(c) for c in args.cuts.split(",")]:
        rows += run(full, cut_n, args)
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "folds": args.folds, "cores": os.cpu_count()}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
