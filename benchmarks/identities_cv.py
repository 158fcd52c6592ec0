"""Identity classifiers on dlib embeddings: frozen embeddings + classifier vs the fine-tuned MLP adapter.

For ORL (40 x 10), Yale (15 x 11) and LFW View 1 people with >= 5 photos
(81 people, 472 images): stratified k-fold CV (``--folds``, fewer when a
person has fewer images) of ``svm``, ``knn``, ``logreg`` and ``mlp`` with
their default grids (nested: chosen inside each training fold), the
open-set accuracy at the threshold chosen from the held-out folds, and the
time.  Prints a Markdown table and writes ``--json-out``
(default ``benchmarks/results/identities_cv.json``).

Usage: nice -n 10 python benchmarks/identities_cv.py [--data ../shared/data] [--sets orl,yale,lfw] [--models svm,knn,logreg,mlp]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.train.dataset import reference_set  # noqa: E402
from facelab.train.identities import APPROACH, GRIDS, cross_validate  # noqa: E402



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FACELAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--sets", default="orl,yale,lfw")
    ap.add_argument("--models", default="svm,knn,logreg,mlp")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "identities_cv.json"))
    args = ap.parse_args()
    rows = []
    print("| data | model | approach | folds | CV accuracy (mean ± sd) | open-set accuracy | threshold | chosen parameters | time (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        es = reference_set(name, args.data, progress=True)
        for model in args.models.split(","):
            t = time.perf_counter()
            cv = cross_validate(es, model, folds=args.folds)
            secs = time.perf_counter() - t
            params = sorted({json.dumps(p, sort_keys=True) for p in cv.fold_params})
            row = {
                "data": name,
                "images": len(es),
                "people": len(es.classes),
                "whole_image_fallback": int(es.fallback.sum()),
                **cv.to_dict(),
                "grid": GRIDS[model],
                "seconds": round(secs, 1),
            }
            rows.append(row)
            print(
                f"| {name} | {model} | {APPROACH[model]} | {cv.folds} | {cv.mean_accuracy:.4f} ± {cv.std_accuracy:.4f} | {cv.open_set_accuracy:.4f} | "
                f"{cv.threshold:.3f} | {', '.join(params)} | {secs:.1f} |",
                flush=True,
            )
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
