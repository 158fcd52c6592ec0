"""dlib vs onnxruntime speed (and equality) for dlib's two CNNs.

Converts ``dlib_face_recognition_resnet_model_v1.dat`` and
``mmod_human_face_detector.dat`` (from face_recognition_models) to ONNX with
facelab._dlibdnn, then times

* the ResNet face descriptor: dlib ``compute_face_descriptor`` (single chip and
  a batch list) vs onnxruntime at batch 1 / 16 with 1 / 2 intra-op threads,
  in ms per face;
* the MMOD CNN face detector: ``dlib.cnn_face_detection_model_v1`` vs
  ``facelab._dlibdnn.mmod_detect`` (tiled pyramid + onnxruntime + decoding)
  with 1 / 2 threads, in seconds per image,

prints a table and writes ``benchmarks/results/dlib_onnx_speed.json``.

Usage: python benchmarks/dlib_onnx_speed.py [--quick] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab import _dlibdnn as D


def _timeit(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _load_rgb(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).copy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FACELAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--quick", action="store_true", help="fewer faces / images / repetitions")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dlib_onnx_speed.json"))
    args = ap.parse_args()

    import dlib
    import face_recognition_models as frm
    import onnxruntime as ort

    data = Path(args.data)
    models = Path(frm.__path__[0]) / "models"
    resnet_dat = models / "dlib_face_recognition_resnet_model_v1.dat"
    mmod_dat = models / "mmod_human_face_detector.dat"
    results: dict = {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "dlib": dlib.__version__,
            "onnxruntime": ort.__version__,
            "numpy": np.__version__,
        },
        "conversion": {},
        "resnet": {},
        "mmod": {},
    }

    # ---------------------------------------------------------------- conversion
    with tempfile.TemporaryDirectory() as tmp:
        for name, dat in (("resnet", resnet_dat), ("mmod", mmod_dat)):
            t = time.perf_counter()
            parsed = D.load_dlib_net(dat)
            t_parse = time.perf_counter() - t
            t = time.perf_counter()
            model = D.to_onnx(parsed)
            t_onnx = time.perf_counter() - t
            t = time.perf_counter()
            path = D.converted_onnx_path(dat, cache_dir=tmp)
            t_cached_first = time.perf_counter() - t
            t = time.perf_counter()
            D.converted_onnx_path(dat, cache_dir=tmp)
            t_cached_hit = time.perf_counter() - t
            results["conversion"][name] = {
                "dat_bytes": dat.stat().st_size,
                "params": parsed.num_params,
                "parse_s": t_parse,
                "to_onnx_s": t_onnx,
                "convert_and_cache_s": t_cached_first,
                "cache_hit_s": t_cached_hit,
                "onnx_bytes": len(model.SerializeToString()),
            }
            if name == "resnet":
                resnet_onnx = Path(tmp) / "resnet.onnx"
                resnet_onnx.write_bytes(path.read_bytes())
            else:
                mmod_onnx = Path(tmp) / "mmod.onnx"
                mmod_onnx.write_bytes(path.read_bytes())

        # ------------------------------------------------------------ resnet
        det = dlib.get_frontal_face_detector()
        sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        fr = dlib.face_recognition_model_v1(str(resnet_dat))
        ex = data / "people" / "face_recognition" / "examples"
        files = [str(ex / "obama.jpg"), str(ex / "biden.jpg")]
        files += sorted(glob.glob(str(data / "lfw" / "lfw-deepfunneled" / "*" / "*.jpg")))[:200:8]
        chips = []
        for f in files:
            if not os.path.exists(f):
                continue
            img = _load_rgb(f)
            for box in det(img, 1)[:1]:
                chips.append(dlib.get_face_chip(img, sp(img, box), 150, 0.25))
            if len(chips) >= (8 if args.quick else 16):
                break
        if not chips:
            print(f"no face chips found under {data}; pass --data", file=sys.stderr)
            return 2
        chips = np.stack(chips)
        n = len(chips)
        reps = 2 if args.quick else 3
        ref = np.stack([np.asarray(fr.compute_face_descriptor(c)) for c in chips])
        rs = results["resnet"]
        rs["faces"] = n
        rs["dlib_single_ms_per_face"] = 1000 * _timeit(lambda: [fr.compute_face_descriptor(c) for c in chips], reps) / n
        rs["dlib_batch_list_ms_per_face"] = 1000 * _timeit(lambda: fr.compute_face_descriptor(list(chips)), reps) / n
        rs["onnxruntime"] = {}
        max_diff = 0.0
        for threads in (1, 2):
            sess = D.create_session(resnet_onnx, threads)
            for bs in (1, 16):
                out = D.compute_descriptors(sess, chips, batch_size=bs)
                max_diff = max(max_diff, float(np.abs(out - ref).max()))
                t = _timeit(lambda sess=sess, bs=bs: D.compute_descriptors(sess, chips, batch_size=bs), reps)
                rs["onnxruntime"][f"threads{threads}_batch{bs}_ms_per_face"] = 1000 * t / n
        rs["max_abs_diff_vs_dlib"] = max_diff

        # ------------------------------------------------------------ mmod
        cnn = dlib.cnn_face_detection_model_v1(str(mmod_dat))
        imgs = [ex / "obama.jpg", ex / "two_people.jpg", data / "dlib-faces" / "2008_001322.jpg"]
        if not args.quick:
            imgs.append(data / "dlib-faces" / "2009_004587.jpg")
        sessions = {t: D.create_session(mmod_onnx, t) for t in (1, 2)}
        mm = results["mmod"]
        mm["images"] = []
        for p in imgs:
            if not p.exists():
                continue
            img = _load_rgb(str(p))
            t = time.perf_counter()
            ref_d = cnn(img, 0)
            t_dlib = time.perf_counter() - t
            ref_l = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence) for d in ref_d]
            entry = {"image": p.name, "shape": list(img.shape), "dlib_s": t_dlib, "dlib_faces": len(ref_l)}
            for threads, sess in sessions.items():
                ours = D.mmod_detect(sess, img)
                entry[f"onnx_threads{threads}_s"] = _timeit(lambda sess=sess, img=img: D.mmod_detect(sess, img), 1 if args.quick else 2)
                entry["onnx_faces"] = len(ours)
                if len(ours) == len(ref_l) and ours:
                    entry["max_box_px_diff"] = max(abs(a - b) for r, o in zip(ref_l, ours) for a, b in zip(r[:4], o[:4]))
                    entry["max_conf_diff"] = max(abs(r[4] - o[4]) for r, o in zip(ref_l, ours))
            # where the time goes (1 thread)
            t = time.perf_counter()
            x, _rects = D.create_tiled_pyramid(img)
            entry["tiled_pyramid_s"] = time.perf_counter() - t
            entry["tensor_shape"] = list(x.shape)
            mm["images"].append(entry)

    # ---------------------------------------------------------------- report
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)

    c = results["conversion"]
    print("\nConversion (pure Python parse + ONNX build)")
    print(f"{'model':8s} {'params':>9s} {'parse s':>8s} {'to_onnx s':>10s} {'cached conv s':>14s} {'cache hit s':>12s}")
    for k, v in c.items():
        print(
            f"{k:8s} {v['params']:9d} {v['parse_s']:8.3f} {v['to_onnx_s']:10.3f} {v['convert_and_cache_s']:14.3f} {v['cache_hit_s']:12.4f}"
        )
    print(f"\nResNet face descriptor, ms per 150x150 face ({rs['faces']} faces, max |diff| vs dlib {rs['max_abs_diff_vs_dlib']:.2e})")
    print(f"{'engine':34s} {'ms/face':>8s}")
    print(f"{'dlib compute_face_descriptor':34s} {rs['dlib_single_ms_per_face']:8.1f}")
    print(f"{'dlib batch (list of chips)':34s} {rs['dlib_batch_list_ms_per_face']:8.1f}")
    for k, v in rs["onnxruntime"].items():
        print(f"{'onnxruntime ' + k.replace('_ms_per_face', ''):34s} {v:8.1f}")
    print("\nMMOD CNN face detector, seconds per image (upsample=0)")
    print(f"{'image':24s} {'HxW':>10s} {'dlib s':>7s} {'ort 1t s':>9s} {'ort 2t s':>9s} {'faces':>6s} {'px diff':>8s} {'conf diff':>10s}")
    for e in mm["images"]:
        print(
            f"{e['image']:24s} {e['shape'][0]:>4d}x{e['shape'][1]:<5d} {e['dlib_s']:7.2f} {e['onnx_threads1_s']:9.2f} "
            f"{e['onnx_threads2_s']:9.2f} {e['dlib_faces']:>3d}/{e['onnx_faces']:<2d} "
            f"{e.get('max_box_px_diff', '-')!s:>8s} {e.get('max_conf_diff', float('nan')):10.2e}"
        )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
