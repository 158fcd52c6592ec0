"""Calibrate the gallery's open-set threshold (``facelab.gallery.calibration``) on real faces.

Protocol (per data set, per matching mode ``nearest`` / ``centroid``):
half of the people (random) enrol ``--per-person`` random photos each into a
fresh SQLite gallery; their other photos are known probes, every photo of the
other half are strangers.  Each probe gets the distance to its best-matching
person.  ``--splits`` random splits: the threshold is chosen on the first
half of the splits (maximum open-set accuracy: the right name, or "unknown"
for a stranger) and reported on the other half.

Data: LFW View 1 images, people with >= 5 photos (81 people, 472 images);
ORL (40 x 10, grey 92x112); Yale (15 x 11, flat folder).

Usage: python benchmarks/identify_openset.py [--data ../shared/data] [--json-out benchmarks/results/identify_openset.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.evaluate.identities import OpenSetTrials, best_open_set_threshold, gallery_open_set_trials  # noqa: E402
from facelab.train.dataset import reference_set  # noqa: E402



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FACELAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--sets", default="lfw,orl,yale")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--per-person", type=int, default=3)
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "identify_openset.json"))
    args = ap.parse_args()

    rows = []
    for name in args.sets.split(","):
        t = time.perf_counter()
        es = reference_set(name, args.data, progress=True)
        embed_s = time.perf_counter() - t
        for match in ("nearest", "centroid"):
            trials = []
            with tempfile.TemporaryDirectory() as tmp:
                for s in range(args.splits):
                    trials.append(gallery_open_set_trials(es, os.path.join(tmp, f"{match}{s}.db"), match=match, per_person=args.per_person, seed=s))
            half = max(1, args.splits // 2)
            cal, test = OpenSetTrials.concat(trials[:half]), OpenSetTrials.concat(trials[half:] or trials[:half])
            thr, cal_acc = best_open_set_threshold(cal.known_dist, cal.known_correct, cal.stranger_dist)
            row = {
                "data": name,
                "match": match,
                "people": len(es.classes),
                "images": len(es),
                "per_person": args.per_person,
                "splits": args.splits,
                "threshold": round(thr, 4),
                "calibration_accuracy": round(cal_acc, 4),
                **{f"test_{k}": v for k, v in test.accuracy_at(thr).items()},
                "test_at_0.6": test.accuracy_at(0.6)["open_set_accuracy"],
                "embed_s": round(embed_s, 1),
            }
            rows.append(row)
            print(
                f"{name:5s} {match:8s} threshold {row['threshold']:.3f}  open-set acc {row['test_open_set_accuracy']:.4f}  "
                f"known named {row['test_known_identified']:.4f}  strangers unknown {row['test_strangers_unknown']:.4f}  "
                f"rank-1 {row['test_closed_set_rank1']:.4f}  (at 0.6: {row['test_at_0.6']:.4f})"
            )
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
