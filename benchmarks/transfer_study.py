"""Transfer-learning study: does fine-tuning dlib's ResNet beat its frozen features, and where?

Sets (``../shared/data``, people the dlib ResNet never saw: its model card says its 7,485 training
identities avoid LFW's, https://github.com/davisking/dlib-models; ORL and Yale are not web celebrities):

* ``orl`` (40 x 10), ``yale`` (15 x 11, lighting), ``lfw`` (LFW View 1 people with >= 5 photos: 81 people, 472 images);
* the hard cases ``lfw-<degrade>``: the same LFW faces made low resolution (``lowres24``: the aligned 150-px chip shrunk to
  24 px and back, a ~16-px face; ``lowres16``: ~11 px) -- synthesised from the aligned chips, not re-detected;
* ``lfw-clean-to-<degrade>``: trained on the clean faces (and their augmentations), tested on the degraded held-out faces
  (enrol good photos, recognise low-resolution ones).

For every set :func:`facelab.train.study.run_study` runs {dlib frozen, dlib fine-tuned, small CNN from scratch} x
{augmentations} on one stratified k-fold split (last-epoch held-out accuracy; nothing is chosen on the held-out folds).

``hard_case_gain_points`` = best fine-tuned minus best frozen accuracy on the hard case (points).

``lfw_view1_loss_points``: an embedder fine-tuned on the hard case (``finetune_chips`` with the study's settings) but only on
its people who appear in no ``pairsDevTest.txt`` pair, exported to ONNX and run through facelab's ONNX embedder; its View 1
DevTest accuracy at the threshold that is best on ``pairsDevTrain.txt`` is subtracted from the frozen dlib embedder's under the
same protocol (same detections and alignment: facelab.verify's detector chain, central face, flip averaging).

``--part distilled`` (run after the study; adds to its JSON): dlib's ResNet distilled for degraded faces
(:mod:`facelab.train.distill`, default settings) on the shared UTKFace faces (500 held out for the distance curve;
no LFW, ORL or Yale face), then its rows on every hard case and on ``lfw-clean-to-<--cross-distilled>`` (frozen = its
features + the head, finetuned = the study's fine-tuning started from it; dlib's rows are added where the study has
none), and its View 1 accuracy under the protocol above.  ``hard_case_gain_points`` / ``lfw_view1_loss_points`` (and the
``hard_case_best_*`` figures they come from) then follow the distilled embedder when it gains more on the headline hard case
(``headline_embedder``).

Usage: nice -n 10 python benchmarks/transfer_study.py [--data ../shared/data] [--sets orl,yale,lfw] [--hard lowres24] [--part distilled]
Writes benchmarks/results/transfer_study.json (+ the studies' folders under --out).
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
sys.path.insert(0, str(ROOT / "src"))

from facelab.train.dataset import REFERENCE_SETS, identity_dataset  # noqa: E402
from facelab.train.finetune import ChipSet, embedder_metadata, face_chips, finetune_chips  # noqa: E402
from facelab.train.study import run_study  # noqa: E402


def chips_of(name: str, data: Path, cache: Path) -> ChipSet:
    f = cache / f"{name}.npz"
    if f.is_file():
        d = np.load(f)
        return ChipSet(d["chips"], d["labels"], list(d["paths"]))
    s = REFERENCE_SETS[name]
    items = identity_dataset(data.joinpath(*s["folder"]), label_regex=s["label_regex"], min_per_class=s["min_per_class"])
    cs = face_chips(items, min_face=s["min_face"], fallback=s["fallback"], progress=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, chips=cs.chips, labels=cs.labels, paths=np.array(cs.paths))
    return cs


def utk_chips(data: Path, cache: Path) -> np.ndarray:
    """dlib chips of the shared UTKFace faces (no identities: the distillation's training faces), cached."""
    f = cache / "utkface.npz"
    if f.is_file():
        return np.load(f)["chips"]
    from facelab.train.dataset import LabeledImage

    items = [LabeledImage(str(p), "utk") for p in sorted((data / "utkface").glob("*.jpg"))]
    cs = face_chips(items, min_face=40, progress=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, chips=cs.chips)
    return cs.chips


def view1_people(pairs_file: Path) -> set[str]:
    people = set()
    for line in pairs_file.read_text().splitlines()[1:]:
        p = line.split()
        people.update([p[0]] if len(p) == 3 else [p[0], p[2]] if len(p) == 4 else [])
    return people


def view1_chips(data: Path, cache: Path) -> tuple[dict[str, np.ndarray], list, list]:
    """One aligned chip per View 1 image (facelab.verify's detector chain, the central face)."""
    from facelab.api import VERIFY_DETECTOR, VERIFY_MIN_FACE
    from facelab.embed import get_embedder
    from facelab.evaluate import read_pairs
    from facelab.io import load_image
    from facelab.pipeline import FaceAnalysis
    from facelab.progress import track

    lfw = data / "lfw" / "lfw-deepfunneled"
    train, test = read_pairs(data / "lfw" / "pairsDevTrain.txt", lfw), read_pairs(data / "lfw" / "pairsDevTest.txt", lfw)
    f = cache / "view1_chips.npz"
    if f.is_file():
        d = np.load(f)
        return dict(zip(d["paths"].tolist(), d["chips"])), train, test
    paths = sorted({p for pr in train + test for p in (pr.a, pr.b)})
    fa = FaceAnalysis(detector=VERIFY_DETECTOR, landmarks=None, embedder=None, pick="central", detector_options={"min_face": VERIFY_MIN_FACE})
    emb = get_embedder("dlib")
    out = {}
    for p in track(paths, len(paths), "View 1 chips"):
        img = load_image(p)
        faces = fa(img)
        if faces:
            out[p] = emb.chips(img, faces[:1])[0]
    np.savez(f, paths=np.array(list(out)), chips=np.stack(list(out.values())))
    return out, train, test


def view1_accuracy(vectors: dict[str, np.ndarray], metric: str, train, test) -> dict:
    from facelab.embed import distances
    from facelab.evaluate import accuracy_at, best_threshold

    def dist(pairs):
        d = np.full(len(pairs), np.inf)
        for i, pr in enumerate(pairs):
            if pr.a in vectors and pr.b in vectors:
                d[i] = distances(vectors[pr.a][None], vectors[pr.b][None], metric)[0, 0]
        return d, np.array([pr.same for pr in pairs])

    dt, yt = dist(train)
    thr, train_acc = best_threshold(dt, yt)
    d, y = dist(test)
    return {"accuracy": accuracy_at(d, y, thr), "threshold": float(thr), "devtrain_accuracy": float(train_acc)}


def view1_frozen_and(onnx_path: Path, data: Path, cache: Path) -> tuple[dict, dict, int]:
    """View 1 DevTest accuracy (threshold best on DevTrain) of frozen dlib and of the ONNX embedder at ``onnx_path`` (its own
    metric), on the same chips, flip averaged; and how many images have a face."""
    from facelab.embed import get_embedder

    v1, train_pairs, test_pairs = view1_chips(data, cache)
    paths = list(v1)
    stack = np.stack([v1[p] for p in paths])
    mine = get_embedder(str(onnx_path))
    vf = dict(zip(paths, get_embedder("dlib").embed_chips(stack, flip=True)))
    vm = dict(zip(paths, mine.embed_chips(stack, flip=True)))
    return view1_accuracy(vf, "euclidean", train_pairs, test_pairs), view1_accuracy(vm, mine.metric, train_pairs, test_pairs), len(paths)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FACELAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--sets", default="orl,yale,lfw")
    ap.add_argument("--hard", default="lowres24,lowres16", help="degradations of the LFW faces for the hard cases (lowres<N> or occluded); the first is the headline")
    ap.add_argument("--augment", default="none,photometric", help="augmentations of the hard-case studies")
    ap.add_argument("--cross", default="lowres24", help="also: train on the clean LFW faces, test on these degradations (enrol clean, probe degraded)")
    ap.add_argument("--augment-clean", default="none", help="augmentations of the clean-set studies")
    ap.add_argument("--n-aug", type=int, default=1)
    ap.add_argument("--backbones", default="dlib,cnn", help="backbones of the hard-case studies")
    ap.add_argument("--backbones-clean", default="dlib", help="backbones of the clean-set studies")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--blocks", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/facelab-transfer-study")
    ap.add_argument("--cache", default="/tmp/facelab-transfer-cache")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "transfer_study.json"))
    ap.add_argument("--part", choices=("study", "distilled"), default="study",
                    help="study: the grid above; distilled: the distilled embedder's rows (and dlib's on --cross-distilled), added to --json-out")
    ap.add_argument("--cross-distilled", default="lowres24,lowres16", help="with --part distilled: the enrol-clean, probe-degraded sets")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data, cache, out = Path(args.data), Path(args.cache), Path(args.out)
    if args.part == "distilled":
        return distilled_part(args, data, cache, out)
    t0 = time.perf_counter()
    cells, studies = [], {}
    hards = args.hard.split(",")
    crosses = [c for c in args.cross.split(",") if c]
    sets = [(f"lfw-{h}", "lfw", h, None) for h in hards] + [(s, s, None, None) for s in args.sets.split(",") if s]  # the hard cases first
    sets += [(f"lfw-clean-to-{c}", "lfw", None, c) for c in crosses]
    for label, name, how, cross in sets:
        hard_like = how or cross
        augs = tuple((args.augment if hard_like else args.augment_clean).split(","))
        backbones = tuple((args.backbones if hard_like else args.backbones_clean).split(","))
        cs = chips_of(name, data, cache)
        if how:
            cs = cs.degraded(how)
        test = cs.degraded(cross) if cross else None
        s = run_study(
            cs, out / label, backbones=backbones, augmentations=augs, folds=args.folds, epochs=args.epochs, blocks=args.blocks, n_aug=args.n_aug,
            progress=False, title=label, test_chips=test,
        )
        studies[label] = {k: v for k, v in s.items() if k != "cells"}
        for c in s["cells"]:
            cells.append({"data": label, **{k: v for k, v in c.items() if k != "curves"}, "val_curve": [round(x, 4) for x in c["curves"]["val_acc"]]})
            print(f"| {label} | {c['backbone']} | {c['mode']} | {c['augmentation']} | {100 * c['accuracy']:.2f} ± {100 * c['std']:.2f} | {c['seconds']:.0f} |", flush=True)

    gains = {}
    for h in hards:
        rows = [c for c in cells if c["data"] == f"lfw-{h}"]
        best = {m: max(c["accuracy"] for c in rows if c["mode"] == m) for m in ("finetuned", "frozen")}
        gains[h] = {"best_finetuned": best["finetuned"], "best_frozen": best["frozen"], "gain_points": round(100 * (best["finetuned"] - best["frozen"]), 2)}
    hard = [c for c in cells if c["data"] == f"lfw-{hards[0]}"]
    best_ft, best_frozen = gains[hards[0]]["best_finetuned"], gains[hards[0]]["best_frozen"]
    gain = 100 * (best_ft - best_frozen)

    # LFW View 1: frozen dlib vs the embedder fine-tuned on the hard case's people outside pairsDevTest
    hard_chips = chips_of("lfw", data, cache).degraded(hards[0])
    unseen = view1_people(data / "lfw" / "pairsDevTest.txt")
    keep = np.flatnonzero([lab not in unseen for lab in hard_chips.labels])
    train_set = hard_chips.subset(keep)
    best_aug = max((c for c in hard if c["mode"] == "finetuned"), key=lambda c: c["accuracy"])["augmentation"]
    net, res = finetune_chips(train_set, blocks=args.blocks, epochs=args.epochs, augmentation=best_aug, n_aug=args.n_aug, seed=0)
    onnx_path = out / "lfw-finetuned.onnx"
    net.to_onnx(onnx_path, embedder_metadata(net, 0.5, {"trained_on": f"LFW View 1 people outside pairsDevTest, {hards[0]}"}))
    acc_frozen, acc_mine, n_images = view1_frozen_and(onnx_path, data, cache)
    loss = 100 * (acc_frozen["accuracy"] - acc_mine["accuracy"])
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/transfer_study.py " + " ".join(sys.argv[1:]),
        "settings": vars(args),
        "torch_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "studies": studies,
        "cells": cells,
        "hard_case": f"lfw-{hards[0]}",
        "hard_cases": gains,
        "hard_case_best_finetuned": best_ft,
        "hard_case_best_frozen": best_frozen,
        "hard_case_gain_points": round(gain, 2),
        "lfw_view1": {
            "frozen_dlib": acc_frozen,
            "finetuned": acc_mine,
            "finetuned_trained_on": {"people": len(train_set.classes), "images": len(train_set), "augmentation": best_aug, "degradation": hards[0]},
            "images_with_face": n_images,
        },
        "lfw_view1_loss_points": round(loss, 2),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(result, indent=1))
    print(f"hard case ({result['hard_case']}): best fine-tuned {100 * best_ft:.2f} % - best frozen {100 * best_frozen:.2f} % = {gain:+.2f} points")
    print(f"LFW View 1 DevTest: frozen dlib {100 * acc_frozen['accuracy']:.2f} %, fine-tuned {100 * acc_mine['accuracy']:.2f} % -> loss {loss:+.2f} points")
    print(f"written {args.json_out}")
    return 0


