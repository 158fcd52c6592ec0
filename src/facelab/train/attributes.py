"""Multi-task training of :class:`~facelab.train.attribute_nets.AttributeNet` (torch; the ``train`` extra).

Works on in-memory chips (:class:`~facelab.attributes.data.ChipSet`): one network, one head per task,
losses masked where an item has no label for a task.  CPU-friendly: batch-level
augmentation in torch (random affine + flip, brightness/contrast, random
erasing), a one-cycle learning-rate schedule, early stopping on the
validation score, a checkpoint after every epoch (a run resumes from it), and
a fixed seed for reproducible results.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..attributes.data import ChipSet
from ..errors import InputError


@dataclass
class TaskSpec:
    """A task and its classes (empty for ``age``, a regression)."""

    name: str
    classes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.classes)


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    patience: int = 6
    seed: int = 0
    size: int = 48
    channels: int = 1
    widths: tuple[int, ...] = (16, 32, 64, 128)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    dropout: float = 0.4
    label_smoothing: float = 0.1
    augment: bool = True
    flip_tta: bool = True
    threads: int = 1
    input: str = "chip"  # or "embedding:dlib" (heads on the 128-d dlib embedding)
    hidden: int = 256  # heads' hidden layer (embedding input)
    max_minutes: float | None = None  # stop (keeping the best epoch) after this much training time
    balance: str = "none"  # "augment": small classes repeated (and augmented afresh) more; "weights": class-weighted loss
    keep: str = "best"  # weights kept per epoch besides the best: "best", "all" or "best:K"


@dataclass
class EpochLog:
    epoch: int
    loss: float
    val_loss: float | None
    metrics: dict[str, float]
    score: float
    lr: float
    seconds: float
    train_metrics: dict[str, float] = field(default_factory=dict)  # the same metrics on the (augmented) training batches


@dataclass
class TrainResult:
    net: Any
    tasks: list[TaskSpec]
    config: TrainConfig
    history: list[EpochLog]
    best_epoch: int
    best_score: float
    best_metrics: dict[str, float]
    stopped: str  # "completed", "early stopping", "time limit"
    kept: dict[int, Any] = field(default_factory=dict)  # epoch -> state dict, as ``config.keep`` asks
    balance: dict[str, Any] = field(default_factory=dict)  # mode, per-task class counts before / after balancing

    def plots(self, out: str | os.PathLike[str]) -> list[str]:
        """``<stem>.curves_*.png`` (loss, accuracy per task, age MAE; train and validation) and ``<stem>.balance.png`` beside the model ``out``."""
        from .curves import plot_class_counts, plot_curves

        out = Path(out)
        files = plot_curves(self.history_dicts(), out.parent, prefix=f"{out.stem}.curves", title=out.stem)
        if self.balance.get("before"):
            after = self.balance["after"] if self.balance.get("mode") != "none" else None
            files.append(plot_class_counts(self.balance["before"], after, out.parent / f"{out.stem}.balance.png", title=f"classes ({self.balance['mode']})"))
        return files

    def history_dicts(self) -> list[dict[str, Any]]:
        """One flat record per epoch (``loss``, ``val_loss``, ``val_<metric>``) for :func:`facelab.train.curves.plot_curves`."""
        return [
            {"epoch": h.epoch, "loss": h.loss, "val_loss": h.val_loss, **{f"train_{k}": v for k, v in h.train_metrics.items()}, **{f"val_{k}": v for k, v in h.metrics.items()}}
            for h in self.history
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "best_score": round(self.best_score, 4),
            "best_metrics": {k: round(v, 4) for k, v in self.best_metrics.items()},
            "epochs_run": len(self.history),
            "stopped": self.stopped,
            "train_seconds": round(sum(h.seconds for h in self.history), 1),
            "history": [asdict(h) for h in self.history],
        }


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError("training needs torch: pip install 'facelab[train]'  (torch==2.13.0, CPU build)") from None
    return torch


def seed_everything(seed: int) -> None:
    import random

    torch = _torch()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def augment_batch(x, gen, *, rot_deg: float = 12.0, scale: float = 0.1, shift: float = 0.08, erase_p: float = 0.5):
    """Random affine (rotation, scale, shift, horizontal flip), brightness/contrast and random erasing on ``[0,1]`` chips."""
    torch = _torch()
    import torch.nn.functional as F

    n, c, h, w = x.shape

    def u(lo: float, hi: float, size: tuple[int, ...] = (n,)):
        return torch.rand(size, generator=gen) * (hi - lo) + lo

    ang = u(-rot_deg, rot_deg) * math.pi / 180
    s = u(1 - scale, 1 + scale)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, u(-shift, shift) * 2], 1), torch.stack([sin * flip, cos, u(-shift, shift) * 2], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.7, 1.3).view(n, 1, 1, 1) + mean + u(-0.12, 0.12).view(n, 1, 1, 1)
    # random erasing: one rectangle of 2-20 % of the area in half of the chips
    area = u(0.02, 0.2) * h * w
    ratio = torch.exp(u(math.log(0.4), math.log(2.5)))
    eh = torch.sqrt(area * ratio).clamp(1, h)
    ew = torch.sqrt(area / ratio).clamp(1, w)
    y0 = u(0, 1) * (h - eh)
    x0 = u(0, 1) * (w - ew)
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    m = (ys >= y0.view(n, 1, 1)) & (ys < (y0 + eh).view(n, 1, 1)) & (xs >= x0.view(n, 1, 1)) & (xs < (x0 + ew).view(n, 1, 1))
    m = m & (torch.rand(n, generator=gen) < erase_p).view(n, 1, 1)
    x = torch.where(m.unsqueeze(1), u(0, 1, (n, 1, 1, 1)).expand(n, c, 1, 1), x)
    return x.clamp(0, 1)


def to_tensor(images: np.ndarray):
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [0, 1]; float vectors (N, D) pass through."""
    torch = _torch()
    if images.ndim == 2:
        return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float().div_(255.0)


