"""``facelab train detector``: fine-tune BlazeFace on crowded, masked photos (needs the ``train`` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from ..cli import fail, train_app

    @train_app.command("detector")
    def train_detector(
        work: Annotated[Path, typer.Option("--work", help="Checkpoints, train_log.jsonl and blazeface_ft.onnx go here.")] = Path("train-runs/blazeface_ft"),
        data: Annotated[Path, typer.Option("--data", help="The shared data folder (face-boxes, dlib-faces, lfw, utkface).")] = Path(
            os.environ.get("FACELAB_SHARED_DATA", "../shared/data")
        ),
        epochs: Annotated[int, typer.Option("--epochs", min=1)] = 40,
        samples_per_epoch: Annotated[int, typer.Option("--samples-per-epoch", min=8)] = 512,
        batch: Annotated[int, typer.Option("--batch", min=1)] = 8,
        lr: Annotated[float, typer.Option("--lr")] = 1e-3,
        long_side: Annotated[int, typer.Option("--long-side", help="Image long side at detection time (multiple of 32).")] = 512,
        threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads (the machine may be shared: keep it low).")] = 1,
        resume: Annotated[bool, typer.Option("--resume", help="Continue from WORK/last.pt.")] = False,
    ) -> None:
        """Fine-tune BlazeFace full range (face-boxes train split + pasted faces) and export ONNX."""
        try:
            import torch  # noqa: F401
        except ImportError:
            fail("training needs torch: pip install -e '.[train]'  (torch==2.13.0, CPU build)")
        if not (data / "face-boxes" / "annotations").is_dir():
            fail(f"{data}: no face-boxes/annotations folder (pass --data, the shared data folder)")
        from .train_blazeface import main as train_main

        argv = [
            "--work", str(work), "--data", str(data), "--epochs", str(epochs), "--samples-per-epoch", str(samples_per_epoch),
            "--batch", str(batch), "--lr", str(lr), "--long-side", str(long_side), "--threads", str(threads),
        ]
        train_main(argv + (["--resume"] if resume else []))
