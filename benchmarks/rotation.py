"""Faces at any angle and any photo size: detection, roll and verification on turned and upscaled photos.

Every image is turned here (expanded canvas, ``PIL.Image.rotate(angle, expand=True)``,
counter-clockwise); predicted faces are mapped back to the unturned photo (box
centre through the inverse turn, the face's upright box size) and matched to
the annotations at IoU >= 0.5 (:class:`facelab.evaluate.DetectionScore`, faces
>= 20 px).  ``roll_error_median_deg``: the median over matched faces of the
difference between ``face.rotation`` and the roll the same face gets on the
unturned photo minus the turn (so the face's own tilt does not count).

* detection on ``--boxes`` (the held-out validation photos when it is
  ``../shared/data/face-boxes``: ``blazeface_ft`` was fine-tuned on the others);
* ``--scales``: the unturned photos upscaled k-fold (bicubic), rows per scale;
* verification on LFW ``--pairs`` (View 1 DevTest) with the *second* image of
  each pair turned; threshold 0.6 fixed from the upright calibration on DevTrain
  (README); a pair whose image has no face counts as "different".

facelab detects with the default detector and ``rotate="auto"`` (and ``"off"`` for
the upright timing ratio: ``--timing-rounds`` interleaved rounds, medians) and
verifies the way :func:`facelab.verify` does (:func:`facelab.largest_face`: the
``hog,hog@2,cnn`` chain, flip-averaged embeddings, ``rotate="auto"``; ``--pick``:
the largest face, facelab.verify's default, or the central one, LFW's subject, as
``benchmarks/lfw_verify.py`` picks it);
face_recognition 1.3.0 (``face_locations`` + ``face_encodings``, HOG, no sweep)
runs on the same images in the same run.

Usage: python benchmarks/rotation.py --boxes DIR --lfw DIR --pairs FILE
       [--angles 0,15,30,45,60,90,135,180,-90] [--scales 1,2,4] [--limit-pairs N] [--limit-images N]
       [--timing-images N] [--timing-rounds N] [--no-baseline] --json-out FILE
       python benchmarks/rotation.py --only verification --lfw DIR --pairs FILE [--angles ...] [--pick central] --json-out FILE
         (the verification rows alone, e.g. on all 1,000 DevTest pairs with the angles split over processes)
       python benchmarks/rotation.py --only detection --boxes DIR --lfw DIR --pairs FILE [--angles ...] [--scales ...] --json-out FILE
         (the detection and scale rows alone; both parts with face_recognition's rows unless --no-baseline)
       python benchmarks/rotation.py --only timing --lfw DIR --pairs FILE [--timing-images N] --json-out FILE
         (the upright off/auto timing alone, on an idle machine)
       python benchmarks/rotation.py --merge A.json B.json ... --json-out FILE
         (the parts joined into one result; they must share their setup, and an angle measured twice must agree)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.api import VERIFY_DETECTOR, largest_face  # noqa: E402
from facelab.detect import DEFAULT_DETECTOR, detect, get_detector  # noqa: E402
from facelab.detect.orient import angle_diff  # noqa: E402
from facelab.detect.rotate import apply_affine, rotation_matrix  # noqa: E402
from facelab.evaluate import DetectionScore, read_pairs, voc_dataset  # noqa: E402
from facelab.errors import NoFaceError  # noqa: E402
from facelab.evaluate.face_boxes import is_face_boxes, split  # noqa: E402
from facelab.types import Box  # noqa: E402

THRESHOLD = 0.6


def turn(img: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by ``angle`` (PIL, expanded) and the 2x3 matrix turned -> original coordinates."""
    if angle % 360 == 0:
        return img, np.array([[1.0, 0, 0], [0, 1.0, 0]])
    out = np.asarray(Image.fromarray(img).rotate(angle, resample=Image.BILINEAR, expand=True))
    h, w = img.shape[:2]
    m, (nw, nh) = rotation_matrix(w, h, angle)  # original -> canvas (cv2's convention = PIL's, centred)
    # PIL's expanded canvas may differ from ours by a pixel: centre both
    m[0, 2] += (out.shape[1] - nw) / 2.0
    m[1, 2] += (out.shape[0] - nh) / 2.0
    import cv2

    return out, cv2.invertAffineTransform(m)


def back(box: Box, inv: np.ndarray) -> Box:
    (cx, cy), = apply_affine(inv, [box.center])
    return Box.from_center(float(cx), float(cy), box.width, box.height)