def masked_losses(out: dict, labels: dict, tasks: Sequence[TaskSpec], label_smoothing: float, weights: dict | None = None):
    """Sum of the per-task losses over the items that have that label, and each task's loss.

    ``weights`` maps a classification task to a tensor of class weights (``balance="weights"``).
    """
    torch = _torch()
    import torch.nn.functional as F

    from .attribute_nets import AGE_MEAN, AGE_SCALE

    total = out[tasks[0].name].new_zeros(())
    parts: dict[str, float] = {}
    for t in tasks:
        y = labels[t.name]
        if t.n == 0:
            m = ~torch.isnan(y)
            if m.any():
                loss = F.smooth_l1_loss(out[t.name][m], (y[m] - AGE_MEAN) / AGE_SCALE, beta=0.2)
                total = total + loss
                parts[t.name] = float(loss.detach())
        else:
            m = y >= 0
            if m.any():
                loss = F.cross_entropy(out[t.name][m], y[m], weight=(weights or {}).get(t.name), label_smoothing=label_smoothing)
                total = total + loss
                parts[t.name] = float(loss.detach())
    return total, parts


def predict_arrays(net, images: np.ndarray, tasks: Sequence[TaskSpec], *, flip: bool = True, batch: int = 256) -> dict[str, np.ndarray]:
    """What the exported model computes: probabilities per class task, years for age."""
    torch = _torch()

    from .attribute_nets import ExportWrapper

    wrap = ExportWrapper(net, flip=flip).eval()
    outs: dict[str, list[np.ndarray]] = {t.name: [] for t in tasks}
    with torch.no_grad():
        for i in range(0, len(images), batch):
            res = wrap(to_tensor(images[i : i + batch]))
            for t, r in zip(wrap.order, res):
                outs[t].append(r.numpy())
    return {t: np.concatenate(v) if v else np.zeros((0,)) for t, v in outs.items()}


def score_predictions(pred: dict[str, np.ndarray], labels: dict[str, np.ndarray], tasks: Sequence[TaskSpec]) -> tuple[dict[str, float], float]:
    """Per-task metrics (``<task>_acc`` or ``age_mae``) and the score early stopping maximises.

    The score is the mean over tasks of the accuracy, and of ``1 - MAE/20`` (floored at 0) for age.
    """
    metrics: dict[str, float] = {}
    parts = []
    for t in tasks:
        y = labels[t.name]
        if t.n == 0:
            m = ~np.isnan(y)
            if m.any():
                mae = float(np.abs(pred[t.name][m] - y[m]).mean())
                metrics["age_mae"] = mae
                parts.append(max(0.0, 1 - mae / 20))
        else:
            m = y >= 0
            if m.any():
                acc = float((pred[t.name][m].argmax(1) == y[m]).mean())
                metrics[f"{t.name}_acc"] = acc
                parts.append(acc)
    return metrics, float(np.mean(parts)) if parts else 0.0


