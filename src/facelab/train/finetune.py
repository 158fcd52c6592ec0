"""Fine-tuning dlib's face ResNet on your own people, and exporting it as an ONNX embedder.

The network's last residual block(s) and its 128-d ``fc`` layer train with a
CosFace margin loss (Wang et al. 2018, "CosFace: Large Margin Cosine Loss for Deep
Face Recognition", https://arxiv.org/abs/1801.09414): logits ``s * (cos(θ_y) - m)``
for the true class and ``s * cos(θ_j)`` for the others, on L2-normalised embeddings
and class weights.  The class weights start at each person's mean embedding.

Speed: the frozen prefix of the network (everything below the trainable blocks)
runs **once per chip** and its activations are cached (:class:`ChipFeatures`);
each epoch then runs only the trainable blocks (a 256x4x4 tensor per face for the
last 2 blocks).  Augmentation is offline: ``n_aug`` augmented copies of every chip
are made once and their prefix activations cached as well.

:func:`finetune_embedder` trains on every image of a folder and writes an ONNX
file that every facelab command takes as ``--embedder mine.onnx``: its metadata
(``facelab_embedder``) records dlib's 150-px / 0.25-padding alignment, the input
normalisation, the cosine metric and the threshold; a model card is written next to it.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FacelabError, InputError
from .torch_resnet import load_dlib_resnet, preprocess_chips, require_torch

#: Cosine-margin loss settings (CosFace's s=30, a smaller margin than its 0.35: few people, few photos).
SCALE = 30.0
MARGIN = 0.2
AUGMENTATIONS = ("none", "geometric", "photometric")
#: Weight of the term holding the embeddings near the pretrained network's (see :func:`fit_margin`).
KEEP = 1.0
#: Adam learning rate of the fine-tuned blocks (the head learns at 1e-2).
LR = 3e-5


# --- chips ------------------------------------------------------------------------------------


@dataclass
class ChipSet:
    """Aligned face chips (dlib 150-px, 0.25 padding) of labelled images: row ``i`` is ``paths[i]`` of ``labels[i]``."""

    chips: np.ndarray  # (N, 150, 150, 3) uint8
    labels: np.ndarray  # (N,) str
    paths: list[str]
    failed: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels.tolist()))

    def subset(self, idx) -> ChipSet:
        idx = np.asarray(idx)
        return ChipSet(self.chips[idx], self.labels[idx], [self.paths[i] for i in idx], list(self.failed))

    def degraded(self, how: str) -> ChipSet:
        """The same faces made harder: ``lowres24`` (24-px faces) or ``occluded`` (lower face masked)."""
        return ChipSet(degrade(self.chips, how), self.labels, list(self.paths), list(self.failed))


def face_chips(items, *, detector: str = "hog", min_face: int = 40, fallback: bool = False, progress: bool = False, size: int = 150, padding: float = 0.25) -> ChipSet:
    """The largest face of every labelled image (:class:`facelab.train.dataset.LabeledImage`), aligned as dlib's ResNet expects."""
    from ..align import align
    from ..detect import detect
    from ..io import load_image
    from ..progress import track
    from ..types import Box, Face

    chips, labels, paths, failed = [], [], [], []
    for it in track(items, len(items), "aligning faces", show=progress):
        try:
            img = load_image(it.path)
        except InputError as e:
            failed.append((it.path, e.reason))
            continue
        faces = detect(img, detector, min_face=min_face)
        if faces:
            face = faces[0]
        elif fallback:
            h, w = img.shape[:2]
            face = Face(Box(0.0, 0.0, float(w), float(h)), 0.0, "whole-image")
        else:
            failed.append((it.path, "no face found"))
            continue
        chips.append(align(img, face, size, padding, "dlib"))
        labels.append(it.label)
        paths.append(it.path)
    if not chips:
        raise FacelabError("no face could be aligned in the images")
    return ChipSet(np.stack(chips).astype(np.uint8), np.array(labels), paths, failed)


