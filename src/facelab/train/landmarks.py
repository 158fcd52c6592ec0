"""Train the small landmark CNN (PyTorch, CPU) on 68 points or any point set, and export it to ONNX.

``train_landmarks(data, out)``:

1. reads ``keypoints.csv`` + ``images/`` (:func:`facelab.evaluate.landmarks.read_keypoints`);
   trains on the ``train`` persons, picks the best epoch on ``val``; the
   ``test`` persons (:func:`facelab.evaluate.landmarks.split_of`) are never read;
2. finds each face's box with the same detector used at run time (HOG), so
   the network learns from the boxes it will be given; faces the detector
   misses get a box predicted from their points (a fit on the detected ones);
3. crops with random jitter (shift, scale, rotation: the geometric part of the
   augmentation preset) and applies the rest of the preset on the crop
   (flip with left/right swap, pose warp, brightness/contrast, blur, noise,
   occlusion) with :class:`facelab.datasets.augment.Augmenter`;
4. checkpoints every epoch (``checkpoint.pt``: resumable), logs one JSON
   line per epoch to ``train.log``, exports the best epoch to
   ``landmarks68.onnx`` with the crop settings in its metadata, and draws ``curves_*.png``.

Any point set: a CSV with ``image, x0, y0, ... x{K-1}, y{K-1}`` (e.g. a 15-point
eyes/nose/mouth set) trains a K-point model (``landmarks{K}.onnx``; the number of
points is in its metadata, so ``--model FILE`` runs it).  The flip and pose
augmentations need the 68-point layout and are skipped for other sets; the NME
divides by :func:`facelab.landmarks.points.normalizing_distance` (outer eye
corners for 68 and 15 points, the points' box size otherwise).

Network: depthwise-separable encoder (96 -> 6 px), a light decoder back to
24x24, 68 heatmaps and a soft-argmax (integral regression, Sun et al. 2018),
loss = mean point distance / inter-ocular distance (the NME itself).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..datasets.augment import AugmentConfig, Augmenter, preset
from ..errors import InputError
from ..evaluate.landmarks import KeypointSample, inner_points, match_face, points_box, read_keypoints, split_of
from ..landmarks.cnn import CropSpec, to_gray
from ..landmarks.points import normalizing_distance
from ..types import Box, Face


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 1  # channel multiplier of the network
    augment: str = "default"
    seed: int = 0
    threads: int = 1
    limit: int | None = None  # use only the first N training images (quick runs)
    val_limit: int | None = None  # use only the first N validation images (quick runs)
    num_points: int | None = None  # points per face the CSV must have (None: as many as its header has)
    init: str | None = None  # start from these weights (a best.pt of an earlier run): a second, fine-tuning cycle
    spec: CropSpec = field(default_factory=lambda: CropSpec(input_size=64))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = asdict(self.spec)
        return d


# --- the network ----------------------------------------------------------------------


def build_net(width: int = 1, num_points: int = 68):
    """The landmark network (a ``torch.nn.Module``): grey 0..255 crop (N,1,S,S) -> points in [0,1] (N,K,2)."""
    import torch
    from torch import nn

    def cbr(i: int, o: int, s: int = 1) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    def dws(i: int, o: int, s: int = 1) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(i, i, 3, s, 1, groups=i, bias=False), nn.BatchNorm2d(i), nn.ReLU(inplace=True),
            nn.Conv2d(i, o, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
        )

    c = [16 * width, 32 * width, 64 * width, 128 * width]

    class LandmarkNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = cbr(1, c[0], 2)  # /2
            self.s1 = nn.Sequential(dws(c[0], c[1], 2), dws(c[1], c[1]))  # /4
            self.s2 = nn.Sequential(dws(c[1], c[2], 2), dws(c[2], c[2]))  # /8
            self.s3 = nn.Sequential(dws(c[2], c[3], 2), dws(c[3], c[3]), dws(c[3], c[3]), dws(c[3], c[3]))  # /16
            self.u2 = dws(c[3] + c[2], c[2])
            self.u1 = dws(c[2] + c[1], c[1] + c[0])
            self.head = nn.Conv2d(c[1] + c[0], num_points, 1)
            self.temp = nn.Parameter(torch.tensor(1.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # per-crop standardisation: robust to exposure, done inside the graph
            m = x.mean(dim=(2, 3), keepdim=True)
            sd = x.std(dim=(2, 3), keepdim=True) + 1.0
            x = (x - m) / sd
            x0 = self.stem(x)
            x1 = self.s1(x0)
            x2 = self.s2(x1)
            x3 = self.s3(x2)
            y = self.u2(torch.cat([nn.functional.interpolate(x3, size=x2.shape[-2:], mode="nearest"), x2], 1))
            y = self.u1(torch.cat([nn.functional.interpolate(y, size=x1.shape[-2:], mode="nearest"), x1], 1))
            h = self.head(y) * self.temp
            n, k, hh, ww = h.shape
            p = torch.softmax(h.reshape(n, k, hh * ww), dim=-1).reshape(n, k, hh, ww)
            xs = (torch.arange(ww, dtype=h.dtype) + 0.5) / ww
            ys = (torch.arange(hh, dtype=h.dtype) + 0.5) / hh
            px = (p.sum(dim=2) * xs).sum(dim=-1)
            py = (p.sum(dim=3) * ys).sum(dim=-1)
            return torch.stack([px, py], dim=-1)

    return LandmarkNet()


# --- data ---------------------------------------------------------------------------


@dataclass
class TrainItem:
    gray: np.ndarray
    points: np.ndarray  # (K, 2) in the image
    face: Face  # the box the network is given
    box_source: str  # "hog" or "points"


def _box_from_points(points: np.ndarray, fit: tuple[float, float, float]) -> Box:
    g = points_box(inner_points(points))
    side = max(g.width, g.height)
    ox, oy, k = fit
    cx, cy = g.center
    return Box.from_center(cx + ox * side, cy + oy * side, k * side, k * side)


def fit_box_model(pairs: list[tuple[np.ndarray, Box]]) -> tuple[float, float, float]:
    """Median (x offset, y offset, size ratio) of detector boxes relative to the box of the inner points."""
    if not pairs:
        return 0.0, 0.05, 1.0
    rows = []
    for pts, b in pairs:
        g = points_box(inner_points(pts))
        side = max(g.width, g.height)
        rows.append(((b.center[0] - g.center[0]) / side, (b.center[1] - g.center[1]) / side, max(b.width, b.height) / side))
    return tuple(float(v) for v in np.median(np.array(rows), axis=0))  # type: ignore[return-value]


def detect_boxes(samples: list[KeypointSample], cache: Path, detector: str = "hog", progress: bool = True) -> dict[str, dict[str, float] | None]:
    """The matched detection of every sample (or None), cached in ``cache`` (JSON) so re-runs skip it."""
    from ..detect import detect
    from ..io import load_image
    from ..progress import track

    done: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {}
    todo = [s for s in samples if s.path not in done]
    for i, s in enumerate(track(todo, len(todo), "detecting faces", progress)):
        f = match_face(detect(load_image(s.path), detector, rotate="auto"), s.points)
        done[s.path] = None if f is None else {**f.box.to_dict(), "rotation": f.rotation}
        if i % 100 == 99:
            cache.write_text(json.dumps(done))
    cache.write_text(json.dumps(done))
    return done


def load_items(samples: list[KeypointSample], boxes: dict[str, Any], fit: tuple[float, float, float]) -> list[TrainItem]:
    from ..io import load_image

    items = []
    for s in samples:
        b = boxes.get(s.path)
        if b:
            face, src = Face(Box.from_dict(b), 1.0, "hog", rotation=float(b.get("rotation", 0.0))), "hog"
        else:
            face, src = Face(_box_from_points(s.points, fit), 1.0, "points"), "points"
        items.append(TrainItem(to_gray(load_image(s.path)), s.points.astype(np.float32), face, src))
    return items


def jittered(face: Face, rng: np.random.Generator, cfg: AugmentConfig) -> Face:
    """The face box moved, scaled and turned at random (the geometric augmentation, done in the crop)."""
    b = face.box
    side = max(b.width, b.height)
    cx, cy = b.center
    cx += rng.uniform(-cfg.shift, cfg.shift) * side
    cy += rng.uniform(-cfg.shift, cfg.shift) * side
    s = math.exp(rng.uniform(math.log(1 - cfg.scale), math.log(1 + cfg.scale))) if cfg.scale else 1.0
    return Face(Box.from_center(cx, cy, b.width * s, b.height * s), face.score, face.detector, face.rotation + rng.uniform(-cfg.rotate, cfg.rotate))


def make_example(item: TrainItem, spec: CropSpec, rng: np.random.Generator | None = None, aug: Augmenter | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(crop (S,S) uint8, points (K,2) in crop pixels) for one item, augmented when ``rng``/``aug`` are given."""
    face = jittered(item.face, rng, aug.config) if (rng is not None and aug is not None) else item.face
    m = spec.matrix(face)
    crop = spec.crop(item.gray, m)
    pts = item.points @ m[:, :2].T + m[:, 2]
    if aug is not None:
        rgb, pts = aug(cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB), pts)
        crop = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return crop, pts.astype(np.float32)


