"""LFW verification: facelab vs face_recognition on the same images, in the same run.

    python benchmarks/lfw_verify.py --lfw ../shared/data/lfw/lfw-deepfunneled \
        --pairs ../shared/data/lfw/pairsDevTest.txt --train-pairs ../shared/data/lfw/pairsDevTrain.txt

* View 1 (``pairsDevTest.txt``): the threshold is chosen on ``--train-pairs``
  (``pairsDevTrain.txt``) and accuracy reported on the test pairs; ± is the
  standard deviation over 10 equal parts of the test pairs.
* View 2 (``pairs.txt``, first line ``10 300``): the LFW 10-fold protocol, the
  threshold chosen on 9 folds and tested on the 10th; ± over the folds.

face_recognition (``pip install --no-deps face_recognition``; it uses the same dlib
models) runs its API, ``face_encodings(img)[0]``, at its documented 0.6 tolerance, in
a pool of ``--workers`` processes (``multiprocessing``, as its own CLI's ``--cpus`` does),
the same number of processes facelab's pipeline runs in: equal cores for both; an image
where it finds no face makes its pairs count as "different".
Writes ``--json-out`` (default benchmarks/results/lfw_verify.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from facelab.api import VERIFY_DETECTOR, VERIFY_MIN_FACE
from facelab.evaluate import accuracy_at, best_threshold, kfold_accuracy, read_pairs
from facelab.pipeline import FaceAnalysis
from facelab.runner import default_workers, run_many

#: The pipeline measured here (and recommended for verification of photos like LFW's).
#: (facelab.verify's detection, with the central face picked: LFW images are centred on their subject)
PIPELINE = dict(detector=VERIFY_DETECTOR, landmarks=None, embedder="dlib", flip=True, pick="central", detector_options={"min_face": VERIFY_MIN_FACE})


def facelab_embeddings(paths: list[str], workers: int) -> tuple[dict[str, np.ndarray | None], float, dict]:
    job = FaceAnalysis(**PIPELINE)
    t = time.perf_counter()
    out: dict[str, np.ndarray | None] = {}
    stats = {"no_face": 0, "errors": 0}
    for r in run_many(job, paths, workers=workers, chunksize=16):
        if r.error:
            stats["errors"] += 1
        if r.faces:
            out[r.source] = r.faces[0].embedding.vector
        else:
            out[r.source] = None
            stats["no_face"] += 1
    return out, time.perf_counter() - t, stats


def _fr_encoding(path: str) -> np.ndarray | None:
    import face_recognition

    encs = face_recognition.face_encodings(face_recognition.load_image_file(path))
    return np.asarray(encs[0]) if encs else None


def baseline_embeddings(paths: list[str], workers: int) -> tuple[dict[str, np.ndarray | None], float, dict]:
    """face_recognition's API over ``paths`` in a pool of ``workers`` processes (the time includes starting them)."""
    import multiprocessing as mp

    t = time.perf_counter()
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            encs = pool.map(_fr_encoding, paths, chunksize=16)
    else:
        encs = [_fr_encoding(p) for p in paths]
    out = dict(zip(paths, encs))
    return out, time.perf_counter() - t, {"no_face": sum(v is None for v in out.values())}


def pair_distances(pairs, emb) -> np.ndarray:
    d = np.full(len(pairs), np.inf)
    for i, p in enumerate(pairs):
        a, b = emb.get(p.a), emb.get(p.b)
        if a is not None and b is not None:
            d[i] = float(np.linalg.norm(a - b))
    return d