def balance_plan(data: ChipSet, tasks: Sequence[TaskSpec], mode: str) -> dict[str, Any]:
    """How ``mode`` evens out the classes of ``data``: per-item copies per epoch, per-task class weights, counts before/after."""
    from .balance import check_mode, class_counts, class_weights, effective_counts, item_repeats

    check_mode(mode)
    cls_tasks = [t for t in tasks if t.n]
    before = {t.name: class_counts(data.labels[t.name], t.classes) for t in cls_tasks}
    plan: dict[str, Any] = {"mode": mode, "before": before, "after": {t: effective_counts(c, mode) for t, c in before.items()}, "repeats": None, "weights": {}}
    if mode == "augment" and cls_tasks:
        plan["repeats"] = item_repeats([(data.labels[t.name], t.classes) for t in cls_tasks])
    elif mode == "weights":
        for t in cls_tasks:
            w = class_weights(before[t.name])
            plan["weights"][t.name] = [float(w.get(c, 0.0)) for c in t.classes]
    return plan


def stop_reason(epoch: int, best_epoch: int, spent: float, config: TrainConfig) -> str | None:
    """Why training stops before ``epoch`` (0-based): ``"early stopping"``, ``"time limit"``, or None to go on."""
    if best_epoch and epoch - best_epoch >= config.patience:
        return "early stopping"
    if config.max_minutes is not None and spent > config.max_minutes * 60:
        return "time limit"
    return None


def keep_epoch(kept: dict[int, tuple[float, Any]], keep_k: int | None, epoch: int, score: float, state: Callable[[], Any]) -> None:
    """Record ``epoch``'s (score, ``state()``) as ``config.keep`` asks (``keep_k`` from :func:`_kept_epochs`), dropping the worst beyond K.

    ``state`` is called only when the epoch is kept (a copy of the weights costs memory and time)."""
    if keep_k == 0:
        return
    kept[epoch] = (score, state())
    if keep_k is not None and len(kept) > keep_k:  # drop the worst (the later one on ties)
        del kept[min(kept, key=lambda e: (kept[e][0], -e))]


def _kept_epochs(keep: str) -> int | None:
    """How many epochs' weights ``keep`` asks for besides the best (None: all)."""
    if keep == "best":
        return 0
    if keep == "all":
        return None
    if keep.startswith("best:"):
        try:
            k = int(keep[5:])
        except ValueError:
            k = 0
        if k >= 1:
            return k
    raise InputError(f"keep must be best, all or best:K (K >= 1), not {keep!r}")


def make_net(config: TrainConfig, task_sizes: dict[str, int], dim: int = 0):
    from .attribute_nets import AttributeNet, HeadNet

    if config.input == "chip":
        return AttributeNet(task_sizes, config.channels, config.widths, config.depths, config.dropout)
    return HeadNet(task_sizes, dim or 128, config.hidden, config.dropout)


def _prep(x, config: TrainConfig):
    from .attribute_nets import normalize

    return normalize(x) if config.input == "chip" else x


OnBatch = Callable[[int, int, int, float], None]  # epoch, batch index, batches, running loss
OnEpoch = Callable[[EpochLog], None]


