"""Clustering faces into people on LFW View 1: pairwise precision / recall / F per method and threshold.

    python benchmarks/cluster_lfw.py [--lfw ../shared/data/lfw/lfw-deepfunneled] [--cache /tmp/lfw-embed.parquet]

1. Embeds every View 1 image with ``facelab batch embed`` (HOG at native scale,
   ``min_face`` 80, flip averaging; resumable, kept in ``--cache``), the label
   being the person's folder; the largest face of each image is used.
2. Clusters two sets: ``all`` (every image: 3,095 people, 1,930 of them with a
   single photo, so most faces must stay alone) and ``min5`` (the 81 people with
   at least 5 photos: dense groups).
3. Sweeps the linking threshold and the mutual-neighbour count of Chinese
   whispers (plus dlib's all-pairs linking, ``neighbours`` 100), the threshold
   of DBSCAN, and runs HDBSCAN; prints a table and writes ``--json-out``.
   facelab's defaults (``facelab.batch.cluster.DEFAULT_THRESHOLDS``, 5
   neighbours) are the ``cw`` setting with the best mean F over both sets.
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

from facelab.batch import BatchOptions, read_rows, run_batch
from facelab.batch.cluster import cluster_embeddings
from facelab.evaluate.clustering import pairwise_scores


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
        trials = [("cw", t, k) for k in (3, 4, 5, 8) for t in (0.45, 0.475, 0.5)] + [("cw", 0.5, 100)]
        trials += [("dbscan", t, None) for t in (0.4, 0.45, 0.5)] + [("hdbscan", None, None)]
        for method, thr, k in trials:
            t0 = time.perf_counter()
            c = cluster_embeddings(x, method=method, threshold=thr, min_size=2, neighbors=k or 5)
            dt = time.perf_counter() - t0
            sc = pairwise_scores(truth, c.labels.tolist())
            rows.append(
                {"set": set_name, "faces": len(d), "people": int(d["label"].nunique()), "method": method, "threshold": thr, "neighbors": k, "clusters": c.n_clusters,
                 **sc.to_dict(), "seconds": round(dt, 2)}
            )  # fmt: skip
    print("| set | faces | people | method | threshold | neighbours | clusters | precision | recall | F | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        thr = "-" if r["threshold"] is None else f"{r['threshold']:.3f}"
        k = "-" if r["neighbors"] is None else str(r["neighbors"])
        print(f"| {r['set']} | {r['faces']} | {r['people']} | {r['method']} | {thr} | {k} | {r['clusters']} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f_score']:.4f} | {r['seconds']:.2f} |")
    Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json_out).write_text(json.dumps({"benchmark": "cluster_lfw", "embed": {"min_face": 80, "flip": True, "detector": "hog"}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
