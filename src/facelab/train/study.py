"""The transfer-learning study: feature extraction vs fine-tuning, per backbone and augmentation.

One grid, one k-fold split shared by every cell (stratified per person, seeded):

* ``dlib / frozen``: dlib's ResNet as a fixed feature extractor + a CosFace linear head;
* ``dlib / finetuned``: its last ``blocks`` residual block(s) and fc layer trained too (same head and loss);
* ``cnn / scratch``: a small CNN trained from random weights on 48-px chips: the control that shows
  what the pretrained features bring;

each with every augmentation in ``augmentations`` (``none``, ``geometric``, ``photometric``; offline
copies, see :func:`facelab.train.finetune.augment`).  Every cell trains the same number of epochs and
reports the **last** epoch's held-out accuracy (no epoch is picked on the held-out folds; the
per-epoch validation curve is drawn for reading only).

Outputs in ``out/``: ``cells/<cell>.json`` (written as each cell ends: a re-run skips finished cells),
``curves/<cell>.png`` (train and validation accuracy per epoch, mean over folds),
``confusion/<cell>.png`` (summed over the held-out folds), ``study.json`` and ``study.md``.
``budget`` (seconds) stops starting new cells once that much time was spent; they are listed as skipped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .finetune import AUGMENTATIONS, KEEP, LR, ChipSet, _dlib_forward, fit_margin, prefix_features
from .torch_resnet import load_dlib_resnet, require_torch

BACKBONES = ("dlib", "cnn")
MODES = {"dlib": ("frozen", "finetuned"), "cnn": ("scratch",)}
CNN_SIZE = 48


@dataclass(frozen=True)
class Cell:
    backbone: str
    mode: str
    augmentation: str

    @property
    def name(self) -> str:
        return f"{self.backbone}-{self.mode}-{self.augmentation}"


def kfold_split(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Fold index of every row: each person's images are shuffled and dealt round-robin (stratified)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), int)
    start = 0
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + start) % folds
        start += len(idx)  # rotate so small classes do not all land in fold 0
    return fold


def grid(backbones=BACKBONES, augmentations=("none", "geometric")) -> list[Cell]:
    for b in backbones:
        if b not in MODES:
            raise InputError(f"unknown backbone {b!r} (choose from {', '.join(MODES)})")
    for a in augmentations:
        if a not in AUGMENTATIONS:
            raise InputError(f"unknown augmentation {a!r} (choose from {', '.join(AUGMENTATIONS)})")
    return [Cell(b, m, a) for b in backbones for m in MODES[b] for a in augmentations]


def _small_cnn(dim: int = 128):
    torch = require_torch()
    nn = torch.nn

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, dim))


def _cnn_inputs(chips: np.ndarray):
    import cv2

    torch = require_torch()
    small = np.stack([cv2.resize(c, (CNN_SIZE, CNN_SIZE), interpolation=cv2.INTER_AREA) for c in chips])
    return torch.from_numpy(small.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)


class _Inputs:
    """Training inputs of one (backbone, augmentation): originals + augmented copies, computed once for all folds."""

    def __init__(self, backbone: str, augmentation: str, chips: ChipSet, net, cut: int, n_aug: int, seed: int, test_chips: ChipSet | None = None):
        torch = require_torch()
        from .finetune import augment

        self.backbone = backbone
        self.test = self.emb_test = None
        if backbone == "dlib":
            f = prefix_features(net, chips.chips, cut, augmentation=augmentation, n_aug=n_aug, seed=seed)
            self.base, self.aug = f.base, f.aug
            if test_chips is not None:
                self.test = prefix_features(net, test_chips.chips, cut).base
            with torch.no_grad():  # frozen embeddings, for the frozen cells
                self.emb_base = net(self.base, cut)
                self.emb_aug = [net(a, cut) for a in self.aug]
                self.emb_test = net(self.test, cut) if self.test is not None else None
        else:
            rng = np.random.default_rng(seed)
            self.base = _cnn_inputs(chips.chips)
            self.aug = [_cnn_inputs(augment(chips.chips, augmentation, rng)) for _ in range(n_aug if augmentation != "none" else 0)]
            self.test = _cnn_inputs(test_chips.chips) if test_chips is not None else None

    def take(self, idx: np.ndarray, train: bool, frozen: bool):
        torch = require_torch()
        base, aug, test = (self.emb_base, self.emb_aug, self.emb_test) if frozen else (self.base, self.aug, self.test)
        t = torch.as_tensor(idx)
        if not train:
            return (base if test is None else test)[t]
        return torch.cat([base[t]] + [a[t] for a in aug])


def run_cell(cell: Cell, inputs: _Inputs, y: np.ndarray, fold: np.ndarray, n_classes: int, *, net, cut: int, epochs: int, seed: int) -> dict[str, Any]:
    torch = require_torch()
    t0 = time.perf_counter()
    accs, hist, preds = [], [], np.full(len(y), -1)
    state = {k: v.detach().clone() for k, v in net.params.items()} if net is not None else None
    for k in range(int(fold.max()) + 1):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        if len(te) == 0:
            continue
        n_copies = 1 + len(inputs.aug)
        y_tr = np.concatenate([y[tr]] * n_copies)
        frozen = cell.mode == "frozen"
        x_tr, x_te = inputs.take(tr, True, frozen), inputs.take(te, False, frozen)
        if cell.backbone == "dlib" and frozen:
            res = fit_margin(lambda x: x, [], x_tr, y_tr, n_classes, x_val=x_te, y_val=y[te], epochs=epochs, seed=seed + k)
        elif cell.backbone == "dlib":
            with torch.no_grad():
                for name, p in net.params.items():
                    p.copy_(state[name])
            res = fit_margin(_dlib_forward(net, cut), net.trainable_parameters(cut), x_tr, y_tr, n_classes, x_val=x_te, y_val=y[te], epochs=epochs, lr=LR, seed=seed + k, keep=KEEP)
        else:
            torch.manual_seed(seed + k)
            cnn = _small_cnn()

            def fwd(x, cnn=cnn):
                cnn.train(torch.is_grad_enabled())
                return cnn(x)

            res = fit_margin(fwd, list(cnn.parameters()), x_tr, y_tr, n_classes, x_val=x_te, y_val=y[te], epochs=epochs, lr=3e-3, seed=seed + k)
        accs.append(res.history[-1]["val_acc"])
        hist.append(res.history)
        preds[te] = res.predictions
    if state is not None:
        with torch.no_grad():
            for name, p in net.params.items():
                p.copy_(state[name])
    curves = {key: np.mean([[h[e][key] for e in range(epochs)] for h in hist], axis=0).tolist() for key in ("loss", "train_acc", "val_acc")}
    return {
        "cell": cell.name,
        "backbone": cell.backbone,
        "mode": cell.mode,
        "augmentation": cell.augmentation,
        "accuracy": float(np.mean(accs)),
        "std": float(np.std(accs)),
        "fold_accuracies": [float(a) for a in accs],
        "seconds": round(time.perf_counter() - t0, 2),
        "epochs": epochs,
        "curves": curves,
        "predictions": preds.tolist(),
    }


def _plot_curves(row: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    ep = np.arange(1, row["epochs"] + 1)
    ax.plot(ep, 100 * np.array(row["curves"]["train_acc"]), label="train")
    ax.plot(ep, 100 * np.array(row["curves"]["val_acc"]), label="validation (held-out fold)")
    ax.set(xlabel="epoch", ylabel="accuracy %", title=f"{row['cell']}: {100 * row['accuracy']:.1f} % ± {100 * row['std']:.1f}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_confusion(row: dict[str, Any], y: np.ndarray, classes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    cm = np.zeros((n, n), int)
    for t, p in zip(y, row["predictions"]):
        if p >= 0:
            cm[t, p] += 1
    size = min(12, 2 + 0.25 * n)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    ax.imshow(cm, cmap="Blues")
    if n <= 40:
        ax.set_xticks(range(n), classes, rotation=90, fontsize=6)
        ax.set_yticks(range(n), classes, fontsize=6)
    ax.set(xlabel="predicted", ylabel="true", title=f"{row['cell']} (held-out folds)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_study(
    chips: ChipSet,
    out: str | Path,
    *,
    backbones=BACKBONES,
    augmentations=("none", "geometric"),
    folds: int = 5,
    epochs: int = 12,
    blocks: int = 1,
    n_aug: int = 2,
    budget: float | None = None,
    seed: int = 0,
    plots: bool = True,
    progress: bool = False,
    title: str = "",
    test_chips: ChipSet | None = None,
    resnet=None,
) -> dict[str, Any]:
    """Run the grid on ``chips`` (one k-fold split for every cell); resumable; returns the study summary.

    ``test_chips`` (the same rows, e.g. ``chips.degraded("lowres24")``) replaces the held-out faces: train on
    good photos, recognise degraded ones (enrol clean, probe low-resolution).  ``resnet``: the ``dlib`` backbone's
    network (a :class:`~facelab.train.torch_resnet.DlibResNetTorch`, e.g. one fine-tuned before; default: the installed one)."""
    torch = require_torch()
    from ..progress import track

    cells = grid(backbones, augmentations)
    out = Path(out)
    for d in ("cells", "curves", "confusion"):
        (out / d).mkdir(parents=True, exist_ok=True)
    classes = chips.classes
    if len(classes) < 2:
        raise InputError("the study needs at least 2 people")
    y = np.array([classes.index(v) for v in chips.labels])
    fold = kfold_split(chips.labels, folds, seed)
    net = (resnet if resnet is not None else load_dlib_resnet()) if "dlib" in backbones else None
    cut = net.cut(blocks) if net is not None else 0
    if net is not None:  # centre the descriptors (label-free: the mean descriptor of every chip), as finetune_chips does
        with torch.no_grad():
            net.set_output_center(net(prefix_features(net, chips.chips, cut).base, cut).mean(0))
        net.freeze_before(cut)
    inputs: dict[tuple[str, str], _Inputs] = {}
    rows, skipped = [], []
    t0 = time.perf_counter()
    for cell in track(cells, len(cells), "study", show=progress):
        path = out / "cells" / f"{cell.name}.json"
        if path.is_file():
            rows.append(json.loads(path.read_text()))
            continue
        if budget is not None and time.perf_counter() - t0 > budget:
            skipped.append(cell.name)
            continue
        key = (cell.backbone, cell.augmentation)
        if key not in inputs:
            inputs.clear()  # one (backbone, augmentation) in memory at a time
            inputs[key] = _Inputs(cell.backbone, cell.augmentation, chips, net, cut, n_aug, seed, test_chips)
        row = run_cell(cell, inputs[key], y, fold, len(classes), net=net, cut=cut, epochs=epochs, seed=seed)
        row["seconds_including_features"] = round(time.perf_counter() - t0, 2)
        path.write_text(json.dumps(row))
        if plots:
            _plot_curves(row, out / "curves" / f"{cell.name}.png")
            _plot_confusion(row, y, classes, out / "confusion" / f"{cell.name}.png")
        rows.append(row)
    summary = {
        "title": title,
        "people": len(classes),
        "images": len(chips),
        "folds": folds,
        "epochs": epochs,
        "blocks": blocks,
        "n_aug": n_aug,
        "seed": seed,
        "torch_threads": torch.get_num_threads(),
        "cells": [{k: v for k, v in r.items() if k not in ("predictions",)} for r in rows],
        "skipped": skipped,
    }
    (out / "study.json").write_text(json.dumps(summary, indent=1))
    (out / "study.md").write_text(study_markdown(summary))
    return summary


def study_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Transfer-learning study{': ' + summary['title'] if summary.get('title') else ''}",
        "",
        f"{summary['people']} people, {summary['images']} images, {summary['folds']}-fold (same split for every cell), "
        f"{summary['epochs']} epochs, last-epoch held-out accuracy; fine-tuning trains the last {summary['blocks']} block(s).",
        "",
        "| backbone | mode | augmentation | accuracy % | ± std | seconds |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in summary["cells"]:
        lines.append(f"| {r['backbone']} | {r['mode']} | {r['augmentation']} | {100 * r['accuracy']:.2f} | {100 * r['std']:.2f} | {r['seconds']:.1f} |")
    if summary.get("skipped"):
        lines += ["", f"Skipped (over the time budget): {', '.join(summary['skipped'])}."]
    return "\n".join(lines) + "\n"


__all__ = ["BACKBONES", "Cell", "grid", "kfold_split", "run_cell", "run_study", "study_markdown"]
