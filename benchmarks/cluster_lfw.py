"""Clustering faces into people on LFW View 1: pairwise precision / recall / F per method and threshold.

    python benchmarks/cluster_lfw.py [--lfw ../shared/data/lfw/lfw-deepfunneled] [--cache /tmp/lfw-embed.parquet]

1. Embeds every View 1 image with ``facelab batch embed`` (HOG at native scale,
   ``min_face`` 80, flip averaging; resumable, kept in ``--cache``), the label
   being the person's folder; the largest face of each image is used.
2. Clusters two sets: ``all`` (every image: 3,095 people, 1,930 of them with a
   single photo, so most faces must stay alone) and ``min5`` (the 81 people with
   at least 5 photos: dense groups).
3. Sweeps the linking threshold of Chinese whispers and DBSCAN, and runs HDBSCAN;
   prints a table and writes ``--json-out``.  The best ``cw`` threshold on ``all``
   is facelab's default (``facelab.batch.cluster.DEFAULT_THRESHOLDS``).
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
DATA = Path(os.environ.get("FACELAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT / "src"))

from facelab.batch import BatchOptions, read_rows, run_batch  # noqa: E402
from facelab.batch.cluster import cluster_embeddings  # noqa: E402
from facelab.evaluate.clustering import pairwise_scores  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=str(DATA / "lfw" / "lfw-deepfunneled"))
    ap.add_argument("--cache", default="/tmp/facelab-bench-lfw-embed.parquet")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "cluster_lfw.json"))
    a = ap.parse_args()

    s = run_batch("embed", a.lfw, a.cache, workers=a.workers, options=BatchOptions(min_face=80, landmarks=None, actions=()), label_from_folder=True)
    print(f"embedded: {s.processed} new, {s.skipped} cached ({s.images_per_s:.2f} images/s)", file=sys.stderr)
    df = read_rows(a.cache, columns=["source", "label", "face", "embedding"]).to_pandas()
    df = df[(df["face"] == 0) & df["embedding"].notna()].reset_index(drop=True)
    counts = df["label"].value_counts()
    sets = {"all": df, "min5": df[df["label"].isin(counts[counts >= 5].index)].reset_index(drop=True)}
    rows = []
    for set_name, d in sets.items():
        x = np.stack(d["embedding"].to_numpy()).astype(np.float32)
        truth = d["label"].tolist()
        trials = [("cw", t) for t in (0.4, 0.45, 0.5, 0.55, 0.6)] + [("dbscan", t) for t in (0.4, 0.45, 0.5, 0.55)] + [("hdbscan", None)]
        for method, thr in trials:
            t0 = time.perf_counter()
            c = cluster_embeddings(x, method=method, threshold=thr, min_size=2)
            dt = time.perf_counter() - t0
            sc = pairwise_scores(truth, c.labels.tolist())
            rows.append(
                {"set": set_name, "faces": len(d), "people": int(d["label"].nunique()), "method": method, "threshold": thr, "clusters": c.n_clusters,
                 **sc.to_dict(), "seconds": round(dt, 2)}
            )  # fmt: skip
    print(f"{'set':6s} {'faces':>5s} {'people':>6s} {'method':8s} {'thr':>5s} {'clusters':>8s} {'precision':>9s} {'recall':>7s} {'F':>6s} {'s':>6s}")
    for r in rows:
        thr = "-" if r["threshold"] is None else f"{r['threshold']:.2f}"
        print(f"{r['set']:6s} {r['faces']:5d} {r['people']:6d} {r['method']:8s} {thr:>5s} {r['clusters']:8d} {r['precision']:9.4f} {r['recall']:7.4f} {r['f_score']:6.4f} {r['seconds']:6.2f}")
    Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json_out).write_text(json.dumps({"benchmark": "cluster_lfw", "embed": {"min_face": 80, "flip": True, "detector": "hog"}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