def facelab_faces(img, mode):
    return [(f.box, f.rotation) for f in detect(img, DEFAULT_DETECTOR, rotate=mode)]


def fr_faces(img, mode=None):
    import face_recognition

    return [(Box(float(l), float(t), float(r), float(b)), 0.0) for t, r, b, l in face_recognition.face_locations(img)]


def detection_rows(images, angles, finder, base_rolls=None):
    out = {}
    rolls0: dict[tuple[str, int], float] = {}
    for angle in angles:
        score = DetectionScore()
        errs = []
        for stem, img, gt in images:
            timg, inv = turn(img, angle)
            found = finder(timg)
            boxes = [back(b, inv) for b, _ in found]
            score.add(gt, boxes, name=stem)
            for gi, g in enumerate(gt):
                if min(g.width, g.height) < 20 or not boxes:
                    continue
                j = int(np.argmax([g.iou(b) for b in boxes]))
                if g.iou(boxes[j]) < 0.5:
                    continue
                if angle == 0:
                    rolls0[(stem, gi)] = found[j][1]
                elif (stem, gi) in (base_rolls if base_rolls is not None else rolls0):
                    ref = (base_rolls if base_rolls is not None else rolls0)[(stem, gi)]
                    errs.append(angle_diff(found[j][1], ref - angle))
        d = score.to_dict()
        d = {"recall": d["recall"], "precision": d["precision"], "gt": d["gt"]}
        d["roll_error_median_deg"] = round(float(np.median(errs)), 2) if errs else (0.0 if angle == 0 else None)
        out[str(int(angle) if float(angle).is_integer() else angle)] = {"detection": d}
        print(f"  angle {angle:>6}: recall {d['recall']:.3f} precision {d['precision']:.3f} roll err {d['roll_error_median_deg']}", flush=True)
    return out, rolls0


def scale_rows(images, scales, finder):
    import cv2

    out = {}
    for k in scales:
        score = DetectionScore()
        for stem, img, gt in images:
            big = img if k == 1 else cv2.resize(img, (img.shape[1] * k, img.shape[0] * k), interpolation=cv2.INTER_CUBIC)
            score.add([Box(g.left * k, g.top * k, g.right * k, g.bottom * k) for g in gt], [b for b, _ in finder(big)], name=stem, small=20.0 * k)
        d = score.to_dict()
        out[str(k)] = {"recall": d["recall"], "precision": d["precision"]}
        print(f"  scale {k}: recall {d['recall']:.3f} precision {d['precision']:.3f}", flush=True)
    return out


def verification_rows(pairs, angles, embed_fn):
    cache: dict[tuple[str, float], np.ndarray | None] = {}
    out = {}
    from facelab.io import load_image

    for angle in angles:
        correct = 0
        no_face = 0
        for p in pairs:
            ea = cache.get((p.a, 0.0))
            if (p.a, 0.0) not in cache:
                ea = cache[(p.a, 0.0)] = embed_fn(load_image(p.a))
            key = (p.b, float(angle))
            if key not in cache:
                cache[key] = embed_fn(turn(load_image(p.b), angle)[0])
            eb = cache[key]
            if ea is None or eb is None:
                no_face += 1
                same = False
            else:
                same = float(np.linalg.norm(ea - eb)) <= THRESHOLD
            correct += same == p.same
        acc = correct / len(pairs)
        out[str(int(angle) if float(angle).is_integer() else angle)] = {"accuracy": round(acc, 4), "no_face_pairs": no_face}
        print(f"  angle {angle:>6}: accuracy {acc:.4f} ({no_face} pairs without a face)", flush=True)
    return out


def _main_embedding(pick: str):
    """The embedding facelab.verify compares: the ``pick`` face (HOG chain, rotate="auto"), flip-averaged."""

    def embed_fn(img):
        try:
            return largest_face(img, rotate="auto", pick=pick).embedding.vector
        except NoFaceError:
            return None

    return embed_fn


def timing(images, mode) -> list[float]:
    """Each image's ms with ``rotate=mode``."""
    get_detector(DEFAULT_DETECTOR).prepare()
    detect(images[0], rotate=mode)
    each = []
    for img in images:
        t = time.perf_counter()
        detect(img, rotate=mode)
        each.append((time.perf_counter() - t) * 1000)
    return each


