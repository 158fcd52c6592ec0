"""Every facelab detector on annotated face boxes: recall, precision, small-face recall, speed.

``DIR`` holds ``images/*.jpg`` and ``annotations/<stem>.xml`` (Pascal VOC, one
``<object>`` per face).  Each detector runs on every image (upright only, no
rotation sweep), boxes are matched greedily at IoU >= 0.5
(:class:`facelab.evaluate.DetectionScore`); ground-truth faces whose box has a
short side < 20 px are scored apart as "small" (their recall is
``recall_small``; detections matched to them are not false positives).
``ms_per_image`` is wall time per image in this process (after one warm-up
image), so compare detectors within one run.

When ``DIR`` is ``../shared/data/face-boxes`` only the held-out validation
photos are scored (``--split auto``; :mod:`facelab.evaluate.face_boxes`): the
fine-tuned ``blazeface_ft`` was trained on the others.

Usage: python benchmarks/detect_boxes.py --boxes DIR [--json-out FILE] [--split auto|val|train|all] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.detect import DEFAULT_DETECTOR, DETECTORS, get_detector  # noqa: E402
from facelab.errors import FacelabError  # noqa: E402
from facelab.evaluate import DetectionScore, voc_dataset  # noqa: E402
from facelab.evaluate.face_boxes import SPLITS, is_face_boxes, split  # noqa: E402
from facelab.io import load_image  # noqa: E402

#: (row name, registered detector, options).  Registered detectors run with their defaults;
#: a few extra rows show options that matter on photos of small faces.
CONFIGS: list[tuple[str, str, dict]] = [
    ("hog", "hog", {}),
    ("hog(upsample=1)", "hog", {"upsample": 1}),
    ("cnn", "cnn", {}),
    ("haar", "haar", {}),
    ("blazeface_short", "blazeface_short", {}),
    ("blazeface(tile=False)", "blazeface", {"tile": False}),
    ("blazeface", "blazeface", {}),
    ("blazeface(tile=True)", "blazeface", {"tile": True}),
    ("blazeface_ft", "blazeface_ft", {}),
    ("blazeface_ft(tile=True)", "blazeface_ft", {"tile": True}),
    ("mtcnn", "mtcnn", {}),
]
SKIP = {"yunet": "needs the user's own .onnx file"}


def configs() -> list[tuple[str, str, dict]]:
    """The rows to run: :data:`CONFIGS` (registered ones) plus any registered detector they do not name."""
    names = set(DETECTORS.names())
    rows = [c for c in CONFIGS if c[1] in names]
    rows += [(n, n, {}) for n in sorted(names - {c[1] for c in CONFIGS} - set(SKIP))]
    return rows


def run_one(name: str, det_name: str, opts: dict, images) -> dict:
    det = get_detector(det_name, **opts)
    det.prepare()
    det.detect(images[0][1])  # warm-up
    score = DetectionScore()
    t = time.perf_counter()
    for stem, img, gt in images:
        score.add(gt, [f.box for f in det.detect(img)], name=stem)
    ms = (time.perf_counter() - t) / len(images) * 1000
    d = score.to_dict()
    d["ms_per_image"] = round(ms, 1)
    d["options"] = opts
    d["detector"] = det_name
    return d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boxes", required=True, help="folder with images/ and annotations/ (VOC XML)")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "detect_boxes.json"))
    ap.add_argument("--split", default="auto", choices=("auto",) + SPLITS, help="auto: the validation part of face-boxes, else all")
    ap.add_argument("--only", nargs="*", help="row names to run (default: all)")
    args = ap.parse_args()
    ds = voc_dataset(args.boxes)
    if not ds:
        print(f"error: no images with VOC annotations under {args.boxes} (expected images/*.jpg and annotations/<stem>.xml)", file=sys.stderr)
        return 2
    which = args.split if args.split != "auto" else ("val" if is_face_boxes(ds) else "all")
    ds = split(ds, which)
    images = [(Path(p).stem, load_image(p), gt) for p, gt in ds]
    rows = [c for c in configs() if not args.only or c[0] in args.only]
    report: dict = {
        "default": DEFAULT_DETECTOR,
        "boxes": os.path.abspath(args.boxes),
        "split": which,
        "images": len(images),
        "iou": 0.5,
        "small": 20,
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "threads": os.environ.get("FACELAB_THREADS", "default")},
        "detectors": {},
        "skipped": dict(SKIP),
    }
    print(f"{len(images)} images ({which}), {sum(len(g) for _, _, g in images)} boxes\n")
    print(f"| {'detector':24s} | recall | precision | small recall | ms/image |")
    print(f"|{'-' * 26}|-------:|----------:|-------------:|---------:|")
    for name, det_name, opts in rows:
        try:
            r = run_one(name, det_name, opts, images)
        except FacelabError as e:
            report["skipped"][name] = str(e)
            print(f"| {name:24s} | skipped: {e}")
            continue
        report["detectors"][name] = r
        print(f"| {name:24s} | {r['recall']:6.3f} | {r['precision']:9.3f} | {r['recall_small']:12.3f} | {r['ms_per_image']:8.1f} |", flush=True)
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(report, indent=2))
    print(f"\ndefault detector: {DEFAULT_DETECTOR}; wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
