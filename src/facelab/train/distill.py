"""Fine-tuning dlib's face ResNet for degraded faces by distillation (no identity labels needed).

The student is the pretrained network whose last ``blocks`` residual blocks (and
fc layer) train; the teacher is the same network frozen.  Every training face is
shown to the student clean and in ``copies`` randomly degraded versions
(:func:`random_degradation`: low resolution 10-40 px with random resampling, a
drawn mask over the lower face, or both), each mirrored at random, and the loss
is the squared distance between the student's embedding and the **teacher's
embedding of the clean face** (the mirrored one for a mirrored copy).  So the
student learns to put a blurred or masked face where its clean version lies in
dlib's space, while the clean term holds clean faces where they were: the output
stays dlib's 128-d euclidean space (same 0.6 threshold, galleries stay usable).
This is knowledge distillation across image quality, as in e.g. Ge, Zhao, Li &
Luo 2018, "Low-Resolution Face Recognition in the Wild via Selective Knowledge
Distillation" (https://arxiv.org/abs/1811.09998), written here from scratch.

The prefix below the trained blocks runs once per (face, copy) and its
activations are cached, as in :mod:`facelab.train.finetune`.

Learning rates are **relative**: each weight tensor's Adam step size is ``lr`` x
its mean absolute value.  dlib's convolution weights are ~1e-3 (each followed by
an affine layer with gains ~10), so a plain ``lr`` that suits the gains moves the
convolutions by 10-25 % per step and the network forgets what it knew; the conv
biases (~1e-8, redundant before the affine layers) stay frozen.

What it buys is measured by ``benchmarks/transfer_study.py`` (README "Fine-tuning"):
mostly *enrol clean, recognise degraded*; settings chosen on ORL/Yale.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .finetune import FineTuneReport, degrade, embedder_metadata, face_chips, run_chips, trainer_settings
from .torch_resnet import load_dlib_resnet, require_torch

#: Degradations of :func:`random_degradation`: ``lowres`` (shrunk to 10-40 px and back), ``occluded`` (a mask over
#: the lower face, sometimes also low resolution).
DEGRADATIONS = ("lowres", "occluded")
#: Mask colours of the synthetic masks (RGB: light grey, surgical blue, white, black, pale blue).
MASK_COLOURS = ((200, 205, 210), (90, 120, 180), (240, 240, 240), (30, 30, 30), (150, 170, 200))
#: Defaults, chosen on ORL and Yale made low-resolution (enrol clean, probe degraded): 7 blocks beat 3
#: (ORL clean-to-lowres16 62.0 vs 55.0 %, dlib 54.0 %; Yale 84.8 vs 82.4 %, dlib 82.9 %).
BLOCKS = 7
EPOCHS = 6
COPIES = 3
LR = 3e-3


def random_degradation(chip: np.ndarray, rng: np.random.Generator, kinds: Sequence[str] = DEGRADATIONS, lo: int = 10, hi: int = 40) -> np.ndarray:
    """One randomly degraded copy of a 150-px chip (see :data:`DEGRADATIONS`)."""
    import cv2

    kind = kinds[int(rng.integers(len(kinds)))]
    c = chip.copy()
    h, w = c.shape[:2]
    if kind == "occluded":
        top, bottom = rng.uniform(0.48, 0.62), rng.uniform(0.88, 1.0)
        side, low_side = rng.uniform(0.18, 0.26), rng.uniform(0.22, 0.30)
        pts = np.array([[side * w, top * h], [(1 - side) * w, top * h], [(1 - low_side) * w, 0.86 * h], [0.5 * w, bottom * h], [low_side * w, 0.86 * h]], np.int32)
        cv2.fillPoly(c, [pts], MASK_COLOURS[int(rng.integers(len(MASK_COLOURS)))])
    elif kind != "lowres":
        raise ValueError(f"unknown degradation {kind!r} (choose from {', '.join(DEGRADATIONS)})")
    if kind == "lowres" or rng.random() < 0.3:
        px = int(rng.integers(lo, hi + 1))
        down = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(3))]
        up = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(2))]
        c = cv2.resize(cv2.resize(c, (px, px), interpolation=down), (w, h), interpolation=up)
    return c


def relative_lr_groups(net, start: int, lr: float) -> list[dict[str, Any]]:
    """Adam parameter groups for layers ``>= start``: step size ``lr`` x each tensor's mean |value|; the fc bias (the output
    centre) and the near-zero conv biases stay frozen."""
    groups = []
    for k, p in net.params.items():
        i = int(k.split("_", 1)[0])
        scale = float(p.detach().abs().mean())
        train = i >= start and not (net.layers[i].kind == "fc" and k.endswith("_bias")) and scale > 1e-6
        p.requires_grad_(train)
        if train:
            groups.append({"params": [p], "lr": lr * scale})
    return groups


def _distance(net, x: np.ndarray, target) -> float:
    return float(((run_chips(net, x, batch=64) - target) ** 2).sum(1).sqrt().mean())


def distance_to_clean(net, chips: np.ndarray, teacher_embeddings, how: str) -> float:
    """Mean euclidean distance between ``net``'s embeddings of ``chips`` degraded by ``how`` (``clean``, or
    :func:`facelab.train.finetune.degrade`'s ``lowres<N>`` / ``occluded``) and the teacher's of the clean chips."""
    return _distance(net, chips if how == "clean" else degrade(chips, how), teacher_embeddings)


def distill_chips(
    chips: np.ndarray,
    *,
    blocks: int = BLOCKS,
    epochs: int = EPOCHS,
    copies: int = COPIES,
    lr: float = LR,
    kinds: Sequence[str] = DEGRADATIONS,
    seed: int = 0,
    net=None,
    held_out: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[Any, list[dict[str, float]]]:
    """Fine-tune the last ``blocks`` residual blocks so degraded faces embed where their clean versions do.

    ``chips``: (N, 150, 150, 3) uint8 dlib chips (:func:`facelab.train.finetune.face_chips`), of any people, no labels.
    Returns ``(net, history)``: per epoch the training ``loss``, and with ``held_out`` chips the mean distance of their
    ``clean`` / ``lowres24`` / ``lowres16`` / ``occluded`` embeddings to the teacher's clean ones (epoch 0 = before training).
    """
    torch = require_torch()
    from ..progress import track

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = net if net is not None else load_dlib_resnet()
    net.eval()  # dlib's network has no batch statistics or dropout: eval and train compute the same
    cut = net.cut(blocks)
    mirrored = np.ascontiguousarray(chips[:, :, ::-1])
    base = run_chips(net, chips, cut, batch=64)
    with torch.no_grad():
        teacher = net(base, cut)  # the rest of the network on the clean chips' prefix: their embeddings
    teacher_mirrored = run_chips(net, mirrored, batch=64)
    xs, ys = [base], [teacher]
    for _ in track(range(copies), copies, "degraded copies", show=progress):
        flip = rng.random(len(chips)) < 0.5
        src = np.where(flip[:, None, None, None], mirrored, chips)
        xs.append(run_chips(net, np.stack([random_degradation(c, rng, kinds) for c in src]), cut, batch=64))
        ys.append(torch.where(torch.as_tensor(flip)[:, None], teacher_mirrored, teacher))
    x, y = torch.cat(xs), torch.cat(ys)
    del xs, ys

    held: dict[str, Any] = {}
    if held_out is not None:
        held_teacher = run_chips(net, held_out, batch=64)
        held = {how: held_out if how == "clean" else degrade(held_out, how) for how in ("clean", "lowres24", "lowres16", "occluded")}

    def held_row() -> dict[str, float]:
        return {f"distance_{how}": _distance(net, v, held_teacher) for how, v in held.items()}

    history = [{"epoch": 0, **held_row()}] if held else []
    groups = relative_lr_groups(net, cut, lr)
    opt = torch.optim.Adam(groups)
    batch = 64
    steps = max(1, epochs * math.ceil(len(x) / batch))
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda t: min(1.0, (t + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))] * len(groups))
    g = torch.Generator().manual_seed(seed)
    for epoch in track(range(epochs), epochs, "distilling", show=progress):
        order = torch.randperm(len(x), generator=g)
        total = 0.0
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            loss = ((net(x[idx], cut) - y[idx]) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        history.append({"epoch": epoch + 1, "loss": total / len(x), **(held_row() if held else {}), "seconds": round(time.perf_counter() - t0, 1)})
    for p in net.params.values():
        p.requires_grad_(False)
    return net, history


#: The distilled network keeps dlib's space: euclidean distance, dlib's threshold.
THRESHOLD = 0.6


def distill_embedder(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    detector: str = "hog",
    min_face: int = 40,
    fallback: bool = False,
    progress: bool = False,
    command: str = "",
    **train: Any,
) -> FineTuneReport:
    """Distil dlib's ResNet on the faces of every image under ``folder`` (any layout, no labels) and write ``out`` (.onnx)
    + a model card; ``train``: :func:`distill_chips`' settings (``blocks``, ``epochs``, ``copies``, ``lr``, ``seed``)."""
    from ..io.paths import iter_image_paths
    from .dataset import LabeledImage

    settings = trainer_settings(distill_chips, train, ("chips", "kinds", "net", "held_out", "progress"), "distillation")
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise InputError("the distilled embedder is written as ONNX: give a file name ending in .onnx", source=str(out))
    if not Path(folder).is_dir():
        raise InputError("not a folder of face photos", source=str(folder))
    t0 = time.perf_counter()
    items = [LabeledImage(p, "") for p in iter_image_paths(folder)]
    if not items:
        raise InputError("no images in the folder", source=str(folder))
    chips = face_chips(items, detector=detector, min_face=min_face, fallback=fallback, progress=progress)
    net, history = distill_chips(chips.chips, progress=progress, **train)
    settings.update(detector=detector, min_face=min_face)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = embedder_metadata(net, THRESHOLD, {"metric": "euclidean", "trained_on": Path(folder).name, "objective": "distill", "settings": settings})
    net.to_onnx(out, meta)
    report = FineTuneReport(str(out), str(out.with_suffix(".md")), 0, len(chips), history, THRESHOLD, settings, time.perf_counter() - t0)
    _write_card(report, folder, command or f"facelab train embedder {folder} --distill --out {out}", chips.failed)
    return report