def batch_arrays(items: list[TrainItem], spec: CropSpec, rng=None, aug=None) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*(make_example(it, spec, rng, aug) for it in items))
    return np.stack(xs)[:, None].astype(np.float32), np.stack(ys) / spec.input_size


# --- training -----------------------------------------------------------------------


def nme_loss(pred, target):
    """Mean point distance / :func:`~facelab.landmarks.points.normalizing_distance`, per face, averaged (the NME being minimised)."""
    import torch

    k = target.shape[1]
    if k in (68, 15):
        a, b = (36, 45) if k == 68 else (0, 4)
        iod = torch.linalg.norm(target[:, a] - target[:, b], dim=-1).clamp_min(1e-3)
    else:
        span = target.amax(dim=1) - target.amin(dim=1)
        iod = torch.sqrt(span[:, 0] * span[:, 1]).clamp_min(1e-3)
    d = torch.sqrt(((pred - target) ** 2).sum(-1) + 1e-8).mean(-1)
    return (d / iod).mean()


def evaluate_items(net, items: list[TrainItem], spec: CropSpec, batch: int = 64) -> np.ndarray:
    """Per-face NME of the network on un-augmented crops (crop coordinates: NME is scale-free)."""
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(items), batch):
            x, y = batch_arrays(items[i : i + batch], spec)
            p = net(torch.from_numpy(x)).numpy()
            out.append(np.linalg.norm(p - y, axis=-1).mean(-1) / np.maximum(normalizing_distance(y), 1e-6))
    return np.concatenate(out) if out else np.zeros(0)