def train(
    data: ChipSet,
    val: ChipSet | None,
    tasks: Sequence[TaskSpec],
    config: TrainConfig,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    on_batch: OnBatch | None = None,
    on_epoch: OnEpoch | None = None,
) -> TrainResult:
    """Train a multi-task net; resumes from ``checkpoint`` when it exists and matches the config."""
    torch = _torch()

    torch.set_num_threads(max(1, config.threads))
    seed_everything(config.seed)
    tasks = list(tasks)
    from .attribute_nets import AGE_MEAN, AGE_SCALE

    keep_k = _kept_epochs(config.keep)
    plan = balance_plan(data, tasks, config.balance)
    order_base = np.repeat(np.arange(len(data)), plan["repeats"]) if plan["repeats"] is not None else np.arange(len(data))
    class_w = {t: torch.tensor(w, dtype=torch.float32) for t, w in plan["weights"].items()}
    task_sizes = {t.name: t.n for t in tasks}
    net = make_net(config, task_sizes, data.images.shape[1] if data.images.ndim == 2 else 0)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(order_base)
    steps = max(1, math.ceil(n / config.batch_size))
    total = config.epochs * steps
    if total >= 4:  # the warm-up must span at least 2 steps (torch divides by its length)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total, pct_start=max(0.2, 2.0 / total), div_factor=20, final_div_factor=200)
    else:  # a handful of steps: constant learning rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    labels_t = {t.name: torch.from_numpy(data.labels[t.name]) for t in tasks}
    history: list[EpochLog] = []
    best_score, best_epoch, best_state, best_metrics = -1.0, 0, None, {}
    start_epoch = 0
    kept: dict[int, tuple[float, Any]] = {}  # epoch -> (score, state) of the epochs config.keep asks for
    ck_path = Path(checkpoint) if checkpoint else None
    sig_cfg = {k: v for k, v in asdict(config).items() if k not in ("threads", "max_minutes", "keep")}
    if config.balance == "none":
        sig_cfg.pop("balance")
    if config.input == "chip":
        sig_cfg.pop("input"), sig_cfg.pop("hidden")
    signature = json.dumps({"config": sig_cfg, "tasks": [asdict(t) for t in tasks], "n": n}, sort_keys=True, default=list)
    if ck_path is not None and ck_path.is_file():
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        if ck.get("signature") != signature:
            raise InputError(f"checkpoint {ck_path} is from another run (different settings or data): delete it to start afresh")
        if True:
            net.load_state_dict(ck["net"])
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            gen.set_state(ck["gen"])
            rng = ck["rng"]
            history = [EpochLog(**h) for h in ck["history"]]
            best_score, best_epoch, best_state, best_metrics = ck["best_score"], ck["best_epoch"], ck["best_state"], ck["best_metrics"]
            kept = ck.get("kept", {})
            start_epoch = len(history)
    stopped = "completed"
    spent = sum(h.seconds for h in history)
    for epoch in range(start_epoch, config.epochs):
        if why := stop_reason(epoch, best_epoch, spent, config):
            stopped = why
            break
        t0 = time.time()
        net.train()
        perm = order_base[rng.permutation(n)]
        run_loss, seen = 0.0, 0
        hits: dict[str, list[float]] = {t.name: [0.0, 0.0] for t in tasks}  # per task: correct (or |age error|) sum, labelled items
        for b in range(steps):
            idx = perm[b * config.batch_size : (b + 1) * config.batch_size]
            if len(idx) < 2:
                continue
            x = to_tensor(data.images[idx])
            if config.augment and config.input == "chip":
                x = augment_batch(x, gen)
            elif config.augment:
                x = x + torch.randn(x.shape, generator=gen) * 0.01
            out = net(_prep(x, config))
            idx_t = torch.from_numpy(idx)
            loss, _ = masked_losses(out, {k: v[idx_t] for k, v in labels_t.items()}, tasks, config.label_smoothing, class_w)
            opt.zero_grad(set_to_none=True)
            if loss.requires_grad:
                loss.backward()
                opt.step()
            sched.step()
            with torch.no_grad():
                for t in tasks:
                    y = labels_t[t.name][idx_t]
                    m = ~torch.isnan(y) if t.n == 0 else y >= 0
                    if m.any():
                        if t.n == 0:
                            hits[t.name][0] += float((out[t.name][m] * AGE_SCALE + AGE_MEAN - y[m]).abs().sum())
                        else:
                            hits[t.name][0] += float((out[t.name][m].argmax(1) == y[m]).sum())
                        hits[t.name][1] += float(m.sum())
            run_loss += float(loss.detach()) * len(idx)
            seen += len(idx)
            if on_batch is not None:
                on_batch(epoch, b, steps, run_loss / max(seen, 1))
        train_loss = run_loss / max(seen, 1)
        val_loss = None
        if val is not None and len(val):
            pred = predict_arrays(net, val.images, tasks, flip=config.flip_tta)
            metrics, score = score_predictions(pred, val.labels, tasks)
            net.eval()
            with torch.no_grad():
                vl = []
                for i in range(0, len(val), 256):
                    sl = slice(i, i + 256)
                    o = net(_prep(to_tensor(val.images[sl]), config))
                    lv, _ = masked_losses(o, {k: torch.from_numpy(v[sl]) for k, v in val.labels.items() if k in task_sizes}, tasks, 0.0)
                    vl.append(float(lv) * len(val.images[sl]))
                val_loss = sum(vl) / len(val)
        else:
            metrics, score = {}, -train_loss
        secs = time.time() - t0
        spent += secs
        train_metrics = {("age_mae" if t.n == 0 else f"{t.name}_acc"): hits[t.name][0] / hits[t.name][1] for t in tasks if hits[t.name][1]}
        log = EpochLog(epoch + 1, train_loss, val_loss, metrics, score, float(sched.get_last_lr()[0]), secs, train_metrics)
        history.append(log)
        if score > best_score:
            best_score, best_epoch, best_metrics = score, epoch + 1, metrics
            best_state = copy.deepcopy(net.state_dict())
        keep_epoch(kept, keep_k, epoch + 1, score, lambda: copy.deepcopy(net.state_dict()))
        if on_epoch is not None:
            on_epoch(log)
        if ck_path is not None:
            ck_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = ck_path.with_suffix(".tmp")
            torch.save(
                {
                    "signature": signature, "net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "rng": rng, "history": [asdict(h) for h in history], "best_score": best_score,
                    "best_epoch": best_epoch, "best_state": best_state, "best_metrics": best_metrics, "kept": kept,
                },
                tmp,
            )
            os.replace(tmp, ck_path)
    else:
        if history and best_epoch and len(history) - best_epoch >= config.patience:
            stopped = "early stopping"
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    balance = {k: plan[k] for k in ("mode", "before", "after")}
    return TrainResult(net, tasks, config, history, best_epoch, best_score, best_metrics, stopped, {e: st for e, (_, st) in sorted(kept.items())}, balance)


