"""``facelab train embedder`` (fine-tune dlib's ResNet -> ONNX embedder) and ``facelab train study`` (transfer-learning grid).

Thin shells over :mod:`facelab.train.finetune` and :mod:`facelab.train.study`; registered by :mod:`facelab.cli.train`.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DEFAULT_DETECTOR, DEFAULT_MIN_FACE, DetectorOpt, JsonOpt, MinFaceOpt, PerPersonLimitOpt, QuietOpt, err, fail, guard
from .data import LabelRegexOpt

WholeOpt = Annotated[bool, typer.Option("--whole-image/--skip-no-face", help="Use images without a detected face whole (pre-cropped faces) or leave them out.")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="torch threads (1 leaves the other cores free).")]


def _threads(n: int) -> None:
    from ..train.torch_resnet import require_torch

    require_torch().set_num_threads(n)


@guard
def train_embedder_cmd(
    folder: Annotated[Path, typer.Argument(help="Labelled images: DIR/<person>/*.jpg (with --distill: any face photos, no labels).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write (a model card .md is written next to it).")] = Path("embedder.onnx"),
    distill: Annotated[bool, typer.Option("--distill", help="Label-free: train so low-resolution and masked faces embed where the frozen network puts their clean versions (keeps dlib's space and 0.6 threshold).")] = False,
    blocks: Annotated[Optional[int], typer.Option("--blocks", min=0, max=14, help="Residual blocks to fine-tune, from the top (0: only the fc layer). Default 2 (7 with --distill).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Training epochs. Default 15 (6 with --distill).")] = None,
    augmentation: Annotated[str, typer.Option("--augment", help="none, geometric or photometric (offline copies, see --n-aug).")] = "none",
    n_aug: Annotated[int, typer.Option("--n-aug", min=1, help="Augmented copies per image.")] = 2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    label_regex: LabelRegexOpt = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    whole_image: WholeOpt = False,
    threads: ThreadsOpt = 1,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fine-tune dlib's face network on your people (CosFace loss) and export an ONNX embedder for --embedder/--model."""
    _threads(threads)
    command = "facelab " + shlex.join(sys.argv[1:])
    chosen = {k: v for k, v in (("blocks", blocks), ("epochs", epochs)) if v is not None}
    if distill:
        from ..train.distill import distill_embedder

        if label_regex or augmentation != "none":
            fail("--distill uses no labels and makes its own degraded copies: drop --label-regex / --augment")
        rep = distill_embedder(folder, out, detector=detector, min_face=min_face, fallback=whole_image, progress=not quiet, command=command, seed=seed, **chosen)
    else:
        from ..train.finetune import finetune_embedder

        rep = finetune_embedder(
            folder, out, label_regex=label_regex, augmentation=augmentation, n_aug=n_aug, seed=seed,
            detector=detector, min_face=min_face, fallback=whole_image, progress=not quiet, command=command, **chosen,
        )
    if as_json:
        typer.echo(json.dumps(rep.to_dict(), indent=2))
        return
    h = rep.history[-1]
    if distill:
        typer.echo(f"{rep.images} faces distilled; last epoch: loss {h['loss']:.4f}")
    else:
        typer.echo(f"{rep.images} images of {rep.people} people; last epoch: loss {h['loss']:.4f}, training accuracy {100 * h['train_acc']:.1f} %")
    metric = "euclidean" if distill else "cosine"
    typer.echo(f"embedder written to {rep.path} ({metric} threshold {rep.threshold:.4f}, model card {rep.card}); use it with --embedder {rep.path}")


@guard
def train_study_cmd(
    folder: Annotated[Path, typer.Argument(help="Labelled images: DIR/<person>/*.jpg.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Study folder: study.md, study.json, cells/, curves/, confusion/ (re-runs resume).")] = Path("study"),
    backbones: Annotated[str, typer.Option("--backbones", help="Comma-separated: dlib (frozen and fine-tuned), cnn (from scratch).")] = "dlib,cnn",
    augmentations: Annotated[str, typer.Option("--augment", help="Comma-separated: none, geometric, photometric.")] = "none,geometric",
    folds: Annotated[int, typer.Option("--folds", min=2, help="k of the k-fold split (the same for every cell).")] = 5,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs per cell (the last epoch is scored).")] = 12,
    blocks: Annotated[int, typer.Option("--blocks", min=0, max=14, help="Residual blocks fine-tuned in the dlib/finetuned cells.")] = 1,
    budget: Annotated[Optional[float], typer.Option("--budget", min=1, help="Seconds: start no new cell after this much time (the rest are listed as skipped).")] = None,
    degrade: Annotated[Optional[str], typer.Option("--degrade", help="Study a synthetic hard case: lowres<N> (the aligned chip shrunk to N px and back, e.g. lowres24) or occluded.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    label_regex: LabelRegexOpt = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    whole_image: WholeOpt = False,
    threads: ThreadsOpt = 1,
    limit: PerPersonLimitOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Transfer-learning study: {backbones} x {frozen, fine-tuned} x {augmentations}, one k-fold split, curves and confusion matrices."""
    from ..train.dataset import identity_dataset
    from ..train.finetune import face_chips
    from ..train.study import grid, run_study

    _threads(threads)
    bb = tuple(b.strip() for b in backbones.split(",") if b.strip())
    augs = tuple(a.strip() for a in augmentations.split(",") if a.strip())
    grid(bb, augs)  # a bad name fails before any face is aligned
    if degrade is not None and degrade != "occluded" and not (degrade.startswith("lowres") and degrade[6:].isdigit()):
        fail(f"unknown --degrade {degrade!r}; choose lowres<N> (e.g. lowres24) or occluded")
    chips = face_chips(identity_dataset(folder, label_regex=label_regex, min_per_class=folds, limit_per_class=limit), detector=detector, min_face=min_face, fallback=whole_image, progress=not quiet)
    for path, why in chips.failed:
        err(f"{path}: {why} (left out)")
    if degrade:
        chips = chips.degraded(degrade)
    s = run_study(
        chips, out, backbones=bb, augmentations=augs,
        folds=folds, epochs=epochs, blocks=blocks, budget=budget, seed=seed, progress=not quiet, title=f"{folder.name}{' (' + degrade + ')' if degrade else ''}",
    )
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    typer.echo((out / "study.md").read_text())
    typer.echo(f"study written to {out}/ (study.md, study.json, curves/, confusion/)")


def register(train_app: typer.Typer) -> None:
    """Add ``train embedder`` and ``train study`` to the ``facelab train`` group."""
    train_app.command("embedder")(train_embedder_cmd)
    train_app.command("study")(train_study_cmd)