def export_onnx(net, spec: CropSpec, path: Path, extra_meta: dict[str, str] | None = None, num_points: int = 68) -> Path:
    """Export to ONNX (dynamic batch) with the crop settings and the number of points in the metadata facelab reads."""
    import onnx
    import torch

    net.eval()
    x = torch.zeros(1, 1, spec.input_size, spec.input_size)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(net, x, str(tmp), input_names=["image"], output_names=["points"], dynamic_axes={"image": {0: "n"}, "points": {0: "n"}}, opset_version=17, dynamo=False)
    model = onnx.load(str(tmp))
    meta = {
        "facelab": "landmarks68" if num_points == 68 else "landmarks", "num_points": str(num_points), "input_size": str(spec.input_size),
        "crop_scale": str(spec.crop_scale), "y_shift": str(spec.y_shift), **(extra_meta or {}),
    }
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    tmp.unlink(missing_ok=True)
    return path


def _plot_log(out: Path) -> list[str]:
    """``curves_loss.png`` (train and val NME, the loss) and ``curves_metrics.png`` (val failure rate) from ``train.log``."""
    from ..errors import FacelabError
    from .curves import plot_curves

    rows = [json.loads(line) for line in (out / "train.log").read_text().splitlines() if line.strip()] if (out / "train.log").is_file() else []
    rows = [{"epoch": r["epoch"] + 1, "train_loss_nme": r["train_nme"], "val_loss_nme": r["val_nme"], "val_fail_rate": r.get("val_fail")} for r in rows]
    try:
        return plot_curves(rows, out, prefix="curves", title="landmarks")
    except FacelabError:  # no matplotlib: the JSON log is still there
        return []