def export_onnx(result: TrainResult, path: str | os.PathLike[str], metadata: dict[str, Any]) -> Path:
    """Write the trained net as ONNX (opset 17, dynamic batch) with facelab's metadata (``kind: attributes``)."""
    torch = _torch()
    import onnx

    from .attribute_nets import ExportWrapper

    finetuned = result.config.input == "chip:dlib"
    c, s = result.config.channels, result.config.size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [t.name for t in result.tasks]
    batch = "n"
    if finetuned:  # dlib's ResNet fine-tuned (the net brings its own export): the file holds what trained,
        # the loader rebuilds the frozen prefix from the installed network
        wrap, inp = result.net.export_module(flip=result.config.flip_tta), "features"
        dummy = torch.zeros(2, *result.net.prefix_shape())
        batch = "n2" if result.config.flip_tta else "n"  # chips + their mirror images in, one row per chip out
        metadata = {**metadata, "prefix": result.net.prefix_metadata(result.config.flip_tta)}
    else:
        wrap = ExportWrapper(result.net, flip=result.config.flip_tta).eval()
        inp = "chips" if wrap.chips else "embeddings"
        dummy = torch.zeros(2, c, s, s) if wrap.chips else torch.zeros(2, result.net.dim)
    import warnings

    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, but needs no onnxscript and handles this net
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrap, (dummy,), str(path), input_names=[inp], output_names=names, opset_version=17,
            dynamic_axes={inp: {0: batch}, **{k: {0: "n"} for k in names}}, dynamo=False,
        )
    model = onnx.load(str(path))
    if finetuned:  # ResNet blocks: float16 weights halve the file (cast back to float32 on load)
        from .ensemble import half_weights

        model = half_weights(model)
        metadata = {**metadata, "weights": "float16"}
    meta = {"facelab": json.dumps(metadata, sort_keys=True)}
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(model, str(path))
    return path


def export_epochs(result: TrainResult, path: str | os.PathLike[str], metadata: dict[str, Any]) -> list[Path]:
    """Each kept epoch's weights as ONNX beside ``path``: ``<stem>.epochs/epoch_NNN.onnx`` (``--epoch N`` picks one later)."""
    from ..attributes.onnx_model import epoch_model_path

    torch = _torch()
    if not result.kept:
        return []
    best = copy.deepcopy(result.net.state_dict())
    scores = {h.epoch: h for h in result.history}
    out = []
    try:
        for e, state in result.kept.items():
            getattr(result.net, "load_state", result.net.load_state_dict)(state)  # fine-tuned ResNets keep only what trained
            result.net.eval()
            h = scores.get(e)
            trained = {**metadata.get("trained", {}), "epoch": e, "val_metrics": {k: round(v, 4) for k, v in (h.metrics if h else {}).items()}}
            out.append(export_onnx(result, epoch_model_path(path, e), {**metadata, "trained": trained}))
    finally:
        with torch.no_grad():
            result.net.load_state_dict(best)
        result.net.eval()
    return out