def _write_card(report: FineTuneReport, folder, command: str, failed) -> None:
    s = report.settings
    lines = [
        f"# {Path(report.path).name}: dlib ResNet distilled for degraded faces",
        "",
        f"Written by `facelab train embedder --distill` on {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} in {report.seconds:.0f} s.",
        "",
        "## Data",
        f"- `{folder}`: {report.images} faces ({len(failed)} images left out: no face found or unreadable); no labels used.",
        "",
        "## Licence",
        "- Starting weights: dlib's `dlib_face_recognition_resnet_model_v1` (Davis King, public domain: https://github.com/davisking/dlib-models).",
        "- The distilled weights inherit the terms of the images above: use them only as those images' licence allows.",
        "",
        "## Model",
        f"- Last {s['blocks']} residual blocks + the 128-d fc layer trained so that {s['copies']} randomly degraded copies of each face",
        "  (10-40 px low resolution, a drawn mask over the lower face, or both; mirrored at random) and the face itself",
        "  embed where the frozen network embeds the clean face (squared distance), "
        f"{s['epochs']} epochs, relative lr {s['lr']:g} (`facelab.train.distill`).",
        f"- Same space as dlib's: dlib alignment (150 px, padding 0.25), euclidean distance, threshold {report.threshold:g} (dlib's).",
        "  What it buys on LFW (enrol clean photos, recognise low-resolution ones) and costs (View 1): README \"Fine-tuning\".",
        "",
        "## Command",
        f"`{command}`",
        "",
        "## Training",
        *[f"- epoch {h['epoch']}: " + ", ".join(f"{k} {v:.4f}" for k, v in h.items() if k not in ("epoch", "seconds")) for h in report.history],
    ]
    Path(report.card).write_text("\n".join(lines) + "\n")


__all__ = ["BLOCKS", "COPIES", "DEGRADATIONS", "EPOCHS", "LR", "THRESHOLD", "distance_to_clean", "distill_chips", "distill_embedder", "random_degradation", "relative_lr_groups"]