def score(pairs, train_pairs, emb, fixed_threshold: float | None = None) -> dict:
    """Accuracy (and its spread) for one method."""
    d = pair_distances(pairs, emb)
    y = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    if len(set(folds)) > 1:  # View 2: 10-fold protocol
        if fixed_threshold is None:
            mean, std, accs, thrs = kfold_accuracy(d, y, folds)
            return {"accuracy": mean, "accuracy_std": std, "threshold": float(np.mean(thrs)), "protocol": "10-fold"}
        accs = [accuracy_at(d[folds == k], y[folds == k], fixed_threshold) for k in np.unique(folds)]
        return {"accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)), "threshold": fixed_threshold, "protocol": "10-fold"}
    if fixed_threshold is None:
        if not train_pairs:
            raise SystemExit("a View 1 pairs file needs --train-pairs to choose the threshold")
        dt = pair_distances(train_pairs, emb)
        yt = np.array([p.same for p in train_pairs])
        thr, train_acc = best_threshold(dt, yt)
    else:
        thr, train_acc = fixed_threshold, None
    parts = np.array_split(np.random.default_rng(0).permutation(len(pairs)), 10)
    accs = [accuracy_at(d[ix], y[ix], thr) for ix in parts]
    res = {"accuracy": accuracy_at(d, y, thr), "accuracy_std": float(np.std(accs)), "threshold": thr, "protocol": "View 1 (threshold from train pairs)"}
    if train_acc is not None:
        res["train_accuracy"] = train_acc
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", required=True, help="lfw(-deepfunneled) folder: <Person>/<Person>_NNNN.jpg")
    ap.add_argument("--pairs", required=True, help="pairsDevTest.txt (View 1) or pairs.txt (View 2)")
    ap.add_argument("--train-pairs", help="pairsDevTrain.txt: chooses the threshold for View 1")
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--no-baseline", action="store_true", help="skip face_recognition")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N pairs of each file (quick runs)")
    ap.add_argument("--json-out", default="benchmarks/results/lfw_verify.json")
    a = ap.parse_args(argv)

    pairs = read_pairs(a.pairs, a.lfw)
    train = read_pairs(a.train_pairs, a.lfw) if a.train_pairs else []
    if a.limit:
        pairs = pairs[: a.limit // 2] + pairs[len(pairs) // 2 : len(pairs) // 2 + a.limit // 2] if len({p.fold for p in pairs}) == 1 else pairs[: a.limit]
        train = train[: a.limit // 2] + train[len(train) // 2 : len(train) // 2 + a.limit // 2]
    test_paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    all_paths = sorted(set(test_paths) | {p.a for p in train} | {p.b for p in train})
    missing = [p for p in all_paths if not os.path.exists(p)]
    if missing:
        raise SystemExit(f"{len(missing)} images not found, e.g. {missing[0]}")
    print(f"{len(pairs)} test pairs, {len(test_paths)} test images; {len(train)} train pairs; workers={a.workers}", file=sys.stderr)

    # speed is measured on the test images; train images only serve the threshold choice
    fl_test, fl_s, fl_stats = facelab_embeddings(test_paths, a.workers)
    fl_emb = dict(fl_test)
    rest = [p for p in all_paths if p not in fl_emb]
    if rest:
        more, _, st = facelab_embeddings(rest, a.workers)
        fl_emb.update(more)
    fl = score(pairs, train, fl_emb)
    fl.update(images=len(test_paths), seconds=fl_s, images_per_s=len(test_paths) / fl_s, workers=a.workers, **fl_stats)

    result = {"dataset": os.path.basename(a.pairs), "pairs": len(pairs), "pipeline": PIPELINE, **{k: fl[k] for k in ("accuracy", "accuracy_std", "images_per_s")}, "facelab": fl}
    if not a.no_baseline:
        try:
            import face_recognition  # noqa: F401
        except ImportError:
            raise SystemExit("face_recognition is not installed: pip install --no-deps face_recognition (or pass --no-baseline)")
        bl_emb, bl_s, bl_stats = baseline_embeddings(test_paths, a.workers)
        bl = score(pairs, [], bl_emb, fixed_threshold=0.6)
        bl_cal = score(pairs, [], bl_emb) if len({p.fold for p in pairs}) > 1 else None
        if bl_cal is None and train:
            tr_emb, _, _ = baseline_embeddings([p for p in all_paths if p not in bl_emb], a.workers)
            bl_emb.update(tr_emb)
            bl_cal = score(pairs, train, bl_emb)
        result["baseline"] = {"name": "face_recognition", "accuracy": bl["accuracy"], "accuracy_std": bl["accuracy_std"], "threshold": 0.6, "images_per_s": len(test_paths) / bl_s, "workers": a.workers, **bl_stats}
        if bl_cal:
            result["baseline"]["accuracy_calibrated"] = bl_cal["accuracy"]
            result["baseline"]["threshold_calibrated"] = bl_cal["threshold"]
        result["speed_ratio"] = fl["images_per_s"] / result["baseline"]["images_per_s"]

    rows = [("facelab", fl["accuracy"], fl["accuracy_std"], fl["threshold"], fl["images_per_s"], a.workers)]
    if "baseline" in result:
        b = result["baseline"]
        rows.append(("face_recognition @0.6", b["accuracy"], b["accuracy_std"], 0.6, b["images_per_s"], a.workers))
        if "accuracy_calibrated" in b:
            rows.append(("face_recognition calibrated", b["accuracy_calibrated"], float("nan"), b["threshold_calibrated"], b["images_per_s"], a.workers))
    print(f"\n{'method':30s} {'accuracy':>16s} {'threshold':>10s} {'images/s':>10s} {'workers':>8s}")
    for name, acc, std, thr, ips, w in rows:
        print(f"{name:30s} {acc * 100:8.2f}% ± {std * 100:4.2f} {thr:10.4f} {ips:10.1f} {w:8d}")
    if "speed_ratio" in result:
        print(f"\nspeed ratio facelab / face_recognition, both in {a.workers} process(es): {result['speed_ratio']:.2f}x")
    Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json_out).write_text(json.dumps(result, indent=2))
    print(f"wrote {a.json_out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
