"""Batch throughput: facelab local (1 and 2 workers), facelab on Ray (2 CPUs), face_recognition's CLI (--cpus 1 and 2).

    python benchmarks/batch_scaling.py [--images 300] [--json-out benchmarks/results/batch_scaling.json]

Every engine runs as a user would run it, a command in a fresh process, on the
same images (the first ``--images`` LFW View 1 photos, 250x250, one flat folder
as face_recognition's CLI wants) and does the same work: HOG detection at 2x
(faces down to ~40 px: face_recognition's ``number_of_times_to_upsample=1``,
facelab's ``--min-face 40``), 5-point alignment, one 128-d dlib ResNet
embedding per face (``--no-flip``; face_recognition's ``num_jitters=1``).
face_recognition also compares each face with one known face (negligible).

``images_per_s`` is images / wall-clock time of the whole command (start-up,
model loading and, for Ray, starting the local cluster included), the number a
user sees; ``processing_images_per_s`` is facelab's own count once its workers
run (not available for face_recognition).  The machine is shared and noisy:
compare the rows of one run with each other.

face_recognition is the baseline: ``pip install --no-deps face_recognition``
(its ``face_recognition_models`` needs ``pkg_resources``, which recent
setuptools dropped: the benchmark puts a 5-line stand-in on its PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELAB_SHARED_DATA", ROOT.parent / "shared" / "data"))

PKG_RESOURCES_SHIM = '''"""Stand-in for setuptools' pkg_resources (removed in setuptools 81): what face_recognition_models uses."""
import importlib.util, os

def resource_filename(package, name):
    return os.path.join(os.path.dirname(importlib.util.find_spec(package).origin), name)
'''


def facelab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "facelab.cli", *args]


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return dt, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=str(DATA / "lfw" / "lfw-deepfunneled"))
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--skip-face-recognition", action="store_true")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "batch_scaling.json"))
    a = ap.parse_args()

    lfw = Path(a.lfw)
    photos = sorted(lfw.glob("*/*.jpg"))[: a.images]
    if len(photos) < a.images:
        raise SystemExit(f"only {len(photos)} images under {lfw}")
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    work = Path(tempfile.mkdtemp(prefix="facelab-scaling-"))
    rows = []
    try:
        imgs = work / "images"
        imgs.mkdir()
        for p in photos:
            (imgs / p.name).symlink_to(p)
        common = ["--detector", "hog", "--min-face", "40", "--no-flip", "-q", "--json"]  # the work face_recognition does
        configs = [("local", 1, facelab_cmd("batch", "embed", str(imgs), "-w", "1", *common)),
                   ("local", 2, facelab_cmd("batch", "embed", str(imgs), "-w", "2", *common)),
                   ("ray", 2, facelab_cmd("batch", "embed", str(imgs), "--engine", "ray", "-w", "2", *common))]  # fmt: skip
        if not a.skip_face_recognition:
            exe = shutil.which("face_recognition", path=str(Path(sys.executable).parent)) or shutil.which("face_recognition")
            if exe is None:
                raise SystemExit("face_recognition's CLI is not installed: pip install --no-deps face_recognition (or --skip-face-recognition)")
            known = work / "known"
            known.mkdir()
            (known / "person.jpg").symlink_to(photos[0])
            shim = work / "shim"
            shim.mkdir()
            (shim / "pkg_resources.py").write_text(PKG_RESOURCES_SHIM)
            for cpus in (1, 2):
                configs.append(("face_recognition", cpus, [exe, str(known), str(imgs), "--cpus", str(cpus)]))
        for engine, workers, cmd in configs:
            out = work / f"out-{engine}-{workers}.parquet"
            if engine != "face_recognition":
                cmd = [*cmd, "-o", str(out)]
                env = None
            else:
                env = {"PYTHONPATH": str(work / "shim")}
            dt, stdout = run(cmd, env)
            row = {"engine": engine, "workers": workers, "images": len(photos), "images_per_s": round(len(photos) / dt, 3), "wall_s": round(dt, 2)}
            if engine == "face_recognition":
                lines = [ln for ln in stdout.splitlines() if ln.strip()]
                row["faces"] = sum(1 for ln in lines if not ln.endswith("no_persons_found"))
                row["processing_images_per_s"] = None
            else:
                s = json.loads(stdout)
                row["faces"] = s["faces"]
                row["processing_images_per_s"] = round(s["images_per_s"], 3)
            rows.append(row)
            print(f"{engine:16s} workers {workers}: {row['images_per_s']:.2f} images/s ({dt:.1f} s, {row['faces']} faces)", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = next((r for r in rows if r["engine"] == "local" and r["workers"] == 1), None)
    print("| engine | workers | images | images/s (whole command) | images/s (processing) | faces | vs local x1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        proc = "-" if r["processing_images_per_s"] is None else f"{r['processing_images_per_s']:.2f}"
        ratio = f"{r['images_per_s'] / base['images_per_s']:.2f}x" if base else "-"
        print(f"| {r['engine']} | {r['workers']} | {r['images']} | {r['images_per_s']:.2f} | {proc} | {r['faces']} | {ratio} |")
    meta = {"benchmark": "batch_scaling", "cpus": os.cpu_count(), "load_average_at_start": load0}
    Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json_out).write_text(json.dumps({**meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
