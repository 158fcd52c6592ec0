"""68-point landmark models on an annotated CSV + images folder: NME, failure rate, ms per face.

Every model gets the same faces with the same boxes (one HOG detection per
image, matched to the annotation; images the detector misses are left out for
all), in one process, one after the other, so the timings are comparable
(ratios; absolute numbers depend on the machine's load).  ``ms_per_face`` is
the landmark model alone (crop + inference + mapping back), one face per call.

Default data: the held-out persons of ``../shared/data/keypoints68`` (split
``test``, never used in training: :func:`facelab.evaluate.landmarks.split_of`).

Usage:
    python benchmarks/landmarks.py [--data DIR|CSV] [--split test|val|train|all] [--limit N]
                                   [--models dlib68,cnn68,path.onnx] [--repeat 3] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.environ.get("FACELAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")), "keypoints68"))
    ap.add_argument("--split", default="test", choices=["test", "val", "train", "all"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--models", default="dlib68,cnn68")
    ap.add_argument("--repeat", type=int, default=3, help="timing passes per model (the fastest is kept)")
    ap.add_argument("--ced", default=str(ROOT / "benchmarks" / "results" / "landmarks_ced.png"))
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "landmarks.json"))
    args = ap.parse_args()

    import onnxruntime as ort

    from facelab.errors import FacelabError
    from facelab.evaluate.landmarks import ced_plot, prepare_faces, read_keypoints, score_model, subset

    try:
        samples = subset(read_keypoints(args.data), args.split, args.limit)
        faces, missed = prepare_faces(samples, "hog", progress=True)
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        scores = []
        for m in models:
            best = None
            for _ in range(max(1, args.repeat)):  # accuracy is the same every pass; keep the fastest timing
                s = score_model(m, faces, missed=len(missed), name=Path(m).name if m.endswith(".onnx") else m)
                best = s if best is None or s.ms_per_face < best.ms_per_face else best
            scores.append(best)
    except FacelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    for s in scores:
        d = s.to_dict()
        rows.append({"model": s.model, "nme": d["nme"], "failure_rate": d["failure_rate"], "n": s.n, "ms_per_face": d["ms_per_face"],
                     "median_nme": d["median_nme"], "auc_0.1": d["auc_0.1"], "region_nme": d["region_nme"], "missed": s.missed})
    print(f"\n{args.data} split={args.split}: {len(samples)} images, {len(faces)} faces found by HOG ({len(missed)} missed, left out)")
    print(f"{'model':16s} {'NME':>7s} {'median':>7s} {'fail>0.1':>8s} {'AUC@0.1':>8s} {'eyes':>7s} {'brows':>7s} {'nose':>7s} {'mouth':>7s} {'jaw':>7s} {'ms/face':>8s}")
    for r in rows:
        g = r["region_nme"]
        print(
            f"{r['model']:16s} {r['nme']:7.4f} {r['median_nme']:7.4f} {100 * r['failure_rate']:7.1f}% {r['auc_0.1']:8.3f} "
            f"{g['eyes']:7.4f} {g['brows']:7.4f} {g['nose']:7.4f} {g['mouth']:7.4f} {g['jaw']:7.4f} {r['ms_per_face']:8.2f}"
        )
    os.makedirs(os.path.dirname(args.json_out), exist_ok=True)
    with open(args.json_out, "w") as f:
        json.dump(
            {"data": args.data, "split": args.split, "images": len(samples), "faces": len(faces), "rows": rows,
             "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "onnxruntime": ort.__version__,
                         "loadavg": os.getloadavg()}},
            f, indent=2,
        )
    ced_plot(scores, args.ced)
    print(f"\nwrote {args.json_out} and {args.ced}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
