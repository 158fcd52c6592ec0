"""Attributes from a fine-tuned dlib face ResNet (``facelab train attributes --input chip:dlib``).

The input is the face chip dlib's ResNet sees (150 px, aligned on the 5-point
model, 0.25 padding: what :mod:`facelab.embed` embeds).  The network's last
``blocks`` residual blocks train together with a shared hidden layer and one
head per task; everything below them is frozen and runs **once** per chip and
per mirrored chip (its activations are cached), so an epoch on 6,400 UTKFace
faces takes ~20 s on 2 cores.  Each step sees every face either way round at
random; validation and the exported model average both.

Age is predicted the DEX way (Rothe, Timofte & Van Gool 2018, "Deep expectation
of real and apparent age from a single image without facial landmarks", IJCV
126): a softmax over 0..116 years whose expectation is the age, trained on a
Gaussian label distribution around the true age (sigma 2 years; Gao et al.
2017, "Deep Label Distribution Learning With Label Ambiguity", IEEE TIP 26)
plus a small L1 term on the expectation.  Class tasks use cross-entropy with
label smoothing (and class weights with ``balance="weights"``).

The exported ONNX file holds only what training changed: the trained blocks,
the hidden layer and the heads (weights stored as float16, cast back on load).
Its input is the frozen prefix's activations; its ``"prefix"`` metadata names
the installed dlib network (file, SHA-256, layer count) that
:class:`facelab.attributes.onnx_model.OnnxAttributeModel` converts once
(:func:`facelab._dlibdnn.converted_onnx_path` with ``stop``) and runs first, in
float32, exactly as training computed it.  Outputs: probabilities per class
task and years for age, averaged over the chip and its mirror image.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .torch_resnet import load_dlib_resnet, require_torch

#: Age bins of the DEX head: 0..116 years (UTKFace's range).
AGE_BINS = 117
#: Width (years) of the Gaussian label distribution around each true age.
AGE_SIGMA = 2.0
#: Weight of the L1 term on the expected age (years), beside the label-distribution loss.
AGE_L1 = 0.05
#: Dropout of the shared hidden layer (``facelab train attributes --input chip:dlib`` sets it; utk-dlib-ft was trained so).
DROPOUT = 0.3
#: Residual blocks trained by default (of the network's 14): chosen on UTKFace's validation split (docs/attributes.md).
DEFAULT_BLOCKS = 3


def build_net(tasks: Mapping[str, int], blocks: int = DEFAULT_BLOCKS, hidden: int = 256, dropout: float = 0.3, resnet=None):
    """The network: dlib's ResNet up to its global pooling (256-d), a hidden layer, one head per task (0 classes = age)."""
    torch = require_torch()
    nn = torch.nn

    class DlibAttributeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.tasks = dict(tasks)
            self.resnet = resnet if resnet is not None else load_dlib_resnet()
            self.cut = self.resnet.cut(blocks)
            self.blocks = blocks
            self.stop = len(self.resnet.layers) - 1  # after the global average pooling, before the 128-d fc
            for k, p in self.resnet.params.items():
                i = int(k.split("_", 1)[0])
                p.requires_grad_(self.cut <= i < self.stop)
            self.body = nn.Sequential(nn.Linear(256, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
            self.heads = nn.ModuleDict({t: nn.Linear(hidden, AGE_BINS if n == 0 else n) for t, n in self.tasks.items()})
            self.register_buffer("ages", torch.arange(AGE_BINS, dtype=torch.float32), persistent=False)

        def trainable(self) -> tuple[list, list]:
            """(the ResNet's trained blocks, the heads) parameters."""
            return [p for p in self.resnet.params.values() if p.requires_grad], list(self.body.parameters()) + list(self.heads.parameters())

        def prefix(self, x):
            """The frozen part: dlib-normalised chips -> activations at the first trained block."""
            return self.resnet(x, 0, self.cut)

        def from_prefix(self, f) -> dict[str, Any]:
            """Logits per task (age: over :data:`AGE_BINS` years) from prefix activations."""
            z = self.body(self.resnet(f, self.cut, self.stop).flatten(1))
            return {t: h(z) for t, h in self.heads.items()}

        def forward(self, x) -> dict[str, Any]:
            return self.from_prefix(self.prefix(x))

        def state(self) -> dict[str, Any]:
            """What training changes (the trained blocks and the heads): small enough to keep per epoch."""
            return {k: v.detach().clone() for k, v in self.state_dict().items() if not k.startswith("resnet.") or self._trained_key(k)}

        def _trained_key(self, k: str) -> bool:
            i = int(k.split(".")[-1].split("_", 1)[0])
            return self.cut <= i < self.stop

        def load_state(self, state: dict[str, Any]) -> None:
            self.load_state_dict(state, strict=False)

        def export_module(self, flip: bool = True):
            return export_module(self, flip)

        def prefix_metadata(self, flip: bool = True) -> dict[str, Any]:
            return prefix_metadata(self, flip)

        def prefix_shape(self) -> tuple[int, ...]:
            return prefix_shape(self)

    return DlibAttributeNet()


def outputs(net, logits: dict[str, Any]) -> dict[str, Any]:
    """Probabilities per class task, expected years for age."""
    return {t: (y.softmax(1) @ net.ages if net.tasks[t] == 0 else y.softmax(1)) for t, y in logits.items()}


def export_module(net, flip: bool = True):
    """What the ONNX file computes: the network above its frozen prefix.

    Input: the prefix activations (:meth:`prefix` of dlib-normalised chips; with ``flip``, the batch is the chips
    followed by their mirror images); output: probabilities per class task, years for age (mirror-averaged).
    """
    torch = require_torch()

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.flip, self.order = net, flip, list(net.tasks)

        def forward(self, f):
            out = outputs(self.net, self.net.from_prefix(f))
            res = []
            for t in self.order:
                y = out[t]
                if self.flip:
                    n = y.shape[0] // 2
                    y = (y[:n] + y[n:]) / 2
                res.append(y)
            return tuple(res)

    return Head().eval()


def prefix_metadata(net, flip: bool = True) -> dict[str, Any]:
    """What a loader needs to rebuild the frozen prefix from the installed dlib network (``"prefix"`` metadata)."""
    from pathlib import Path

    parsed = net.resnet.parsed
    return {"network": "dlib_resnet", "file": Path(parsed.path).name, "sha256": parsed.sha256, "layers": int(net.cut),
            "means": [float(m) for m in parsed.means], "mirror": bool(flip)}


def prefix_shape(net) -> tuple[int, ...]:
    """Shape of one chip's prefix activations (C, H, W)."""
    torch = require_torch()
    with torch.no_grad():
        return tuple(net.prefix(torch.zeros(1, 3, 150, 150)).shape[1:])


def _prefix_cache(net, images: np.ndarray) -> tuple[Any, Any]:
    """Prefix activations (float16) of the chips and of their mirror images."""
    from .finetune import prefix_features

    a, b = (prefix_features(net.resnet, np.ascontiguousarray(x), net.cut).base.half() for x in (images, images[:, :, ::-1]))
    return a, b


def _predict_cached(net, feats: tuple[Any, Any], flip: bool, batch: int = 256) -> dict[str, np.ndarray]:
    torch = require_torch()
    net.eval()
    res: dict[str, list] = {t: [] for t in net.tasks}
    with torch.no_grad():
        for i in range(0, len(feats[0]), batch):
            views = [outputs(net, net.from_prefix(f[i : i + batch].float())) for f in (feats if flip else feats[:1])]
            for t in net.tasks:
                res[t].append((sum(v[t] for v in views) / len(views)).numpy())
    return {t: np.concatenate(v) for t, v in res.items()}


def finetune_attributes(data, val, tasks: Sequence, config, *, blocks: int = DEFAULT_BLOCKS, on_batch=None, on_epoch=None):
    """Fine-tune on ``data`` (a :class:`facelab.attributes.data.ChipSet` of dlib chips); the best epoch on ``val`` is kept.

    ``config`` is a :class:`facelab.train.attributes.TrainConfig`: ``lr`` is the heads' peak learning rate (the
    ResNet's blocks get a tenth of it), ``epochs``, ``patience``, ``batch_size``, ``weight_decay``, ``seed``,
    ``label_smoothing``, ``balance``, ``keep``, ``max_minutes``, ``flip_tta`` and ``threads`` apply as for the CNN.
    """
    torch = require_torch()
    import torch.nn.functional as F

    from .attributes import EpochLog, TrainResult, _kept_epochs, balance_plan, keep_epoch, score_predictions, seed_everything, stop_reason

    torch.set_num_threads(max(1, config.threads))
    seed_everything(config.seed)
    tasks = list(tasks)
    keep_k = _kept_epochs(config.keep)
    net = build_net({t.name: t.n for t in tasks}, blocks, config.hidden, config.dropout)
    net.eval()
    feats = _prefix_cache(net, data.images)
    val_feats = _prefix_cache(net, val.images) if val is not None and len(val) else None
    plan = balance_plan(data, tasks, config.balance)
    order_base = np.repeat(np.arange(len(data)), plan["repeats"]) if plan["repeats"] is not None else np.arange(len(data))
    class_w = {t: torch.tensor(w, dtype=torch.float32) for t, w in plan["weights"].items()}
    trunk, heads = net.trainable()
    opt = torch.optim.AdamW([{"params": trunk, "lr": config.lr / 10}, {"params": heads, "lr": config.lr}], weight_decay=config.weight_decay)
    n = len(order_base)
    steps = max(1, math.ceil(n / config.batch_size))
    total = config.epochs * steps
    if total >= 4:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[config.lr / 10, config.lr], total_steps=total, pct_start=0.15)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    rng = np.random.default_rng(config.seed)
    labels_t = {t.name: torch.from_numpy(data.labels[t.name]) for t in tasks}
    history: list[EpochLog] = []
    best_score, best_epoch, best_state, best_metrics = -1.0, 0, None, {}
    kept: dict[int, tuple[float, Any]] = {}
    stopped, spent = "completed", 0.0
    for epoch in range(config.epochs):
        if why := stop_reason(epoch, best_epoch, spent, config):
            stopped = why
            break
        t0 = time.time()
        net.train()
        perm = order_base[rng.permutation(n)]
        flips = torch.from_numpy(rng.integers(0, 2, len(data)).astype(bool))
        run_loss, seen = 0.0, 0
        hits: dict[str, list[float]] = {t.name: [0.0, 0.0] for t in tasks}
        for b in range(steps):
            idx = torch.from_numpy(perm[b * config.batch_size : (b + 1) * config.batch_size])
            if len(idx) < 2:
                continue
            x = torch.where(flips[idx].view(-1, 1, 1, 1), feats[1][idx], feats[0][idx]).float()
            logits = net.from_prefix(x)
            loss = logits[tasks[0].name].new_zeros(())
            for t in tasks:
                y = labels_t[t.name][idx]
                m = ~torch.isnan(y) if t.n == 0 else y >= 0
                if not m.any():
                    continue
                lg = logits[t.name][m]
                if t.n == 0:
                    ya = y[m].clamp(0, AGE_BINS - 1)
                    soft = torch.exp(-0.5 * ((net.ages[None] - ya[:, None]) / AGE_SIGMA) ** 2)
                    soft = soft / soft.sum(1, keepdim=True)
                    expected = lg.softmax(1) @ net.ages
                    loss = loss - (soft * lg.log_softmax(1)).sum(1).mean() + AGE_L1 * (expected - ya).abs().mean()
                    hits[t.name][0] += float((expected - y[m]).abs().sum())
                else:
                    loss = loss + F.cross_entropy(lg, y[m], weight=class_w.get(t.name), label_smoothing=config.label_smoothing)
                    hits[t.name][0] += float((lg.argmax(1) == y[m]).sum())
                hits[t.name][1] += float(m.sum())
            opt.zero_grad(set_to_none=True)
            if loss.requires_grad:
                loss.backward()
                opt.step()
            sched.step()
            run_loss += float(loss.detach()) * len(idx)
            seen += len(idx)
            if on_batch is not None:
                on_batch(epoch, b, steps, run_loss / max(seen, 1))
        train_loss = run_loss / max(seen, 1)
        if val_feats is not None:
            metrics, score = score_predictions(_predict_cached(net, val_feats, config.flip_tta), val.labels, tasks)
        else:
            metrics, score = {}, -train_loss
        secs = time.time() - t0
        spent += secs
        train_metrics = {("age_mae" if t.n == 0 else f"{t.name}_acc"): hits[t.name][0] / hits[t.name][1] for t in tasks if hits[t.name][1]}
        log = EpochLog(epoch + 1, train_loss, None, metrics, score, float(sched.get_last_lr()[-1]), secs, train_metrics)
        history.append(log)
        if score > best_score:
            best_score, best_epoch, best_metrics = score, epoch + 1, metrics
            best_state = net.state()
        keep_epoch(kept, keep_k, epoch + 1, score, net.state)
        if on_epoch is not None:
            on_epoch(log)
    if best_state is not None:
        net.load_state(best_state)
    net.eval()
    balance = {k: plan[k] for k in ("mode", "before", "after")}
    return TrainResult(net, tasks, config, history, best_epoch, best_score, best_metrics, stopped, {e: st for e, (_, st) in sorted(kept.items())}, balance)


__all__ = ["AGE_BINS", "DEFAULT_BLOCKS", "DROPOUT", "build_net", "export_module", "finetune_attributes", "outputs", "prefix_metadata", "prefix_shape"]
