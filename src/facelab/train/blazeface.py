"""Fine-tune BlazeFace full range on crowded, masked photos, then export it to ONNX.

Needs ``torch`` (``pip install -e ".[train]"``).  Run it with ``facelab train
detector`` (see ``src/facelab/assets/blazeface_ft.md`` for the exact command
that produced the shipped model) or ``python -m facelab.train.blazeface``.

Data (all from ``../shared/data``; nothing is downloaded):

* ``face-boxes``: the training part of the 292 photos (the validation part,
  :data:`facelab.evaluate.face_boxes.VALIDATION_STEMS`, is never used for training);
* ``dlib-faces``: dlib's annotated example photos, boxes converted to the
  face-boxes convention;
* face crops from ``lfw`` (images outside ``pairsDevTest.txt``) and ``utkface``,
  located by the original BlazeFace, pasted (feathered, some with a synthetic
  mask drawn from the keypoints) on face-boxes training photos at random sizes.

Training: the network starts from MediaPipe's weights (read from the
``.tflite`` file by :mod:`facelab.detect.blazeface_net`).  Each step takes
random square crops (``--crop``, 256 px) of rescaled, flipped (with ``--roll``: turned),
colour-jittered, sometimes blurred images.  Anchors (one per 4x4 cell) near a face centre are positives; binary
cross-entropy on scores, smooth-L1 on boxes (relative to the face size), and
the original network's keypoints (as a teacher) keep the 6 keypoints.  Every
epoch writes a checkpoint (``--work DIR``; ``--resume`` continues) and a line
of JSON to ``train_log.jsonl`` with the validation recall / precision, redrawn as
``curves_loss.png`` / ``curves_accuracy.png`` after every epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..evaluate import DetectionScore, voc_dataset
from ..evaluate.face_boxes import split
from ..io import load_image
from ..types import Box
from ..detect.blazeface import decode, ssd_anchors, to_input, weighted_nms
from ..detect.rotate import apply_affine, rotate_image

CROP = 320
STRIDE = 4


@dataclass
class Example:
    image: np.ndarray  # RGB uint8
    boxes: np.ndarray  # (N, 4) xyxy, face-boxes convention


@dataclass
class FaceCrop:
    image: np.ndarray
    box: np.ndarray  # xyxy in the crop, face-boxes convention
    kps: np.ndarray  # (6, 2)


# --- box conventions ------------------------------------------------------------------------


def fit_box_mapping(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Mean (dx/w, dy/h, log w ratio, log h ratio) from detector boxes to ground-truth boxes."""
    d = []
    for det, gt in pairs:
        dw, dh = det[2] - det[0], det[3] - det[1]
        gw, gh = gt[2] - gt[0], gt[3] - gt[1]
        d.append([((gt[0] + gt[2]) - (det[0] + det[2])) / 2 / dw, ((gt[1] + gt[3]) - (det[1] + det[3])) / 2 / dh, math.log(gw / dw), math.log(gh / dh)])
    return np.median(np.array(d), axis=0)


def apply_box_mapping(box: np.ndarray, m: np.ndarray) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2 + m[0] * w, (box[1] + box[3]) / 2 + m[1] * h
    w, h = w * math.exp(m[2]), h * math.exp(m[3])
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


def matched_pairs(dets: list[Box], gts: list[Box]) -> list[tuple[np.ndarray, np.ndarray]]:
    from ..evaluate.detection import match

    return [(np.array([dets[j].left, dets[j].top, dets[j].right, dets[j].bottom]), np.array([gts[i].left, gts[i].top, gts[i].right, gts[i].bottom])) for i, j in match(gts, dets, 0.5)]


def read_dlib_xml(path: Path) -> list[tuple[Path, np.ndarray]]:
    root = ET.parse(path).getroot()
    out = []
    for im in root.iter("image"):
        boxes = [
            [float(b.get("left")), float(b.get("top")), float(b.get("left")) + float(b.get("width")), float(b.get("top")) + float(b.get("height"))]
            for b in im.iter("box")
            if b.get("ignore") != "1"
        ]
        out.append((path.parent / im.get("file"), np.array(boxes, np.float32).reshape(-1, 4)))
    return out