def train_landmarks(
    data: str | os.PathLike[str], out: str | os.PathLike[str], config: TrainConfig | None = None, *, progress: bool = True, log=print, on_epoch=None
) -> dict[str, Any]:
    """Train (or resume) in ``out``; returns the summary written to ``out/summary.json``."""
    try:
        import torch
    except ImportError:
        raise InputError("training needs PyTorch: pip install 'facelab[train]'  (CPU build: pip install torch==2.13.0)") from None
    cfg = config or TrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    samples = read_keypoints(data, num_points=cfg.num_points)
    k = len(samples[0].points)
    train_s = [s for s in samples if split_of(s.person) == "train"][: cfg.limit or None]
    val_s = [s for s in samples if split_of(s.person) == "val"][: cfg.val_limit or None]
    if not train_s or not val_s:
        raise InputError(f"need persons in both the train and val splits (got {len(train_s)} / {len(val_s)} images)", source=str(data))
    boxes = detect_boxes(train_s + val_s, out / "boxes.json", progress=progress)
    fit = fit_box_model([(s.points, Box.from_dict(boxes[s.path])) for s in train_s if boxes.get(s.path)])
    train_items = load_items(train_s, boxes, fit)
    val_items = [it for it in load_items(val_s, boxes, fit) if it.box_source == "hog"]  # scored like at run time
    aug_cfg = preset(cfg.augment)
    aug = Augmenter(aug_cfg, seed=cfg.seed, geometry=False)
    if not val_items:
        raise InputError("no validation face was found by the detector (need persons in the val split with detectable faces)", source=str(data))
    log(f"{k} points; train {len(train_items)} images ({sum(i.box_source == 'hog' for i in train_items)} with detector boxes), val {len(val_items)}; box fit {fit}")

    net = build_net(cfg.width, k)
    if cfg.init:
        net.load_state_dict(torch.load(cfg.init))
        log(f"starting from the weights in {cfg.init}")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_items) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.1)
    ckpt = out / "checkpoint.pt"
    start, best, best_epoch = 0, float("inf"), -1
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        if state.get("config") == cfg.to_dict():
            net.load_state_dict(state["net"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            start, best, best_epoch = state["epoch"] + 1, state["best"], state["best_epoch"]
            rng = state["rng"]
            aug.rng = state["aug_rng"]
            log(f"resumed after epoch {start} (best val NME {best:.4f} at epoch {best_epoch})")
        else:
            log("checkpoint.pt was made with other settings: starting over")
    t_start = time.time()
    for epoch in range(start, cfg.epochs):
        net.train()
        t0 = time.time()
        order = rng.permutation(len(train_items))
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x, y = batch_arrays([train_items[i] for i in idx], cfg.spec, rng, aug)
            loss = nme_loss(net(torch.from_numpy(x)), torch.from_numpy(y).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        val = evaluate_items(net, val_items, cfg.spec)
        v = float(val.mean())
        if v < best:
            best, best_epoch = v, epoch
            torch.save(net.state_dict(), out / "best.pt")
        rec = {"epoch": epoch, "train_nme": round(float(np.mean(losses)), 5), "val_nme": round(v, 5), "val_fail": round(float((val > 0.1).mean()), 4), "lr": sched.get_last_lr()[0], "s": round(time.time() - t0, 1)}
        with open(out / "train.log", "a") as f:
            f.write(json.dumps(rec) + "\n")
        (on_epoch or (lambda r: log(json.dumps(r))))(rec)  # each epoch's record (default: a JSON line to ``log``)
        _plot_log(out)
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch, "best": best, "best_epoch": best_epoch, "config": cfg.to_dict(), "rng": rng, "aug_rng": aug.rng}, ckpt)
    net.load_state_dict(torch.load(out / "best.pt"))
    n_params = sum(p.numel() for p in net.parameters())
    onnx_path = export_onnx(net, cfg.spec, out / f"landmarks{k}.onnx", {"epochs": str(cfg.epochs), "best_epoch": str(best_epoch), "val_nme": f"{best:.5f}"}, num_points=k)
    summary = {"onnx": str(onnx_path), "num_points": k, "plots": _plot_log(out), "best_epoch": best_epoch, "val_nme": best, "params": n_params, "train_images": len(train_items), "val_images": len(val_items), "config": cfg.to_dict(), "seconds_this_run": round(time.time() - t_start, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


__all__ = ["TrainConfig", "build_net", "export_onnx", "make_example", "train_landmarks"]
