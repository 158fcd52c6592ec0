"""Does the detector change LFW verification?  dlib ResNet embeddings from each detector's boxes.

For LFW View 1 ``pairsDevTest.txt`` (500 matched + 500 mismatched pairs; or the
first ``--pairs N`` of each kind), each detector finds the largest face of every
image (as :func:`facelab.largest_face` does, with the default rotation
"auto"), dlib's 5-point model places the landmarks on that box, and the dlib
ResNet embeds the aligned chip.  Reported per detector: images with a face,
accuracy at the embedder's threshold (0.6; a pair with a missed face counts as
wrong), and the best-threshold accuracy on the same pairs (optimistic, but the
same for every detector).

Usage: python benchmarks/lfw_detectors.py [--pairs N] [--detectors hog blazeface ...] [--json-out FILE]
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

from facelab.detect import DETECTORS, detect, get_detector  # noqa: E402
from facelab.embed import get_embedder  # noqa: E402
from facelab.evaluate import accuracy_at, best_threshold, read_pairs  # noqa: E402
from facelab.io import load_image  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FACELAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--pairs", type=int, default=500, help="matched and mismatched pairs to use (each)")
    ap.add_argument("--detectors", nargs="*", default=["hog", "blazeface", "blazeface_ft"])
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "lfw_detectors.json"))
    args = ap.parse_args()
    from rich.progress import Progress

    lfw = Path(args.data) / "lfw"
    pairs = read_pairs(lfw / "pairsDevTest.txt", lfw / "lfw-deepfunneled")
    pairs = [p for p in pairs if p.same][: args.pairs] + [p for p in pairs if not p.same][: args.pairs]
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    images = {p: load_image(p) for p in paths}
    emb = get_embedder("dlib")
    report: dict = {"pairs": len(pairs), "images": len(paths), "threshold": emb.threshold, "detectors": {}}
    print(f"LFW pairsDevTest: {len(pairs)} pairs, {len(paths)} images\n")
    print(f"| detector | images with a face | accuracy @ {emb.threshold} | best-threshold accuracy | ms/image (detect) |")
    print("|---|---:|---:|---:|---:|")
    for name in args.detectors:
        if name not in DETECTORS.names():
            continue
        det = get_detector(name)
        vecs: dict[str, np.ndarray] = {}
        t_det = 0.0
        with Progress(transient=True) as prog:
            task = prog.add_task(name, total=len(paths))
            for p in paths:
                t = time.perf_counter()
                faces = detect(images[p], det)
                t_det += time.perf_counter() - t
                if faces:
                    vecs[p] = emb.embed(images[p], faces[:1])[0].vector
                prog.advance(task)
        ok = [p for p in pairs if p.a in vecs and p.b in vecs]
        d = np.array([np.linalg.norm(vecs[p.a] - vecs[p.b]) if (p.a in vecs and p.b in vecs) else np.inf for p in pairs])
        same = np.array([p.same for p in pairs])
        acc = accuracy_at(d, same, emb.threshold)
        fin = np.isfinite(d)
        _, best = best_threshold(d[fin], same[fin])
        best_all = (best * fin.sum()) / len(pairs)  # missed pairs count as wrong
        r = {
            "images_with_face": len(vecs),
            "pairs_with_faces": len(ok),
            "accuracy": round(acc, 4),
            "best_threshold_accuracy": round(best_all, 4),
            "ms_per_image_detect": round(t_det / len(paths) * 1000, 1),
        }
        report["detectors"][name] = r
        print(f"| {name} | {len(vecs)}/{len(paths)} | {acc:.4f} | {best_all:.4f} | {r['ms_per_image_detect']} |", flush=True)
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