def degrade(chips: np.ndarray, how: str) -> np.ndarray:
    """Synthetic hard cases made from good chips: ``lowres<N>`` (the 150-px chip shrunk to N px and back:
    ``lowres24`` leaves a ~16-px face) or ``occluded`` (a grey mask over the lower half of the face, like a surgical mask)."""
    import cv2

    out = np.empty_like(chips)
    for i, c in enumerate(chips):
        if how.startswith("lowres") and how[6:].isdigit():
            px = int(how[6:])
            small = cv2.resize(c, (px, px), interpolation=cv2.INTER_AREA)
            out[i] = cv2.resize(small, c.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        elif how == "occluded":
            d = c.copy()
            h, w = d.shape[:2]
            pts = np.array([[0.22 * w, 0.56 * h], [0.78 * w, 0.56 * h], [0.74 * w, 0.86 * h], [0.5 * w, 0.95 * h], [0.26 * w, 0.86 * h]], np.int32)
            cv2.fillPoly(d, [pts], (200, 205, 210))
            out[i] = d
        else:
            raise ValueError(f"unknown degradation {how!r} (lowres<N> such as lowres24, occluded)")
    return out


def augment(chips: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of each chip: ``geometric`` (mirror, ±10° rotation, ±8 % scale, ±6 px shift) or
    ``photometric`` (brightness/contrast, blur or down-and-up sampling to 20-60 px, grey)."""
    import cv2

    out = np.empty_like(chips)
    for i, c in enumerate(chips):
        h, w = c.shape[:2]
        if kind == "geometric":
            m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-10, 10), rng.uniform(0.92, 1.08))
            m[:, 2] += rng.uniform(-6, 6, 2)
            d = cv2.warpAffine(c, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            out[i] = d[:, ::-1] if rng.random() < 0.5 else d
        elif kind == "photometric":
            d = c.astype(np.float32) * rng.uniform(0.6, 1.4) + rng.uniform(-30, 30)
            d = np.clip((d - d.mean()) * rng.uniform(0.7, 1.3) + d.mean(), 0, 255).astype(np.uint8)
            r = rng.random()
            if r < 0.35:
                s = int(rng.integers(20, 61))
                d = cv2.resize(cv2.resize(d, (s, s), interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR)
            elif r < 0.6:
                d = cv2.GaussianBlur(d, (0, 0), rng.uniform(0.8, 2.0))
            if rng.random() < 0.2:
                d = np.repeat(cv2.cvtColor(d, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
            out[i] = d
        elif kind == "none":
            out[i] = c
        else:
            raise ValueError(f"unknown augmentation {kind!r} (choose from {', '.join(AUGMENTATIONS)})")
    return out


# --- cached prefix activations ----------------------------------------------------------------


@dataclass
class ChipFeatures:
    """Activations of the frozen prefix (layers ``[0, cut)``) for chips and their augmented copies.

    ``base[i]`` belongs to chip ``i``; ``aug[k][i]`` to its ``k``-th augmented copy.
    """

    cut: int
    base: Any  # torch tensor (N, C, H, W)
    aug: list = field(default_factory=list)


def run_chips(net, chips: np.ndarray, stop: int | None = None, *, batch: int = 32):
    """``net``'s layers ``[0, stop)`` (all by default: the embeddings) on uint8 chips, in batches, without gradients."""
    torch = require_torch()
    outs = []
    with torch.no_grad():
        for s in range(0, len(chips), batch):
            outs.append(net(preprocess_chips(chips[s : s + batch], net.means), 0, stop))
    return torch.cat(outs)


def prefix_features(net, chips: np.ndarray, cut: int, *, augmentation: str = "none", n_aug: int = 0, seed: int = 0, batch: int = 32) -> ChipFeatures:
    rng = np.random.default_rng(seed)

    def run(x: np.ndarray):
        return run_chips(net, x, cut, batch=batch)

    feats = ChipFeatures(cut, run(chips))
    if augmentation != "none":
        feats.aug = [run(augment(chips, augmentation, rng)) for _ in range(n_aug)]
    return feats


# --- the margin loss and the training loop -----------------------------------------------------


def cosface_logits(emb, weight, target=None, s: float = SCALE, m: float = MARGIN):
    torch = require_torch()
    cos = torch.nn.functional.normalize(emb, dim=1) @ torch.nn.functional.normalize(weight, dim=1).T
    if target is not None:
        cos = cos - m * torch.nn.functional.one_hot(target, cos.shape[1]).to(cos.dtype)
    return s * cos


@dataclass
class FitResult:
    history: list[dict[str, float]]  # per epoch: loss, train_acc (+ val_acc)
    head: Any  # (C, D) class weights
    predictions: np.ndarray | None = None  # class index per validation row
    seconds: float = 0.0


def class_means(emb, y, n_classes: int):
    torch = require_torch()
    e = torch.nn.functional.normalize(emb, dim=1)
    return torch.stack([e[y == c].mean(0) if (y == c).any() else torch.randn(e.shape[1]) * 0.01 for c in range(n_classes)])


def fit_margin(
    forward,
    params: list,
    x_train,
    y_train,
    n_classes: int,
    *,
    x_val=None,
    y_val=None,
    epochs: int = 15,
    lr: float = 1e-3,
    head_lr: float = 1e-2,
    batch: int = 32,
    seed: int = 0,
    weight_decay: float = 1e-4,
    keep: float = 0.0,
) -> FitResult:
    """Train ``params`` (those ``forward`` uses) and a CosFace head on ``(x_train, y_train)``; history per epoch.

    ``forward(x)`` maps a batch of inputs to embeddings.  Validation accuracy is computed every
    epoch for the curves only: nothing is chosen on it (the last epoch's model is returned).
    ``keep`` weighs a term ``mean ||f(x) - f_0(x)||^2`` that holds the embeddings near the starting
    network's (learning without forgetting: the fine-tuned space stays usable for people not trained on).
    """
    torch = require_torch()
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    y_train = torch.as_tensor(y_train, dtype=torch.long)
    with torch.no_grad():
        init = torch.cat([forward(x_train[s : s + 256]) for s in range(0, len(x_train), 256)])
    head = torch.nn.Parameter(class_means(init, y_train, n_classes).clone())
    groups = [{"params": [head], "lr": head_lr, "weight_decay": 0.0}]
    if params:
        groups.append({"params": params, "lr": lr, "weight_decay": weight_decay})
    opt = torch.optim.Adam(groups)
    g = torch.Generator().manual_seed(seed)
    history = []

    def accuracy(x, y) -> tuple[float, np.ndarray]:
        with torch.no_grad():
            e = torch.cat([forward(x[s : s + 256]) for s in range(0, len(x), 256)])
            pred = cosface_logits(e, head).argmax(1).numpy()
        return float((pred == np.asarray(y)).mean()), pred

    for _ in range(epochs):
        order = torch.randperm(len(y_train), generator=g)
        total, n = 0.0, 0
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            e = forward(x_train[idx])
            loss = torch.nn.functional.cross_entropy(cosface_logits(e, head, y_train[idx]), y_train[idx])
            if keep:
                loss = loss + keep * ((e - init[idx]) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        row = {"loss": total / max(n, 1), "train_acc": accuracy(x_train, y_train.numpy())[0]}
        if x_val is not None:
            row["val_acc"] = accuracy(x_val, y_val)[0]
        history.append(row)
    pred = accuracy(x_val, y_val)[1] if x_val is not None else None
    return FitResult(history, head.detach(), pred, time.perf_counter() - t0)


def _dlib_forward(net, cut: int):
    return lambda x: net(x, cut)


# --- exporting an embedder -----------------------------------------------------------------------


@dataclass
class FineTuneReport:
    path: str
    card: str
    people: int
    images: int
    history: list[dict[str, float]]
    threshold: float
    settings: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pair_threshold(emb: np.ndarray, labels: np.ndarray) -> float:
    """Cosine-distance threshold maximising the accuracy over all same/different pairs of ``emb``."""
    from ..evaluate.verification import best_threshold

    e = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    d = 1.0 - e @ e.T
    iu = np.triu_indices(len(e), 1)
    same = (labels[:, None] == labels[None, :])[iu]
    return float(best_threshold(d[iu], same)[0])


def finetune_chips(
    chips: ChipSet,
    *,
    blocks: int = 2,
    epochs: int = 15,
    lr: float = LR,
    augmentation: str = "none",
    n_aug: int = 2,
    seed: int = 0,
    keep: float = KEEP,
    net=None,
):
    """Fine-tune the last ``blocks`` residual blocks (+ fc) on every chip; returns ``(net, FitResult)``.

    The output is first centred on the mean descriptor of the chips (:meth:`set_output_center`)."""
    torch = require_torch()
    net = net if net is not None else load_dlib_resnet()
    cut = net.cut(blocks)
    feats = prefix_features(net, chips.chips, cut, augmentation=augmentation, n_aug=n_aug, seed=seed)
    with torch.no_grad():
        net.set_output_center(net(feats.base, cut).mean(0))
    net.freeze_before(cut)
    classes = chips.classes
    y = np.array([classes.index(v) for v in chips.labels])
    x = torch.cat([feats.base, *feats.aug])
    yy = np.concatenate([y] * (1 + len(feats.aug)))
    res = fit_margin(_dlib_forward(net, cut), net.trainable_parameters(cut), x, yy, len(classes), epochs=epochs, lr=lr, seed=seed, keep=keep)
    return net, res


def embedder_metadata(net, threshold: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``facelab_embedder`` ONNX metadata of a fine-tuned dlib ResNet (read by the ONNX embedder)."""
    return {
        "facelab_embedder": {
            "align": "dlib",
            "chip_size": 150,
            "padding": 0.25,
            "mean": [float(v) for v in net.means],
            "std": 256.0,
            "rgb": True,
            "metric": "cosine",
            "threshold": round(float(threshold), 5),
            **(extra or {}),
        }
    }


def trainer_settings(trainer, given: dict[str, Any], internal: tuple[str, ...], what: str) -> dict[str, Any]:
    """``trainer``'s keyword defaults (but ``internal``) updated with ``given``; :class:`TypeError` naming unknown ones."""
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(trainer).parameters.items() if k not in internal}
    unknown = set(given) - set(defaults)
    if unknown:
        raise TypeError(f"unknown {what} setting(s): {', '.join(sorted(unknown))}")
    return {**defaults, **given}


def finetune_embedder(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    label_regex: str | None = None,
    detector: str = "hog",
    min_face: int = 40,
    fallback: bool = False,
    threads: int | None = None,
    progress: bool = False,
    command: str = "",
    **train: Any,
) -> FineTuneReport:
    """Fine-tune dlib's ResNet on the people of ``folder`` (``DIR/<person>/*.jpg``) and write ``out`` (.onnx) + a model card.

    ``train`` are :func:`finetune_chips`' settings (``blocks``, ``epochs``, ``lr``, ``augmentation``, ``n_aug``, ``seed``, ``keep``)."""
    torch = require_torch()
    from .dataset import identity_dataset

    settings = trainer_settings(finetune_chips, train, ("chips", "net"), "fine-tuning")
    augmentation = settings["augmentation"]
    if augmentation not in AUGMENTATIONS:
        raise InputError(f"unknown augmentation {augmentation!r} (choose from {', '.join(AUGMENTATIONS)})")
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise InputError("the fine-tuned embedder is written as ONNX: give a file name ending in .onnx", source=str(out))
    if threads:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    chips = face_chips(identity_dataset(folder, label_regex=label_regex, min_per_class=2), detector=detector, min_face=min_face, fallback=fallback, progress=progress)
    if len(chips.classes) < 2:
        raise InputError("need at least 2 people with a detected face in >= 2 images each", source=str(folder))
    net, res = finetune_chips(chips, **settings)
    net.eval()
    with torch.no_grad():
        emb = torch.cat([net(preprocess_chips(chips.chips[s : s + 64], net.means)) for s in range(0, len(chips), 64)]).numpy()
    thr = pair_threshold(emb, chips.labels)
    settings.update(detector=detector, min_face=min_face)
    out.parent.mkdir(parents=True, exist_ok=True)
    net.to_onnx(out, embedder_metadata(net, thr, {"trained_on": Path(folder).name, "people": len(chips.classes), "settings": settings}))
    report = FineTuneReport(str(out), str(out.with_suffix(".md")), len(chips.classes), len(chips), res.history, thr, settings, time.perf_counter() - t0)
    write_model_card(report, folder, command, chips.failed)
    return report


def write_model_card(report: FineTuneReport, folder, command: str, failed: list[tuple[str, str]], scores: dict[str, Any] | None = None) -> None:
    h = report.history[-1] if report.history else {}
    lines = [
        f"# {Path(report.path).name}: dlib ResNet fine-tuned on your people",
        "",
        f"Written by `facelab train embedder` on {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} in {report.seconds:.0f} s.",
        "",
        "## Data",
        f"- `{folder}`: {report.people} people, {report.images} images with a face ({len(failed)} left out).",
        "",
        "## Licence",
        "- Starting weights: dlib's `dlib_face_recognition_resnet_model_v1` (Davis King, public domain; trained on ~3M faces of 7,485",
        "  identities from FaceScrub, VGG-Face and web images, with no LFW identity: https://github.com/davisking/dlib-models).",
        "- The fine-tuned weights inherit the terms of the images above: use them only as those images' licence allows.",
        "",
        "## Model",
        f"- Last {report.settings['blocks']} residual block(s) + the 128-d fc layer trained with a CosFace loss (s={SCALE:g}, m={MARGIN:g}),",
        f"  {report.settings['epochs']} epochs, Adam lr {report.settings['lr']:g}, augmentation `{report.settings['augmentation']}`.",
        "- Use: dlib alignment (150 px, padding 0.25), input (RGB - dlib means) / 256, cosine distance; all recorded in the",
        "  ONNX metadata `facelab_embedder`, so `facelab embed --model FILE.onnx` and `FaceAnalysis(embedder=FILE.onnx)` just work.",
        f"- Threshold {report.threshold:.4f} (cosine distance): the best one on all pairs of the *training* images, an optimistic",
        "  value; calibrate it on pairs of people the model never saw before relying on it.",
        "",
        "## Command",
        f"`{command or 'facelab train embedder ' + str(folder) + ' --out ' + report.path}`",
        "",
        "## Scores",
        f"- Training loss {h.get('loss', float('nan')):.4f}, training accuracy {100 * h.get('train_acc', float('nan')):.1f} % at the last epoch.",
    ]
    for k, v in (scores or {}).items():
        lines.append(f"- {k}: {v}")
    Path(report.card).write_text("\n".join(lines) + "\n")


__all__ = [
    "AUGMENTATIONS",
    "ChipFeatures",
    "ChipSet",
    "FineTuneReport",
    "FitResult",
    "augment",
    "cosface_logits",
    "degrade",
    "embedder_metadata",
    "face_chips",
    "finetune_chips",
    "finetune_embedder",
    "fit_margin",
    "pair_threshold",
    "prefix_features",
    "run_chips",
    "trainer_settings",
    "write_model_card",
]
