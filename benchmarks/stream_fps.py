"""Frames per second of ``facelab stream`` on a test video, detecting every frame and every 5th.

The video is built from the sample photos (facelab.video.synth: two people walking across a
640x360 background, 15 fps, ``--frames`` long); Barack Obama is enrolled from another photo.
Each run decodes, detects (HOG, min face 80), tracks, identifies and estimates attributes per
track, draws and writes the annotated MP4: frames/s is frames handled per second of wall time.

Writes rows ``every, fps`` (and frames, processed, seconds, tracks) to ``--json-out``
(default benchmarks/results/stream_fps.json).

Usage: python benchmarks/stream_fps.py [--frames 150] [--every 1,5] [--actions age,gender,emotion]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import facelab  # noqa: E402
from facelab.gallery import Gallery  # noqa: E402
from facelab.video import stream, write_video  # noqa: E402
from facelab.video.synth import Actor, head_crop, scene  # noqa: E402


def make_video(path: Path, n: int) -> Path:
    obama = head_crop(facelab.load_image(ROOT / "samples" / "known" / "obama.jpg"))
    biden = head_crop(facelab.load_image(ROOT / "samples" / "known" / "biden.jpg"))
    actors = [Actor(obama, int(n * 0.1), int(n * 0.7), 10, 430, 40), Actor(biden, int(n * 0.35), int(n * 0.95), 470, 360, 170)]
    return write_video(path, scene(actors, n, (640, 360)), fps=15)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--every", default="1,5")
    ap.add_argument("--actions", default="age,gender,emotion")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "stream_fps.json"))
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="facelab-fps-"))
    video = make_video(tmp / "walk.mp4", args.frames)
    g = Gallery(tmp / "gallery.db", min_face=80)
    g.enroll("Barack Obama", [ROOT / "samples" / "photos" / "obama2.jpg"])
    actions = [a for a in args.actions.split(",") if a]
    stream(video, every=1, gallery=g, actions=actions, max_frames=5)  # load every model before timing
    rows = []
    for every in [int(x) for x in args.every.split(",")]:
        res = stream(video, every=every, gallery=g, actions=actions, out=tmp / f"annotated-{every}.mp4")
        row = {
            "every": every,
            "fps": round(res.fps, 2),
            "frames": res.frames,
            "processed": res.processed,
            "seconds": round(res.seconds, 2),
            "tracks": [{"track": t.id, "name": t.name, "hits": t.hits} for t in res.tracks],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    g.close()
    print(f"\n{'every':>5s} {'frames/s':>9s} {'frames':>7s} {'detected':>9s} {'tracks':>7s}")
    for r in rows:
        print(f"{r['every']:5d} {r['fps']:9.2f} {r['frames']:7d} {r['processed']:9d} {len(r['tracks']):7d}")
    out = {
        "benchmark": "stream_fps",
        "video": {"width": 640, "height": 360, "fps": 15, "frames": args.frames, "people": 2},
        "actions": actions,
        "detector": "hog, min_face 80",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_at_end": os.getloadavg()},
        "rows": rows,
    }
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
