"""``facelab train landmarks`` and ``facelab evaluate landmarks``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..cli import JsonOpt, QuietOpt, _guard, evaluate_app, train_app


@_guard
def train_landmarks_cmd(
    data: Annotated[Path, typer.Option("--data", help="Folder with keypoints.csv (image, x0, y0, ... x67, y67, or any number of points) and images/, or the CSV.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoint.pt (resumable), train.log, curves_*.png, landmarks<K>.onnx.")] = Path("runs/landmarks"),
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 40,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    lr: Annotated[float, typer.Option("--lr")] = 3e-3,
    augment: Annotated[str, typer.Option("--augment", help="Augmentation preset: none, light, default, strong.")] = "default",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="PyTorch threads.")] = 1,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N training images (a quick try).")] = None,
    val_limit: Annotated[Optional[int], typer.Option("--val-limit", min=1, help="Use only the first N validation images (a quick try).")] = None,
    points: Annotated[Optional[int], typer.Option("--points", min=1, help="Points per face the CSV must have (default: as many as its header has, e.g. 68 or 15).")] = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from the weights of an earlier run (its best.pt): fine-tuning.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train the small landmark CNN on 68 points or any point set (persons split train/val/test by name hash; test is never used) and export ONNX."""
    from ..datasets.augment import preset
    from ..train.landmarks import TrainConfig, train_landmarks

    preset(augment)  # fail early on a bad name
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, augment=augment, seed=seed, threads=threads, limit=limit, init=str(init) if init else None,
                      val_limit=val_limit, num_points=points)
    s = train_landmarks(data, out, cfg, progress=not quiet, log=(lambda m: None) if quiet else typer.echo)
    typer.echo(f"{s['num_points']} points: best val NME {s['val_nme']:.4f} at epoch {s['best_epoch']}; model {s['onnx']} (use it with --model {s['onnx']}); "
               f"curves: {', '.join(Path(p).name for p in s['plots']) or 'none'}")


@_guard
def evaluate_landmarks_cmd(
    data: Annotated[Path, typer.Option("--data", help="Folder with keypoints.csv and images/ (or the CSV itself).")],
    model: Annotated[list[str], typer.Option("--model", "-m", help="dlib68, cnn68, or a .onnx file from `facelab train landmarks`; repeatable.")] = ["dlib68"],  # noqa: B006
    split: Annotated[str, typer.Option("--split", help="Which persons to score: test (held out), val, train or all.")] = "all",
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Score only the first N images of the split.")] = None,
    detector: Annotated[str, typer.Option("--detector", "-d", help="Detector giving the face boxes (the same for every model).")] = "hog",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write report.json and ced.png here.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """NME (inter-ocular), per-region error, failure rate (NME > 0.1) and a CED plot; dlib68 is always measured as the reference."""
    from ..errors import InputError
    from ..evaluate.landmarks import ced_plot, evaluate_landmarks, read_keypoints, subset
    from ..landmarks import LANDMARKERS

    if split not in ("test", "val", "train", "all"):
        raise InputError(f"--split must be test, val, train or all, not {split!r}")
    models = list(dict.fromkeys(["dlib68", *model]))
    for m in models:
        LANDMARKERS.resolve(m)
    samples = subset(read_keypoints(data), split, limit)
    if not samples:
        raise InputError(f"no images in split {split!r}", source=str(data))
    scores = evaluate_landmarks(samples, models, detector=detector, progress=not quiet)
    report = {"data": str(data), "split": split, "images": len(samples), "detector": detector, "models": [s.to_dict() for s in scores]}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report["ced_png"] = ced_plot(scores, out / "ced.png")
        full = {**report, "per_image": {s.model: s.per_image for s in scores}}
        (out / "report.json").write_text(json.dumps(full, indent=2))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(show_header=True, header_style="bold", title=f"{scores[0].n} faces ({scores[0].missed} not found by {detector}, left out for every model)")
    for col in ("model", "NME", "fail >0.1", "AUC@0.1", "jaw", "brows", "nose", "eyes", "mouth", "ms/face"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for s in scores:
        r = s.region_errors
        t.add_row(s.model, f"{s.nme:.4f}", f"{100 * s.failure_rate:.1f}%", f"{s.auc:.3f}", *(f"{r[k]:.4f}" for k in ("jaw", "brows", "nose", "eyes", "mouth")), f"{s.ms_per_face:.2f}")
    Console().print(t)
    if out is not None:
        typer.echo(f"report.json and ced.png written to {out}")


def register(app: typer.Typer) -> None:
    train_app.command("landmarks")(train_landmarks_cmd)
    evaluate_app.command("landmarks")(evaluate_landmarks_cmd)
