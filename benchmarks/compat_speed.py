"""face_recognition vs facelab.compat.face_recognition: the same script, both imports, the same photos.

For every photo: ``load_image_file`` -> ``face_locations`` -> ``face_encodings(img, locations)``,
the loop a face_recognition user writes.  Each implementation runs in its own
fresh subprocess (so neither warms the other's caches); the time counted is
the loop only, after one warm-up image, plus the import / model-load time
reported apart.  The encodings of the two runs are compared face by face.

Rows printed (and written to ``--json-out``):

* ``original``: ``import face_recognition`` (face_recognition 1.3.0 on dlib), one process (dlib uses one core).
* ``original N processes``: the same script over N shares of the photos in N processes at once (what a
  ``multiprocessing`` pool over its API, or its CLI's ``--cpus N``, does): N = ``--cores`` (default 2).
* ``compat``: ``import facelab.compat.face_recognition as face_recognition``
  with ``FACELAB_THREADS=N`` (onnxruntime on N cores).
* ``compat 1 thread``: the same with ``FACELAB_THREADS=1``.
* The ratios compare equal cores: ``compat`` / ``original N processes``, and
  ``compat 1 thread`` / ``original``.
* with ``--twice``: the same loop calling ``face_encodings(img)`` *without* the
  locations after ``face_locations(img)`` (a common pattern that detects twice
  in the original; the drop-in reuses the first detection), one core each.
* with ``--cli``: the ``face_recognition`` command (known people = the first
  ``--known`` photos) over the folder, ``--cpus 1`` and ``--cpus 2``, wall time
  including start-up.

The original is not a facelab dependency; install it next to facelab without
its dependencies (it would try to build dlib; ``dlib-bin`` provides the module)::

    pip install --no-deps face_recognition==1.3.0

Usage: python benchmarks/compat_speed.py [--images DIR ...] [--model hog|cnn] [--upsample 1]
       [--twice] [--cli] [--json-out benchmarks/results/compat_speed.json]

Timings on a shared machine are noisy: compare the rows of one run (the ratio), not runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_IMAGES = [DATA / "people" / "face_recognition" / "examples", DATA / "dlib-faces"]
IMAGE_NAME = re.compile(r".*\.(jpg|jpeg|png)$", flags=re.IGNORECASE)

#: the only difference between the two runs: ``import face_recognition`` vs ``import facelab.compat.face_recognition as face_recognition``
IMPORTS = {"original": "face_recognition", "compat": "facelab.compat.face_recognition"}


def list_images(folders: list[Path], limit: int | None) -> list[str]:
    files = [str(p / f) for p in folders for f in sorted(os.listdir(p)) if IMAGE_NAME.match(f) and (p / f).is_file()]
    return files[:limit] if limit else files


# --- the measured script (runs in a subprocess per implementation) --------------------------------


def worker(impl: str, images: list[str], model: str, upsample: int, twice: bool, out: str) -> None:
    t0 = time.perf_counter()
    fr = importlib.import_module(IMPORTS[impl])
    t_import = time.perf_counter() - t0

    stages = {"load_s": 0.0, "locate_s": 0.0, "encode_s": 0.0}

    def one(path: str):
        t = time.perf_counter()
        img = fr.load_image_file(path)
        t1 = time.perf_counter()
        locations = fr.face_locations(img, number_of_times_to_upsample=upsample, model=model)
        t2 = time.perf_counter()
        encodings = fr.face_encodings(img) if twice else fr.face_encodings(img, locations)
        t3 = time.perf_counter()
        for k, dt in zip(stages, (t1 - t, t2 - t1, t3 - t2)):
            stages[k] += dt
        return locations, encodings

    t0 = time.perf_counter()
    one(images[0])  # warm-up: first use loads the models (lazily in facelab)
    t_first = time.perf_counter() - t0
    results = {}
    stages.update(load_s=0.0, locate_s=0.0, encode_s=0.0)
    t0 = time.perf_counter()
    for path in images:
        results[path] = one(path)
    elapsed = time.perf_counter() - t0
    boxes = {p: [list(map(int, b)) for b in r[0]] for p, r in results.items()}
    enc = {f"{i}": np.asarray(r[1], dtype=np.float64).reshape(-1, 128) for i, r in enumerate(results.values())}
    np.savez(out + ".npz", **enc)
    Path(out + ".json").write_text(
        json.dumps({"import_s": t_import, "first_image_s": t_first, "seconds": elapsed, **stages, "boxes": boxes})
    )


def _start_worker(impl: str, images: list[str], args, out: str, threads: int | None, twice: bool) -> subprocess.Popen:
    env = dict(os.environ)
    if threads:
        env["FACELAB_THREADS"] = str(threads)
    listing = out + ".images.txt"
    Path(listing).write_text("\n".join(images))
    cmd = [sys.executable, __file__, "--worker", impl, "--list", listing, "--model", args.model, "--upsample", str(args.upsample), "--out", out]
    if twice:
        cmd.append("--twice-worker")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _collect(proc: subprocess.Popen, impl: str, out: str, n: int) -> dict:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{impl} run failed:\n{err[-3000:]}")
    res = json.loads(Path(out + ".json").read_text())
    npz = np.load(out + ".npz")
    res["encodings"] = [npz[str(i)] for i in range(n)]
    return res


def run_worker(impl: str, images: list[str], args, tmp: str, threads: int | None = None, twice: bool = False, procs: int = 1) -> dict:
    """The measured loop over ``images`` in ``procs`` processes at once (each a share of the images, as a pool would);
    ``seconds`` is the wall time of the parallel loop (the slowest share), the stage times are summed."""
    parts = [images[i::procs] for i in range(procs)]
    outs = [os.path.join(tmp, f"{impl}-{threads}-{int(twice)}-{procs}-{i}") for i in range(procs)]
    running = [_start_worker(impl, part, args, out, threads, twice) for part, out in zip(parts, outs)]
    res = [_collect(proc, impl, out, len(part)) for proc, out, part in zip(running, outs, parts)]
    merged = {
        "seconds": max(r["seconds"] for r in res), "import_s": max(r["import_s"] for r in res), "first_image_s": max(r["first_image_s"] for r in res),
        **{k: sum(r[k] for r in res) for k in ("load_s", "locate_s", "encode_s")},
        "boxes": {p: b for r in res for p, b in r["boxes"].items()},
    }  # fmt: skip
    by_path = {p: e for part, r in zip(parts, res) for p, e in zip(part, r["encodings"])}
    merged["encodings"] = [by_path[p] for p in images]
    return merged


def run_cli(exe: list[str], known: str, folder: str, cpus: int) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    r = subprocess.run([*exe, known, folder, "--cpus", str(cpus)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(exe)} failed:\n{r.stderr[-3000:]}")
    return wall, sorted(r.stdout.splitlines())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--images",
        action="append",
        type=Path,
        help="folder of photos (repeatable; default: the face_recognition examples and dlib's example photos)",
    )
    ap.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    ap.add_argument("--cores", type=int, default=min(2, os.cpu_count() or 1), help="cores for each side: the compat's threads, the original's processes")
    ap.add_argument("--model", default="hog", choices=["hog", "cnn"])
    ap.add_argument("--upsample", type=int, default=1, help="number_of_times_to_upsample (face_recognition's default: 1)")
    ap.add_argument("--twice", action="store_true", help="also time face_encodings(img) without locations after face_locations(img)")
    ap.add_argument("--cli", action="store_true", help="also time the face_recognition command line tool")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "compat_speed.json"))
    ap.add_argument("--worker", choices=list(IMPORTS), help=argparse.SUPPRESS)
    ap.add_argument("--list", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--twice-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        worker(args.worker, Path(args.list).read_text().splitlines(), args.model, args.upsample, args.twice_worker, args.out)
        return 0

    try:
        import face_recognition  # noqa: F401
    except ImportError:
        raise SystemExit("the original is needed for the comparison: pip install --no-deps face_recognition==1.3.0") from None
    folders = args.images or DEFAULT_IMAGES
    images = list_images(folders, args.limit)
    if not images:
        raise SystemExit(f"no .jpg/.png photos in {', '.join(map(str, folders))}")
    print(f"{len(images)} photos from {', '.join(map(str, folders))}; model={args.model} upsample={args.upsample}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cores = args.cores
        runs = [
            ("original", None, False, 1), (f"original {cores} processes", None, False, cores),
            ("compat", cores, False, 1), ("compat 1 thread", 1, False, 1),
        ]  # fmt: skip
        if args.twice:
            runs += [("original, detect twice", None, True, 1), ("compat, detect twice", 1, True, 1)]
        res = {}
        for label, threads, twice, procs in runs:
            impl = "original" if label.startswith("original") else "compat"
            print(f"  running {label} ...", flush=True)
            res[label] = run_worker(impl, images, args, tmp, threads, twice, procs)
            r = res[label]
            rows.append(
                {
                    "run": label,
                    "images_per_s": len(images) / r["seconds"],
                    "seconds": r["seconds"],
                    "import_s": r["import_s"],
                    "first_image_s": r["first_image_s"],
                    "load_s": r["load_s"],
                    "locate_s": r["locate_s"],
                    "encode_s": r["encode_s"],
                }
            )
        orig, comp = res["original"], res["compat"]
        boxes_identical = all(orig["boxes"][p] == comp["boxes"][p] for p in images)
        diffs = [float(np.abs(a - b).max()) for a, b in zip(orig["encodings"], comp["encodings"]) if a.shape == b.shape and a.size]
        n_faces = int(sum(len(e) for e in orig["encodings"]))
        max_diff = max(diffs) if diffs else 0.0
        if args.twice:
            tw = [
                float(np.abs(a - b).max())
                for a, b in zip(res["original, detect twice"]["encodings"], res["compat, detect twice"]["encodings"])
                if a.size
            ]
            max_diff = max([max_diff, *tw])

        cli_rows = []
        if args.cli:
            folder = str(folders[0])
            known = os.path.join(tmp, "known")
            os.makedirs(known)
            ex = DATA / "people" / "face_recognition" / "examples"
            for name in ("obama.jpg", "biden.jpg"):
                os.symlink(ex / name, os.path.join(known, name))
            bindir = Path(sys.executable).parent
            for cpus in (1, 2):
                w_o, out_o = run_cli([str(bindir / "face_recognition")], known, folder, cpus)
                w_c, out_c = run_cli([str(bindir / "facelab"), "compat", "face_recognition"], known, folder, cpus)
                same = [ln.split(",")[:2] for ln in out_o] == [ln.split(",")[:2] for ln in out_c]
                cli_rows.append({"cpus": cpus, "original_s": w_o, "compat_s": w_c, "ratio": w_o / w_c, "same_names": same})

    o_ips = len(images) / res[f"original {args.cores} processes"]["seconds"]  # the original on as many cores as the compat uses
    c_ips = len(images) / comp["seconds"]
    o1_ips, c1_ips = len(images) / orig["seconds"], len(images) / res["compat 1 thread"]["seconds"]
    result = {
        "cores": args.cores,
        "original_images_per_s": round(o_ips, 4),
        "compat_images_per_s": round(c_ips, 4),
        "ratio": round(c_ips / o_ips, 3),
        "ratio_1_core": round(c1_ips / o1_ips, 3),
        "max_encoding_diff": max_diff,
        "boxes_identical": boxes_identical,
        "images": len(images),
        "faces": n_faces,
        "model": args.model,
        "upsample": args.upsample,
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
        "cli": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in cli_rows],
        "folders": [str(f) for f in folders],
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
    }
    try:
        import dlib
        import onnxruntime

        result["machine"].update({"dlib": dlib.__version__, "onnxruntime": onnxruntime.__version__})
    except ImportError:
        pass

    print()
    print(
        f"{'run':26s} {'images/s':>9s} {'loop s':>8s} {'load s':>7s} {'locate s':>9s} {'encode s':>9s} {'import s':>9s} {'1st image s':>12s}"
    )
    for r in rows:
        print(
            f"{r['run']:26s} {r['images_per_s']:9.3f} {r['seconds']:8.2f} {r['load_s']:7.2f} {r['locate_s']:9.2f} {r['encode_s']:9.2f}"
            f" {r['import_s']:9.2f} {r['first_image_s']:12.2f}"
        )
    print(
        f"\nratio compat/original on {args.cores} cores each: {result['ratio']:.2f}x (1 core each: {result['ratio_1_core']:.2f}x)   boxes identical: {boxes_identical}   faces: {n_faces}   max |encoding diff|: {max_diff:.2e}"
    )
    for c in cli_rows:
        print(
            f"face_recognition CLI --cpus {c['cpus']}: original {c['original_s']:.1f} s, compat {c['compat_s']:.1f} s ({c['ratio']:.2f}x), same output names: {c['same_names']}"
        )
    os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
    Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