# --- data preparation -------------------------------------------------------------------------


def prepare_data(data: Path, work: Path, *, n_paste: int = 1500, seed: int = 0, log=print) -> dict:
    """Training examples and face crops (cached in ``work/data.npz`` after the first run)."""
    import pickle

    work.mkdir(parents=True, exist_ok=True)
    cache = work / "data.pkl"
    if cache.exists():
        with open(cache, "rb") as f:
            return pickle.load(f)
    from ..detect import get_detector

    teacher = get_detector("blazeface", tile=True, min_face=20)
    hog = get_detector("hog", upsample=1)
    train = split(voc_dataset(data / "face-boxes"), "train")
    examples, t_pairs, h_pairs = [], [], []
    for p, gts in train:
        img = load_image(p)
        examples.append(Example(img, np.array([[b.left, b.top, b.right, b.bottom] for b in gts], np.float32).reshape(-1, 4)))
        t_pairs += matched_pairs([f.box for f in teacher.detect(img)], gts)
        h_pairs += matched_pairs([f.box for f in hog.detect(img)], gts)
    m_teacher, m_hog = fit_box_mapping(t_pairs), fit_box_mapping(h_pairs)
    log(f"face-boxes train: {len(examples)} photos; box mapping blazeface->gt {np.round(m_teacher, 3).tolist()} ({len(t_pairs)} pairs), "
        f"dlib->gt {np.round(m_hog, 3).tolist()} ({len(h_pairs)} pairs)")
    n_fb = len(examples)
    for xml in ("training.xml", "testing.xml"):
        for p, boxes in read_dlib_xml(data / "dlib-faces" / xml):
            if p.exists() and len(boxes):
                examples.append(Example(load_image(p), np.array([apply_box_mapping(b, m_hog) for b in boxes], np.float32)))
    log(f"dlib-faces: {len(examples) - n_fb} photos")
    rng = random.Random(seed)
    lfw_root = data / "lfw" / "lfw-deepfunneled"
    test_imgs = set()
    pairs_test = data / "lfw" / "pairsDevTest.txt"
    if pairs_test.exists():
        for t in (ln.split() for ln in pairs_test.read_text().splitlines()[1:]):
            if len(t) == 3:
                test_imgs |= {f"{t[0]}_{int(t[1]):04d}.jpg", f"{t[0]}_{int(t[2]):04d}.jpg"}
            elif len(t) == 4:
                test_imgs |= {f"{t[0]}_{int(t[1]):04d}.jpg", f"{t[2]}_{int(t[3]):04d}.jpg"}
    lfw = sorted(p for p in lfw_root.glob("*/*.jpg") if p.name not in test_imgs) if lfw_root.exists() else []
    utk = sorted((data / "utkface").glob("*.jpg")) if (data / "utkface").exists() else []
    sources = rng.sample(lfw, min(len(lfw), n_paste // 2)) + rng.sample(utk, min(len(utk), n_paste - n_paste // 2))
    crops = []
    single = get_detector("blazeface", tile=False)
    for p in sources:
        img = load_image(p)
        if "utkface" in p.parts:  # tight crops: the face fills the frame, give it some room
            pad = img.shape[0] // 2
            img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        faces = single.detect(img)
        if len(faces) != 1 or faces[0].score < 0.7:
            continue
        f = faces[0]
        box = apply_box_mapping(np.array([f.box.left, f.box.top, f.box.right, f.box.bottom]), m_teacher)
        kps = f.keypoints.points.copy()
        if "utkface" in p.parts:  # back to the original pixels (no smeared border in the paste)
            img, box, kps = img[pad:-pad, pad:-pad], box - pad, kps - pad
        crops.append(FaceCrop(np.ascontiguousarray(img), box, kps))
    log(f"paste crops: {len(crops)} of {len(sources)} lfw/utkface images have one clear face")
    out = {"examples": examples, "n_face_boxes": n_fb, "crops": crops, "mapping": m_teacher.tolist()}
    with open(cache, "wb") as f:
        pickle.dump(out, f)
    return out


# --- augmentation -----------------------------------------------------------------------------


def synthetic_mask(img: np.ndarray, box: np.ndarray, kps: np.ndarray, rng: random.Random) -> None:
    """Draw a face mask (in place) from below the nose to the chin, between the ears."""
    nose, mouth, le, re = kps[2], kps[3], kps[4], kps[5]
    chin_y = box[3] + 0.02 * (box[3] - box[1])
    top_y = nose[1] + 0.25 * (mouth[1] - nose[1])
    lx, rx = min(le[0], re[0]), max(le[0], re[0])
    pad = 0.08 * (rx - lx)
    cx = (lx + rx) / 2
    pts = np.array(
        [[lx + pad, top_y], [cx, top_y - 0.1 * (mouth[1] - nose[1])], [rx - pad, top_y], [rx - pad * 0.5, (top_y + chin_y) / 2], [cx + 0.3 * (rx - cx), chin_y],
         [cx - 0.3 * (cx - lx), chin_y], [lx + pad * 0.5, (top_y + chin_y) / 2]],
        np.int32,
    )
    palette = [(150, 200, 230), (235, 235, 235), (40, 40, 45), (120, 170, 220), (220, 170, 180), (90, 120, 90)]
    color = tuple(int(c + rng.uniform(-15, 15)) for c in rng.choice(palette))
    cv2.fillPoly(img, [pts], color, cv2.LINE_AA)
    for k in range(1, 3):  # faint pleats
        y = int(top_y + k * (chin_y - top_y) / 3)
        cv2.line(img, (int(lx + pad), y), (int(rx - pad), y), tuple(max(0, c - 25) for c in color), 1, cv2.LINE_AA)


def paste_faces(ex: Example, crops: list[FaceCrop], rng: random.Random, n: int) -> Example:
    """Paste ``n`` face crops at random places and sizes (feathered ellipses), some masked."""
    img = ex.image.copy()
    boxes = [b for b in ex.boxes]
    h, w = img.shape[:2]
    for _ in range(n):
        c = rng.choice(crops)
        src = c.image.copy()
        if rng.random() < 0.4:
            synthetic_mask(src, c.box, c.kps, rng)
        bw = c.box[2] - c.box[0]
        target = math.exp(rng.uniform(math.log(12), math.log(max(14.0, min(h, w) * 0.45))))
        s = target / bw
        sh, sw = max(1, int(src.shape[0] * s)), max(1, int(src.shape[1] * s))
        small = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        b = c.box * s
        # the pasted region: an ellipse around the face box, 1.5x its size, feathered
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        ex_w = min((b[2] - b[0]) * 0.75, cx - 1, sw - cx - 1)  # inside the source image: no hard edges
        ex_h = min((b[3] - b[1]) * 0.85, cy - 1, sh - cy - 1)
        alpha = np.zeros((sh, sw), np.float32)
        cv2.ellipse(alpha, (int(cx), int(cy)), (max(1, int(ex_w)), max(1, int(ex_h))), 0, 0, 360, 1.0, -1)
        k = max(3, int(0.15 * (b[2] - b[0])) | 1)
        alpha = cv2.GaussianBlur(alpha, (k, k), 0)
        ox, oy = rng.randint(int(-b[0]), max(int(-b[0]) + 1, int(w - b[2]))), rng.randint(int(-b[1]), max(int(-b[1]) + 1, int(h - b[3])))
        nb = b + np.array([ox, oy, ox, oy], np.float32)
        if any(_iou(nb, o) > 0.05 for o in boxes):
            continue
        x0, y0, x1, y1 = max(0, ox), max(0, oy), min(w, ox + sw), min(h, oy + sh)
        if x1 <= x0 or y1 <= y0:
            continue
        a = alpha[y0 - oy : y1 - oy, x0 - ox : x1 - ox, None]
        img[y0:y1, x0:x1] = (a * small[y0 - oy : y1 - oy, x0 - ox : x1 - ox] + (1 - a) * img[y0:y1, x0:x1]).astype(np.uint8)
        # old faces mostly hidden by the paste are no longer faces
        boxes.append(nb)
    return Example(img, np.array(boxes, np.float32).reshape(-1, 4))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / max(1e-9, (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def turn_example(img: np.ndarray, boxes: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``img`` turned by ``angle`` degrees (counter-clockwise, expanded canvas, black corners, bilinear: a photo
    turned by an image editor) and its face boxes: each centre turned with the image, width and height kept
    (the face's own size, the convention ``benchmarks/rotation.py`` scores turned photos with)."""
    out, m = rotate_image(img, angle)
    if not len(boxes):
        return out, boxes
    c = apply_affine(m, np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1))
    half = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1) / 2
    return out, np.concatenate([c - half, c + half], axis=1).astype(np.float32)


def augment(
    ex: Example, rng: random.Random, long_side: tuple[float, float], crop: int = CROP, roll: float = 0.0, roll_prob: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``crop`` x ``crop`` training crop: ``(image, boxes (N, 4), weights (N,))``; weight 0 = ignore (cut faces).
    With probability ``roll_prob`` the rescaled photo is first turned by up to ``roll`` degrees either way."""
    CROP = crop  # noqa: N806
    img, boxes = ex.image, ex.boxes.copy()
    h, w = img.shape[:2]
    s = rng.uniform(*long_side) / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    boxes = boxes * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
    if rng.random() < 0.5:
        img = img[:, ::-1]
        boxes = np.stack([nw - boxes[:, 2], boxes[:, 1], nw - boxes[:, 0], boxes[:, 3]], axis=1) if len(boxes) else boxes
    if roll > 0 and rng.random() < roll_prob:
        img, boxes = turn_example(np.ascontiguousarray(img), boxes, rng.uniform(-roll, roll))
        nh, nw = img.shape[:2]
    # crop (or pad) to CROP x CROP at a random place
    x0 = rng.randint(min(0, nw - CROP), max(0, nw - CROP))
    y0 = rng.randint(min(0, nh - CROP), max(0, nh - CROP))
    canvas = np.zeros((CROP, CROP, 3), np.uint8)
    fill = rng.random()
    if fill < 0.5:
        canvas[:] = np.array([rng.randint(0, 255) for _ in range(3)], np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(nw, x0 + CROP), min(nh, y0 + CROP)
    canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
    img = canvas
    boxes = boxes - np.array([x0, y0, x0, y0], np.float32)
    weights = np.ones(len(boxes), np.float32)
    if len(boxes):
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        cl = np.clip(boxes, 0, CROP)
        vis = (cl[:, 2] - cl[:, 0]) * (cl[:, 3] - cl[:, 1]) / np.maximum(area, 1e-6)
        keep = vis > 0.0
        boxes, vis = boxes[keep], vis[keep]
        weights = (vis >= 0.7).astype(np.float32)
    img = photometric(img, rng)
    return img, boxes, weights


def photometric(img: np.ndarray, rng: random.Random) -> np.ndarray:
    CROP = img.shape[0]  # noqa: N806
    out = img.astype(np.float32)
    out = out * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)  # contrast, brightness
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * (0.0 if rng.random() < 0.05 else rng.uniform(0.6, 1.4))  # saturation
    out = np.clip(out, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < 0.15:
        k = rng.choice([3, 5])
        out = cv2.GaussianBlur(out, (k, k), 0)
    elif r < 0.25:  # down-up sampling: low-resolution photos
        f = rng.uniform(0.4, 0.7)
        small = cv2.resize(out, (int(CROP * f), int(CROP * f)), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (CROP, CROP), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(30, 80)])
        out = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(out)


# --- targets and loss -----------------------------------------------------------------------


def targets(boxes: np.ndarray, weights: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per anchor: label (1 face, 0 background, -1 ignore), box target (4), face size (for normalising)."""
    n = len(anchors)
    label = np.zeros(n, np.float32)
    tgt = np.zeros((n, 4), np.float32)
    size = np.ones(n, np.float32)
    best_area = np.full(n, np.inf, np.float32)
    order = np.argsort(-((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))) if len(boxes) else []
    for i in order:  # large faces first, smaller ones overwrite (they have fewer anchors)
        x0, y0, x1, y1 = boxes[i]
        bw, bh = x1 - x0, y1 - y0
        if bw < 2 or bh < 2:
            continue
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        dx, dy = np.abs(anchors[:, 0] - cx), np.abs(anchors[:, 1] - cy)
        inside = (dx <= bw / 2) & (dy <= bh / 2)
        r = max(0.2 * min(bw, bh), STRIDE * 0.75)
        pos = (dx <= r) & (dy <= r)
        if not pos.any():  # tiny face: its nearest anchor
            pos = np.zeros(n, bool)
            pos[np.argmin(dx**2 + dy**2)] = True
        if weights[i] <= 0:
            label[inside | pos] = -1
            continue
        label[inside & (label == 0)] = -1
        sel = pos & (bw * bh < best_area)
        label[sel] = 1
        best_area[sel] = bw * bh
        tgt[sel, 0] = cx - anchors[sel, 0]
        tgt[sel, 1] = cy - anchors[sel, 1]
        tgt[sel, 2] = bw
        tgt[sel, 3] = bh
        size[sel] = math.sqrt(bw * bh)
    return label, tgt, size


# --- evaluation --------------------------------------------------------------------------------


def scan(net, image: np.ndarray, long_side: int, min_score: float = 0.5, nms_iou: float = 0.3):
    """Boxes, scores, keypoints of ``net`` (torch) on an image resized to ``long_side`` (the ONNX detector's path)."""
    import torch

    h, w = image.shape[:2]
    s = long_side / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    H, W = -(-nh // 32) * 32, -(-nw // 32) * 32
    c = np.zeros((H, W, 3), np.uint8)
    c[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    with torch.no_grad():
        reg, lg = net(torch.from_numpy(to_input(c)).permute(2, 0, 1)[None])
    b, sc, k = decode(reg[0].numpy(), lg[0].numpy(), ssd_anchors(H, W, (STRIDE,), (1,)), min_score)
    b, sc, k = weighted_nms(b, sc, k, nms_iou)
    return b / np.array([nw / w, nh / h, nw / w, nh / h], np.float32), sc, k / np.array([nw / w, nh / h], np.float32)


def evaluate(net, dataset, long_side: int, min_score: float = 0.5) -> dict:
    sc = DetectionScore()
    for p, gts in dataset:
        b, _, _ = scan(net, load_image(p), long_side, min_score)
        sc.add(gts, [Box(*map(float, x)) for x in b])
    return sc.to_dict()


# --- training ----------------------------------------------------------------------------------


def train(args: argparse.Namespace) -> Path:
    import torch
    from torch.nn import functional as F

    from ..models import model_path
    from ..detect.blazeface_net import load_pretrained

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    logf = open(work / "train_log.jsonl", "a")

    def log(msg: str | dict) -> None:
        line = msg if isinstance(msg, str) else json.dumps(msg)
        print(line, flush=True)
        logf.write((json.dumps({"msg": msg}) if isinstance(msg, str) else line) + "\n")
        logf.flush()

    data = Path(args.data)
    d = prepare_data(data, work, n_paste=args.paste_sources, log=log)
    examples, crops = d["examples"], d["crops"]
    val = split(voc_dataset(data / "face-boxes"), "val")
    tflite = model_path("blazeface_full")
    net = load_pretrained(tflite)
    teacher = load_pretrained(tflite).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(args.samples_per_epoch / args.batch)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    start = 0
    ck = work / "last.pt"
    if args.resume and ck.exists():
        state = torch.load(ck, map_location="cpu")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = state["epoch"] + 1
        log(f"resumed from {ck} at epoch {start}")
    elif start == 0 and not (work / "epoch_-1.json").exists():
        ev = evaluate(net.eval(), val, args.long_side)
        log({"epoch": -1, "val": ev, "note": "original MediaPipe weights"})
        (work / "epoch_-1.json").write_text(json.dumps(ev))
    anchors = ssd_anchors(args.crop, args.crop, (STRIDE,), (1,))
    rng = random.Random(args.seed + start)
    n_fb = d["n_face_boxes"]
    for epoch in range(start, args.epochs):
        net.train()
        t0 = time.time()
        sums = {"cls": 0.0, "box": 0.0, "kp": 0.0}
        for step in range(steps_per_epoch):
            imgs, labels, tg, sizes = [], [], [], []
            for _ in range(args.batch):
                r = rng.random()
                if r < 0.7:
                    ex = examples[rng.randrange(n_fb)]
                    if crops and rng.random() < args.paste_prob:
                        ex = paste_faces(ex, crops, rng, rng.randint(1, 4))
                else:
                    ex = examples[rng.randrange(n_fb, len(examples))] if len(examples) > n_fb and rng.random() < 0.4 else examples[rng.randrange(n_fb)]
                    if crops:
                        ex = paste_faces(ex, crops, rng, rng.randint(2, 8))
                img, boxes, wts = augment(ex, rng, (args.long_side * 0.6, args.long_side * 1.5), args.crop, args.roll, args.roll_prob)
                lab, t, sz = targets(boxes, wts, anchors)
                imgs.append(to_input(img))
                labels.append(lab)
                tg.append(t)
                sizes.append(sz)
            x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
            lab = torch.from_numpy(np.stack(labels))
            tgt = torch.from_numpy(np.stack(tg))
            size = torch.from_numpy(np.stack(sizes))
            reg, logit = net(x)
            with torch.no_grad():
                treg, tlogit = teacher(x)
            valid = lab >= 0
            pos = lab > 0
            npos = max(1.0, float(pos.sum()))
            l_cls = F.binary_cross_entropy_with_logits(logit[valid], lab[valid], reduction="sum") / npos
            if pos.any():
                pr = reg[pos]
                s = size[pos][:, None]
                l_box = F.smooth_l1_loss(pr[:, :4] / s, tgt[pos] / s, beta=0.05, reduction="mean") * 4
                tconf = torch.sigmoid(tlogit[pos])[:, None]
                l_kp = (F.smooth_l1_loss(pr[:, 4:] / s, treg[pos][:, 4:] / s, beta=0.05, reduction="none") * tconf).mean() * 12 * 0.5
            else:
                l_box = l_kp = reg.sum() * 0.0
            loss = l_cls + args.box_weight * l_box + l_kp
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
            sched.step()
            sums["cls"] += float(l_cls.detach())
            sums["box"] += float(l_box.detach())
            sums["kp"] += float(l_kp.detach())
            if step % 8 == 0:
                print(f"epoch {epoch} step {step}/{steps_per_epoch} loss {float(loss.detach()):.3f} ({(time.time() - t0) / (step + 1):.1f} s/step)", flush=True)
        rec = {"epoch": epoch, "lr": sched.get_last_lr()[0], "minutes": round((time.time() - t0) / 60, 2), **{k: round(v / steps_per_epoch, 4) for k, v in sums.items()}}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            rec["val"] = evaluate(net.eval(), val, args.long_side)
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch}, work / "last.tmp")
        os.replace(work / "last.tmp", ck)
        log(rec)
        plot_log(work)
    net.eval()
    out = export_onnx(net, work / "blazeface_ft.onnx")
    log(f"exported {out}")
    return out


def plot_log(work: Path) -> list[str]:
    """``curves_loss.png`` (classification, box and keypoint losses) and ``curves_accuracy.png`` (validation recall / precision) from ``train_log.jsonl``."""
    from ..errors import FacelabError
    from ..train.curves import plot_curves

    log = work / "train_log.jsonl"
    rows = []
    for line in log.read_text().splitlines() if log.is_file() else []:
        r = json.loads(line)
        if "epoch" not in r:
            continue
        row = {"epoch": r["epoch"] + 1, **{f"train_loss_{k}": r[k] for k in ("cls", "box", "kp") if k in r}}
        row.update({f"val_{k}": r["val"][k] for k in ("recall", "precision", "recall_small") if k in r.get("val", {})})
        rows.append(row)
    try:
        return plot_curves(rows, work, prefix="curves", title="blazeface fine-tuning")
    except FacelabError:  # no matplotlib: the JSON log is still there
        return []


def export_onnx(net, path: Path) -> Path:
    """ONNX (opset 17): input ``input`` (N, 3, H, W) in [-1, 1], H and W multiples of 32; outputs ``regressors``, ``scores`` (logits)."""
    import torch

    x = torch.zeros(1, 3, 256, 320)
    torch.onnx.export(
        net,
        (x,),
        str(path),
        input_names=["input"],
        output_names=["regressors", "scores"],
        dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "regressors": {0: "n", 1: "cells"}, "scores": {0: "n", 1: "cells"}},
        opset_version=17,
        dynamo=False,
    )
    fold_pads(path)
    return path


def fold_pads(path: Path) -> int:
    """Fold the explicit "SAME" Pad nodes into the following Conv's ``pads`` (2x faster in onnxruntime).

    onnxruntime's basic optimisation first folds the constant pad sizes; then every zero Pad that
    feeds only a Conv becomes that Conv's (asymmetric) padding.  Returns the number folded.
    """
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(Path(tmp) / "basic.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        m = onnx.load(so.optimized_model_filepath)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    folded = []
    for n in g.node:
        if n.op_type != "Pad" or len(n.input) < 2 or n.input[1] not in inits:
            continue
        if next((a.s for a in n.attribute if a.name == "mode"), b"constant") != b"constant":
            continue
        if len(n.input) > 2 and n.input[2] and (n.input[2] not in inits or numpy_helper.to_array(inits[n.input[2]]).item() != 0):
            continue
        pads = numpy_helper.to_array(inits[n.input[1]]).tolist()
        cs = consumers.get(n.output[0], [])
        if len(cs) != 1 or cs[0].op_type != "Conv" or pads[0] or pads[1] or pads[4] or pads[5]:
            continue
        conv = cs[0]
        old = next((a for a in conv.attribute if a.name == "pads"), None)
        if old is not None:
            if any(old.ints):
                continue
            conv.attribute.remove(old)
        conv.attribute.append(helper.make_attribute("pads", [pads[2], pads[3], pads[6], pads[7]]))
        conv.input[0] = n.input[0]
        folded.append(n)
    for n in folded:
        g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return len(folded)


def export_checkpoint(checkpoint: Path, out: Path) -> Path:
    """Re-export a training checkpoint (``last.pt``) to ONNX."""
    import torch

    from ..models import model_path
    from ..detect.blazeface_net import load_pretrained

    net = load_pretrained(model_path("blazeface_full"))
    net.load_state_dict(torch.load(checkpoint, map_location="cpu")["net"])
    return export_onnx(net.eval(), out)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("FACELAB_SHARED_DATA", str(Path(__file__).resolve().parents[3].parent / "shared" / "data")), help="the shared data folder")
    ap.add_argument("--work", default="train-runs/blazeface_ft", help="checkpoints, log and the exported ONNX go here")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--samples-per-epoch", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256, help="side of the training crops (multiple of 32)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--box-weight", type=float, default=2.0)
    ap.add_argument("--long-side", type=int, default=512, help="long side of the image at detection time")
    ap.add_argument("--paste-prob", type=float, default=0.3)
    ap.add_argument("--roll", type=float, default=0.0, help="turn training photos by up to this many degrees either way (0: never)")
    ap.add_argument("--roll-prob", type=float, default=0.5, help="share of training crops turned when --roll > 0")
    ap.add_argument("--paste-sources", type=int, default=1500)
    ap.add_argument("--eval-every", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> None:
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
