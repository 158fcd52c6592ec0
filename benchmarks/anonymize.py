"""How completely `facelab.anonymize` covers faces, and how fast.

On the face-boxes validation photos (the 88 photos blazeface_ft was not trained on,
facelab/evaluate/face_boxes.py), as they are and turned by 30 and -45 degrees: the share of annotated
faces whose box is >= 90 % covered, for faces >= 20 px and < 20 px; ms per image; and frames/s of
`facelab.video.stream(anonymize=...)` on a clip built from the sample photos (facelab/video/synth.py).
`--split train` measures the training photos (what margin, ellipse size and the swept faces' check
threshold were chosen on); `--min-logits none,0,1.5` gives one row per check threshold from one pass.
"Unmatched covers" counts covered regions whose face box overlaps no annotated face (false boxes, or
faces the annotators left out): what a user sees as needlessly blurred patches.

    python benchmarks/anonymize.py --data ../shared/data/face-boxes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import facelab  # noqa: E402
from facelab.anonymize import DEFAULT_MARGIN, SWEEP_MIN_LOGIT, cover, find_faces_and_rolls, region_of  # noqa: E402
from facelab.detect.orient import overlap_small  # noqa: E402
from facelab.detect.rotate import apply_affine, rotate_image  # noqa: E402
from facelab.evaluate import voc_dataset  # noqa: E402
from facelab.evaluate.face_boxes import split  # noqa: E402
from facelab.types import Box  # noqa: E402

GOAL_BIG, GOAL_SMALL, SMALL = 0.95, 0.80, 20


def rotate_with_boxes(image: np.ndarray, boxes: list[Box], angle: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """The image turned by ``angle`` (canvas grown to hold it) and each box as a 4-point polygon in it."""
    out, m = rotate_image(image, angle)
    return out, [apply_affine(m, b.corners()) for b in boxes]


def coverage(shape: tuple[int, int], covered_mask: np.ndarray, poly: np.ndarray) -> float:
    box = np.zeros(shape, np.uint8)
    cv2.fillPoly(box, [np.round(poly * 16).astype(np.int32)], 255, shift=4)
    inside = box > 0
    n = int(inside.sum())
    return float((covered_mask & inside).sum()) / n if n else 1.0


def covered_mask(regions, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for r in regions:
        r.draw_mask(m)
    return m > 0


def _row(r: dict) -> dict:
    big, small = np.array(r["big"]), np.array(r["small"])
    return {
        "faces_ge20": len(big), "covered_ge20": round(float((big >= 0.9).mean()), 4) if len(big) else None,
        "faces_lt20": len(small), "covered_lt20": round(float((small >= 0.9).mean()), 4) if len(small) else None,
        "unmatched_covers_per_image": round(float(np.mean(r["unmatched"])), 3),
        "unmatched_area_share": round(float(np.mean(r["unmatched_area"])), 4),
        "ms_per_image": round(float(np.median(r["ms"])), 1),
    }


def run_photos(data, angles, margin: float, method: str, min_logits: list[float | None] | None = None) -> dict:
    """Rows per angle (and ``all``); with several ``min_logits``, one such table per threshold (``"min_logit=<t>"``)."""
    min_logits = [SWEEP_MIN_LOGIT] if min_logits is None else min_logits
    rows = {t: {a: {"big": [], "small": [], "ms": [], "unmatched": [], "unmatched_area": []} for a in angles} for t in min_logits}
    for path, boxes in data:
        img = facelab.load_image(path)
        for a in angles:
            im, polys = rotate_with_boxes(img, boxes, a) if a else (img, [np.array([[b.left, b.top], [b.right, b.top], [b.right, b.bottom], [b.left, b.bottom]]) for b in boxes])
            t0 = time.perf_counter()
            faces, rolls = find_faces_and_rolls(im, min_logit=-np.inf if any(t is not None for t in min_logits) else None)
            ms = (time.perf_counter() - t0) * 1000
            truth = [Box(float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())) for p in polys]
            for t in min_logits:
                keep = [(f, r) for f, r in zip(faces, rolls) if t is None or getattr(f, "check_logit", np.inf) >= t]
                regions = [region_of(f, margin=margin, method=method, angle=r) for f, r in keep]
                t1 = time.perf_counter()
                cover(im, regions)
                row = rows[t][a]
                row["ms"].append(ms + (time.perf_counter() - t1) * 1000)
                mask = covered_mask(regions, im.shape[:2])
                unmatched = [g for g, (f, _) in zip(regions, keep) if not any(overlap_small(f.box, b) >= 0.3 for b in truth)]
                row["unmatched"].append(len(unmatched))
                row["unmatched_area"].append(float(covered_mask(unmatched, im.shape[:2]).mean()))
                for b, p in zip(boxes, polys):
                    row["big" if min(b.width, b.height) >= SMALL else "small"].append(coverage(im.shape[:2], mask, p))
    out: dict = {}
    for t, by_angle in rows.items():
        table = {str(a): _row(r) for a, r in by_angle.items()}
        table["all"] = _row({k: sum((r[k] for r in by_angle.values()), []) for k in ("big", "small", "ms", "unmatched", "unmatched_area")})
        if len(min_logits) == 1:
            return table
        out[f"min_logit={t}"] = table
    return out


def run_video(frames: int, method: str, every: int = 1) -> dict:
    from facelab.video import stream, write_video
    from facelab.video.synth import Actor, head_crop, scene

    tmp = Path(tempfile.mkdtemp(prefix="facelab-anon-"))
    obama = head_crop(facelab.load_image(ROOT / "samples" / "known" / "obama.jpg"))
    biden = head_crop(facelab.load_image(ROOT / "samples" / "known" / "biden.jpg"))
    actors = [Actor(obama, int(frames * 0.1), int(frames * 0.7), 10, 430, 40), Actor(biden, int(frames * 0.35), int(frames * 0.95), 470, 360, 170)]
    video = write_video(tmp / "walk.mp4", scene(actors, frames, (640, 360)), fps=15)
    stream(video, anonymize=method, max_frames=3)  # load the models before timing
    res = stream(video, anonymize=method, every=every, out=tmp / "anon.mp4")
    return {"every": every, "frames": res.frames, "fps": round(res.fps, 2), "seconds": round(res.seconds, 2), "size": [640, 360]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "face-boxes"))
    ap.add_argument("--split", default="val", choices=("val", "train"))
    ap.add_argument("--angles", default="0,30,-45")
    ap.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    ap.add_argument("--method", default="blur")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--min-logits", default=None, help=f"comma-separated check thresholds for swept faces (none: cover all); default {SWEEP_MIN_LOGIT}")
    ap.add_argument("--video-frames", type=int, default=150)
    ap.add_argument("--video-every", default="1,5", help="detect on every N-th frame (tracks cover the frames between)")
    ap.add_argument("--only-video", action="store_true", help="re-measure the video only (photo rows kept from --json-out)")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    path = Path(a.json_out or ROOT / "benchmarks" / "results" / f"anonymize{'' if a.split == 'val' else '_' + a.split}.json")
    data = split(voc_dataset(a.data), a.split)
    if a.limit:
        data = data[: a.limit]
    angles = [float(x) for x in a.angles.split(",")]
    logits = None if a.min_logits is None else [None if x.strip().lower() == "none" else float(x) for x in a.min_logits.split(",")]
    photos = json.loads(path.read_text())["photos"] if a.only_video else run_photos(data, angles, a.margin, a.method, logits)
    tables = photos if logits is not None and len(logits) > 1 else {"": photos}
    for name, table in tables.items():
        print(name)
        print(f"{'angle':>6s} {'faces>=20':>9s} {'covered':>8s} {'faces<20':>9s} {'covered':>8s} {'unmatched/img':>13s} {'its area':>8s} {'ms/img':>7s}")
        for k, r in table.items():
            print(f"{k:>6s} {r['faces_ge20']:9d} {r['covered_ge20']!s:>8s} {r['faces_lt20']:9d} {r['covered_lt20']!s:>8s} "
                  f"{r.get('unmatched_covers_per_image', float('nan')):13.3f} {r.get('unmatched_area_share', float('nan')):8.4f} {r['ms_per_image']:7.1f}")
    video = [run_video(a.video_frames, a.method, int(e)) for e in a.video_every.split(",")] if a.video_frames else None
    for v in video or ():
        print(f"video 640x360, {v['frames']} frames, detecting on every {v['every']}: {v['fps']} frames/s (sweep on, {a.method})")
    out = {
        "benchmark": "anonymize",
        "data": f"face-boxes {a.split} photos ({len(data)}), turned by {a.angles} degrees",
        "method": a.method, "margin": a.margin, "detector": "blazeface_ft + rotation sweep (±15/30/45)",
        "sweep_min_logit": SWEEP_MIN_LOGIT if logits is None else logits,
        "goal": {"covered_ge20": GOAL_BIG, "covered_lt20": GOAL_SMALL, "covered_means": "share of annotated boxes >= 90 % inside a covered region"},
        "photos": photos, "video": video,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_at_end": os.getloadavg()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