def _written(result: dict, path: str) -> dict:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boxes", help="face-boxes folder (VOC XML); required for the detection rows (not with --only verification or timing)")
    ap.add_argument("--lfw", help="folder of LFW images (<name>/<name>_NNNN.jpg); required unless --merge")
    ap.add_argument("--pairs", help="pairsDevTest.txt; required unless --merge")
    ap.add_argument("--angles", default="0,15,30,45,60,90,135,180,-90")
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--limit-pairs", type=int, default=0, help="first N/2 matched and N/2 mismatched pairs (0: all)")
    ap.add_argument("--limit-images", type=int, default=0, help="first N detection photos (0: all)")
    ap.add_argument("--timing-images", type=int, default=200, help="upright LFW images timed with rotate=off and auto")
    ap.add_argument("--timing-rounds", type=int, default=5, help="interleaved off/auto timing rounds (median reported)")
    ap.add_argument("--no-baseline", action="store_true", help="skip face_recognition")
    ap.add_argument("--only", choices=("all", "verification", "detection", "timing"), default="all",
                    help="verification: only the LFW verification rows (e.g. on all pairs, angles split over processes); "
                         "detection: only the detection and scale rows (no timing); "
                         "timing: only the upright LFW off/auto timing (run it on an idle machine)")
    ap.add_argument("--pick", choices=("largest", "central"), default="largest",
                    help="which face of an LFW image is verified: facelab.verify's default (largest) or LFW's subject "
                         "(central, as benchmarks/lfw_verify.py)")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="join the JSON files of runs split by angle or --only into --json-out")
    ap.add_argument("--json-out", required=True)
    a = ap.parse_args(argv)
    if a.merge:
        try:
            parts = [json.loads(Path(f).read_text()) for f in a.merge]
        except (OSError, ValueError) as e:
            ap.error(f"--merge: {e}")
        return _written(merged(parts), a.json_out)
    if not a.lfw or not a.pairs:
        ap.error("--lfw and --pairs are required (unless --merge)")
    if not a.no_baseline and a.only != "timing":
        import importlib.util

        if importlib.util.find_spec("face_recognition") is None:
            ap.error("the face_recognition column needs face_recognition 1.3.0 (pip install face_recognition==1.3.0); or pass --no-baseline")
    if a.only not in ("verification", "timing") and not a.boxes:
        ap.error("--boxes is required (unless --only verification or timing)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    angles = [float(x) for x in a.angles.split(",")]
    scales = [int(x) for x in a.scales.split(",")]
    from facelab.io import load_image

    if a.only not in ("verification", "timing"):
        ds = voc_dataset(a.boxes)
        which = "val" if is_face_boxes(ds) else "all"
        ds = split(ds, which)
        if a.limit_images:
            ds = ds[: a.limit_images]
        images = [(Path(p).stem, load_image(p), gt) for p, gt in ds]
    else:
        which, images = "-", []
    pairs = read_pairs(a.pairs, a.lfw)
    if a.limit_pairs:
        pairs = pairs[: a.limit_pairs // 2] + pairs[len(pairs) // 2 : len(pairs) // 2 + a.limit_pairs // 2]
    result: dict = {
        "detector": DEFAULT_DETECTOR,
        "rotate": "auto",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        "date": time.strftime("%Y-%m-%d"),
    }
    if a.only in ("all", "detection"):
        result["split"], result["images"] = which, len(images)
    if a.only in ("all", "verification"):
        result["pairs"] = len(pairs)
        result["threshold"] = THRESHOLD
        result["verification"] = f"facelab.largest_face(pick={a.pick!r}) (as facelab.verify): detector {VERIFY_DETECTOR}, flip-averaged, rotate=auto"
        result["pick"] = a.pick
    if a.only == "verification":
        print("facelab verification", flush=True)
        result["angles"] = {k: {"verification": v} for k, v in verification_rows(pairs, angles, _main_embedding(a.pick)).items()}
        if not a.no_baseline:
            result["face_recognition"] = {"angles": {k: {"verification": v} for k, v in _fr_verification(pairs, angles).items()}}
        return _written(result, a.json_out)
    if a.only == "detection":
        print("facelab detection", flush=True)
        result["angles"], _ = detection_rows(images, angles, lambda im: facelab_faces(im, "auto"))
        print("facelab scales", flush=True)
        result["scales"] = scale_rows(images, scales, lambda im: facelab_faces(im, "auto"))
        if not a.no_baseline:
            result["face_recognition"] = _fr_detection(images, angles, scales)
        return _written(result, a.json_out)
    lfw_paths = sorted({p.a for p in pairs} | {p.b for p in pairs})[: a.timing_images]
    lfw_imgs = [load_image(p) for p in lfw_paths]
    result["timing_images"], result["timing_rounds"] = len(lfw_imgs), a.timing_rounds
    # interleaved rounds, the median of each (the machine is shared: one round's ratio swings by 0.1-0.2)
    runs = [(timing(lfw_imgs, "off"), timing(lfw_imgs, "auto")) for _ in range(a.timing_rounds)]
    rounds = [(float(np.mean(o)), float(np.mean(u))) for o, u in runs]
    # each image's fastest run in either mode (as timeit advises: slower runs are other work on a shared machine)
    best_off = np.min([o for o, _ in runs], axis=0)
    best_auto = np.min([u for _, u in runs], axis=0)
    result["auto_over_off_best"] = round(float(best_auto.sum() / best_off.sum()), 3)
    result["best_ms_per_image"] = {"off": round(float(best_off.mean()), 1), "auto": round(float(best_auto.mean()), 1)}
    off = float(np.median([r[0] for r in rounds]))
    auto = float(np.median([r[1] for r in rounds]))
    ratio = float(np.median([r[1] / r[0] for r in rounds]))
    result["upright_ms_per_image"] = round(off, 1)
    result["auto_ms_per_image"] = round(auto, 1)
    result["auto_over_off"] = round(ratio, 3)
    result["auto_over_off_rounds"] = [round(r[1] / r[0], 3) for r in rounds]
    print(f"upright LFW ({len(lfw_imgs)} images, {a.timing_rounds} rounds): off {off:.1f} ms, auto {auto:.1f} ms (median ratio {ratio:.2f}x; each image's best run: {result['auto_over_off_best']:.2f}x)", flush=True)
    if a.only == "timing":
        return _written(result, a.json_out)

    print("facelab detection", flush=True)
    rows, _ = detection_rows(images, angles, lambda im: facelab_faces(im, "auto"))
    print("facelab scales", flush=True)
    result["scales"] = scale_rows(images, scales, lambda im: facelab_faces(im, "auto"))

    print("facelab verification", flush=True)
    ver = verification_rows(pairs, angles, _main_embedding(a.pick))
    for k in rows:
        rows[k]["verification"] = ver[k]
    result["angles"] = rows
    if not a.no_baseline:
        result["face_recognition"] = base = _fr_detection(images, angles, scales)
        for k, v in _fr_verification(pairs, angles).items():
            base["angles"][k]["verification"] = v
    return _written(result, a.json_out)


def _fr_detection(images, angles, scales) -> dict:
    """face_recognition 1.3.0's detection and scale rows on the same photos."""
    print("face_recognition 1.3.0 detection", flush=True)
    rows, _ = detection_rows(images, angles, fr_faces)
    return {"angles": rows, "scales": scale_rows(images, scales, fr_faces)}


def _fr_verification(pairs, angles) -> dict:
    """face_recognition 1.3.0's verification rows (its first face's encoding) on the same pairs."""
    import face_recognition

    def fr_emb(img):
        e = face_recognition.face_encodings(img)
        return np.asarray(e[0]) if e else None

    print("face_recognition 1.3.0 verification", flush=True)
    return verification_rows(pairs, angles, fr_emb)


def merged(parts: list[dict]) -> dict:
    """One result from runs split by angle or by part (``--only``): their rows joined; every other field
    must agree between the runs that give it (the same setup), the date being the latest."""
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if key in ("angles", "scales", "face_recognition"):
                _merge_rows(out.setdefault(key, {}), value, key)
            elif key == "date":
                out[key] = max(out.get(key, value), value)
            elif key not in out:
                out[key] = value
            elif out[key] != value:
                raise SystemExit(f"cannot merge: {key!r} differs between the runs ({out[key]!r} vs {value!r})")
    return out


def _merge_rows(into: dict, rows: dict, where: str) -> None:
    for k, v in rows.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge_rows(into[k], v, f"{where}.{k}")
        elif k in into and into[k] != v:
            raise SystemExit(f"cannot merge: {where}.{k} measured twice with different results")
        else:
            into[k] = v


if __name__ == "__main__":
    main()