def distilled_part(args, data: Path, cache: Path, out: Path) -> int:
    """The distilled embedder (facelab.train.distill on UTKFace faces, no LFW/ORL/Yale face seen): its rows on the hard
    cases (its frozen features, and fine-tuned from it), dlib's rows on the enrol-clean sets missing from the study, and
    its LFW View 1 accuracy; merged into the study's JSON."""
    import torch

    from facelab.train.distill import BLOCKS, COPIES, EPOCHS, LR, distill_chips
    from facelab.train.torch_resnet import load_dlib_resnet

    t0 = time.perf_counter()
    result = json.loads(Path(args.json_out).read_text())

    utk = utk_chips(data, cache)
    held, train = utk[:500], utk[500:]
    saved = cache / f"distilled-b{BLOCKS}-e{EPOCHS}-c{COPIES}-lr{LR:g}-{len(train)}.pt"
    if saved.is_file():
        saved_run = torch.load(saved)
        state, history = saved_run["state"], saved_run["history"]
    else:
        net, history = distill_chips(train, held_out=held, progress=True)
        state = {k: v.detach().clone() for k, v in net.params.items()}
        torch.save({"state": state, "history": history}, saved)
    for row in history:
        print({k: round(v, 4) for k, v in row.items()}, flush=True)

    def distilled():  # a fresh network with the distilled weights (run_study centres its output in place)
        n = load_dlib_resnet()
        with torch.no_grad():
            for k, v in state.items():
                n.params[k].copy_(v)
        return n.eval()

    lfw = chips_of("lfw", data, cache)
    hards = args.hard.split(",")
    sets = [(f"lfw-{h}", lfw.degraded(h), None) for h in hards] + [(f"lfw-clean-to-{c}", lfw, lfw.degraded(c)) for c in args.cross_distilled.split(",") if c]
    cells = [c for c in result["cells"] if c.get("backbone") != "dlib-distilled"]
    have = {(c["data"], c["backbone"], c["mode"], c["augmentation"]) for c in cells}
    for label, cs, test in sets:
        runs = [("dlib-distilled", distilled())]
        if (label, "dlib", "frozen", "none") not in have:
            runs.append(("dlib", None))
        for backbone, resnet in runs:
            s = run_study(cs, out / f"{label}-{backbone}", backbones=("dlib",), augmentations=("none",), folds=args.folds, epochs=args.epochs,
                          blocks=args.blocks, n_aug=args.n_aug, title=f"{label} ({backbone})", test_chips=test, resnet=resnet)
            for c in s["cells"]:
                cells.append({"data": label, **{k: v for k, v in c.items() if k != "curves"}, "backbone": backbone,
                              "cell": c["cell"].replace("dlib", backbone, 1), "val_curve": [round(x, 4) for x in c["curves"]["val_acc"]]})
                print(f"| {label} | {backbone} | {c['mode']} | {c['augmentation']} | {100 * c['accuracy']:.2f} ± {100 * c['std']:.2f} | {c['seconds']:.0f} |", flush=True)
    net = distilled()
    onnx_path = out / "lfw-distilled.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    net.to_onnx(onnx_path, embedder_metadata(net, 0.6, {"metric": "euclidean", "trained_on": "UTKFace (shared part), distilled"}))
    acc_frozen, acc_distilled, _ = view1_frozen_and(onnx_path, data, cache)

    def best(label: str, backbone: str, modes) -> float | None:
        v = [c["accuracy"] for c in cells if c["data"] == label and c["backbone"] == backbone and c["mode"] in modes]
        return max(v) if v else None

    table = {}
    for label, _, _ in sets:
        frozen = best(label, "dlib", ("frozen",))
        d = best(label, "dlib-distilled", ("frozen", "finetuned"))
        table[label] = {"best_frozen_dlib": frozen, "best_distilled": d, "gain_points": round(100 * (d - frozen), 2)}
        print(f"{label}: frozen dlib {100 * frozen:.2f} %, distilled embedder (best cell) {100 * d:.2f} % -> {100 * (d - frozen):+.2f} points")
    loss = 100 * (acc_frozen["accuracy"] - acc_distilled["accuracy"])
    print(f"LFW View 1 DevTest: frozen dlib {100 * acc_frozen['accuracy']:.2f} %, distilled {100 * acc_distilled['accuracy']:.2f} % -> loss {loss:+.2f} points")
    result["cells"] = cells
    h = result["hard_case"]
    if h in table and table[h]["gain_points"] > result["hard_case_gain_points"]:  # the headline follows the better fine-tuned embedder
        result.update(hard_case_gain_points=table[h]["gain_points"], lfw_view1_loss_points=round(loss, 2), headline_embedder="distilled",
                      hard_case_best_finetuned=table[h]["best_distilled"], hard_case_best_frozen=table[h]["best_frozen_dlib"])
    result["distilled"] = {
        "command": "python benchmarks/transfer_study.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "trained_on": {"set": "utkface (shared part)", "faces": int(len(train)), "held_out_faces": int(len(held))},
        "settings": {"blocks": BLOCKS, "epochs": EPOCHS, "copies": COPIES, "relative_lr": LR},
        "history": history,
        "sets": table,
        "lfw_view1": {"frozen_dlib": acc_frozen, "distilled": acc_distilled, "loss_points": round(loss, 2)},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.json_out).write_text(json.dumps(result, indent=1))
    print(f"written {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
