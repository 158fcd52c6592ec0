"""``facelab train identities|landmarks|attributes|ensemble|detector`` and ``facelab predict``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import TextColumn, TimeElapsedColumn

from .common import (
    DEFAULT_DETECTOR,
    DEFAULT_MIN_FACE,
    DEFAULT_ROTATE,
    DetectorOpt,
    JsonOpt,
    LimitOpt,
    MinFaceOpt,
    OutOpt,
    Paths,
    PerPersonLimitOpt,
    QuietOpt,
    RotateOpt,
    WorkersOpt,
    err,
    face_label,
    fail,
    guard,
    print_json,
    progress_bar,
    rotate_value,
    run_images,
)
from . import finetune
from .data import (
    BalanceOpt,
    CacheOpt,
    DatasetOpt,
    EpochOpt,
    LabelMapOpt,
    LabelRegexOpt,
    ManifestOpt,
    MaxMbOpt,
    NoCacheOpt,
    RetriesOpt,
    TimeoutOpt,
    embed_labelled,
    make_fetcher,
)

train_app = typer.Typer(help="Train models on your own data (identities, attributes, landmarks...).", no_args_is_help=True)


@guard
def train_identities_cmd(
    folder: Annotated[Path, typer.Argument(help="Labelled images: DIR/<person>/*.jpg (or a flat folder with --label-regex).")],
    model: Annotated[str, typer.Option("--model", help="Classifier: svm (linear SVM, reference), knn, logreg, or mlp (fine-tuned adapter).")] = "svm",
    folds: Annotated[int, typer.Option("--folds", min=2, help="k of the k-fold cross-validation.")] = 10,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model file to write (default identities-<model>.npz).")] = None,
    grid: Annotated[Optional[str], typer.Option("--grid", help='Hyper-parameter grid as JSON, e.g. \'{"C": [0.1, 1]}\' (default: a small built-in grid).')] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Open-set threshold (default: chosen on the held-out folds).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds and of the MLP.")] = 0,
    label_regex: LabelRegexOpt = None,
    embedder: Annotated[str, typer.Option("--embedder", "-e", help="Embedder: dlib, or an .onnx file (from `facelab train embedder`, or ArcFace/SFace-style).")] = "dlib",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    whole_image: Annotated[bool, typer.Option("--whole-image/--skip-no-face", help="Embed images without a detected face whole (pre-cropped face sets) or leave them out.")] = False,
    no_cache: NoCacheOpt = False,
    balance: BalanceOpt = "none",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the learning curve, the MLP's loss curve and the class counts as PNG beside the model.")] = True,
    limit: PerPersonLimitOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train an identity classifier on embeddings: k-fold CV (per-fold and mean accuracy), grid search, open-set threshold."""
    from ..train.identities import CLASSIFIERS, train_identities

    if model not in CLASSIFIERS:
        fail(f"unknown --model {model!r}; choose one of {', '.join(CLASSIFIERS)}")
    grid_d = None
    if grid:
        try:
            grid_d = json.loads(grid)
            if not isinstance(grid_d, dict) or not all(isinstance(v, list) and v for v in grid_d.values()):
                raise ValueError("expected an object of non-empty lists")
        except ValueError as e:
            fail(f"--grid is not a JSON object of lists ({e})")
    settings = {"embedder": embedder, "detector": detector, "min_face": min_face, "rotate": rotate_value(rotate), "fallback": whole_image}
    es = embed_labelled(folder, label_regex, settings, no_cache, quiet, limit)

    def progress(done: int, total: int) -> None:
        if not quiet and not as_json:
            err(f"fold {done}/{total} done")

    from ..train.balance import check_mode

    check_mode(balance)
    extra = None
    if balance == "augment":
        from ..train.dataset import augment_rows

        extra = augment_rows(es, seed=seed, cache=not no_cache, progress=not quiet)
        err(f"{len(extra.source)} augmented copies of the photos of people with fewer photos")
    res = train_identities(
        es, model, folds=folds, grid=grid_d, seed=seed, threshold=threshold, progress=progress,
        dataset={"root": str(folder.resolve()), "label_regex": label_regex, **es.summary()}, balance=balance, extra=extra,
    )
    path = res.model.save(output or Path(f"identities-{model}.npz"))
    pngs = _plots(lambda: res.plots(es, Path(path).parent, Path(path).stem, folds=min(folds, 5), seed=seed)) if plots else []
    cv = res.cv
    for note in cv.notes + [f"on the whole set: {n}" for n in {r["note"] for r in res.grid_rows if r.get("note")}]:
        err(note)
    if cv.folds < folds:
        err(f"--folds {folds}: the person with the fewest images has {cv.folds}, so {cv.folds}-fold cross-validation was used")
    if as_json:
        print_json({"model_file": path, "params": res.final_params, "threshold": res.model.threshold, "cv": cv.to_dict(), "grid_search": res.grid_rows,
                    "balance": res.model.meta["balance"], "plots": pngs})
        return
    typer.echo(f"{len(es)} images of {len(es.classes)} people, {model} ({res.model.meta['approach']})")
    typer.echo("fold accuracy: " + "  ".join(f"{a:.4f}" for a in cv.fold_accuracy))
    typer.echo(f"{cv.folds}-fold CV accuracy: {cv.mean_accuracy:.4f} ± {cv.std_accuracy:.4f}")
    typer.echo(f"parameters: {json.dumps(res.final_params)}   open-set threshold: {res.model.threshold:.4f} (open-set accuracy {cv.open_set_accuracy:.4f} on the out-of-fold distances that chose it: optimistic)")
    typer.echo(f"model written to {path}" + (f"; plots: {', '.join(Path(p).name for p in pngs)}" if pngs else ""))


def _plots(draw) -> list[str]:
    """Draw a trainer's PNGs; without matplotlib, say so and go on (the JSON history is written anyway)."""
    from ..errors import FacelabError

    try:
        return draw()
    except FacelabError as e:
        err(f"no plots: {e}")
        return []


@guard
def train_landmarks_cmd(
    data: Annotated[Path, typer.Option("--data", help="Folder with keypoints.csv (image, x0, y0, ... x67, y67, or any number of points) and images/, or the CSV.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoint.pt (resumable), train.log, curves_*.png, landmarks<K>.onnx.")] = Path("runs/landmarks"),
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 40,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    lr: Annotated[float, typer.Option("--lr")] = 3e-3,
    augment: Annotated[str, typer.Option("--augment", help="Augmentation preset: none, light, default, strong.")] = "default",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="PyTorch threads.")] = 1,
    limit: LimitOpt = None,
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
    log = (lambda m: None) if quiet else err
    rows: list[dict] = []

    def on_epoch(r: dict) -> None:  # one table row per epoch (train.log in the run folder has them as JSON lines)
        if not rows:
            typer.echo(f"{'epoch':>7} {'train NME':>10} {'val NME':>9} {'val fail':>9} {'lr':>9} {'s':>6}")
        rows.append(r)
        typer.echo(f"{r['epoch'] + 1:>3}/{epochs:<3} {r['train_nme']:>10.4f} {r['val_nme']:>9.4f} {100 * r['val_fail']:>8.1f}% {r['lr']:>9.2e} {r['s']:>6.1f}")

    s = train_landmarks(data, out, cfg, progress=not quiet, log=log, on_epoch=on_epoch)
    typer.echo(f"{s['num_points']} points: best val NME {s['val_nme']:.4f} at epoch {s['best_epoch']}; model {s['onnx']} (use it with --model {s['onnx']}); "
               f"curves: {', '.join(Path(p).name for p in s['plots']) or 'none'}")


@guard
def train_attributes(
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx model to write.")],
    manifest: ManifestOpt = None,
    dataset: DatasetOpt = None,
    val_manifest: Annotated[Optional[Path], typer.Option("--val-manifest", help="Validation items (default: a seeded split of the training items, or the dataset's own).")] = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", min=0.0, max=0.5)] = 0.1,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Only these tasks (comma-separated); default: every task the items label.")] = None,
    model_input: Annotated[str, typer.Option("--input", help="chip (a CNN on face pixels), embedding:dlib (heads on dlib's 128-d embedding) or chip:dlib (dlib's ResNet fine-tuned: its last --blocks train with the heads).")] = "chip",
    blocks: Annotated[int, typer.Option("--blocks", min=0, max=14, help="With --input chip:dlib: residual blocks of dlib's ResNet that train (of 14; 0 = only the heads).")] = 3,
    faces: Annotated[Optional[str], typer.Option("--faces", help="given: images are face crops; detect: find the largest face (default: given for --dataset, detect for manifests).")] = None,
    size: Annotated[int, typer.Option("--size", min=16, max=256, help="Chip side in pixels.")] = 48,
    color: Annotated[bool, typer.Option("--color/--grey", help="RGB chips instead of grey.")] = False,
    widths: Annotated[str, typer.Option("--widths", help="Channels of the 4 CNN stages.")] = "16,32,64,128",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 15,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2)] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate of the one-cycle schedule.")] = 3e-3,
    patience: Annotated[int, typer.Option("--patience", min=1, help="Early stopping: epochs without a better validation score.")] = 6,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads (1 is fastest on a busy machine).")] = 1,
    max_minutes: Annotated[Optional[float], typer.Option("--max-minutes", help="Stop after this much training time, keeping the best epoch.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Resumable checkpoint (default: OUT.ckpt); a finished run deletes it. Not with --input chip:dlib (its epochs take seconds).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Model name stored in the file (default: the file name).")] = None,
    timeout: TimeoutOpt = 10.0,
    max_mb: MaxMbOpt = 20.0,
    retries: RetriesOpt = 2,
    cache: CacheOpt = None,
    labels_from: Annotated[Optional[Path], typer.Option("--labels-from", help="A labelling-tool export (JSONL: content + annotation.labels, e.g. Dataturks): your own label sets.")] = None,
    label_map: LabelMapOpt = None,
    balance: BalanceOpt = "none",
    keep: Annotated[str, typer.Option("--keep", help="Weights kept besides the best: best, all (every epoch) or best:K; pick one later with --epoch N.")] = "best",
    quiet: QuietOpt = False,
) -> None:
    """Train one multi-task network (one head per labelled task; missing labels are masked) and export ONNX."""
    from dataclasses import replace

    from ..attributes.data import ChipSpec, dataset_items, import_label_export, measure_framing, parse_label_map, read_manifest, split_items, task_classes
    from ..train.attributes import TaskSpec, TrainConfig, _kept_epochs, export_epochs, export_onnx
    from ..train.balance import check_mode

    if manifest is None and dataset is None and labels_from is None:
        fail("give --manifest FILE, --labels-from EXPORT.jsonl and/or --dataset fer2013|utkface DIR")
    check_mode(balance)
    _kept_epochs(keep)
    if model_input not in ("chip", "embedding:dlib", "chip:dlib"):
        fail(f"--input must be chip, embedding:dlib or chip:dlib, not {model_input!r}")
    if faces not in (None, "given", "detect"):
        fail(f"--faces must be given or detect, not {faces!r}")
    if out.suffix.lower() != ".onnx":
        fail(f"--out must be a .onnx file, not {out}")
    fetcher = make_fetcher(timeout, max_mb, retries, cache)
    train_items, val_items = [], []
    if dataset is not None:
        kind, root = dataset
        train_items += dataset_items(kind, root, "train")
        val_items += dataset_items(kind, root, "val")
    declared: dict[str, list[str]] = {}
    m_items = []
    if manifest is not None:
        m_items, declared = read_manifest(manifest)
    if labels_from is not None:
        l_items, l_tasks, summary = import_label_export(labels_from, parse_label_map(label_map) if label_map else None)
        for t, cl in l_tasks.items():
            declared[t] = sorted(set(declared.get(t, [])) | set(cl))
        err(f"{labels_from}: {summary['items']} labelled images ({summary['unlabelled']} unlabelled skipped); "
            + "; ".join(f"{t}: {', '.join(f'{c} {n}' for c, n in cs.items())}" for t, cs in summary["tasks"].items()))
        m_items += l_items
    if m_items:
        if val_manifest is None and dataset is None and val_fraction > 0 and len(m_items) >= 10:
            m_tr, m_va = split_items(m_items, [1 - val_fraction, val_fraction], seed=seed)
            train_items += m_tr
            val_items += m_va
        else:
            train_items += m_items
    if val_manifest is not None:
        v_items, v_declared = read_manifest(val_manifest, classes=declared)
        val_items += v_items
        for t, cl in v_declared.items():
            declared.setdefault(t, cl)
    if not train_items:
        fail("no training items")
    classes = task_classes(train_items, declared, [t.strip() for t in tasks.split(",")] if tasks else None)
    present = list(classes)
    faces_mode = faces or ("given" if dataset is not None and not m_items else "detect")
    spec = ChipSpec(size=size if model_input == "chip" else 150, channels=3 if color or model_input != "chip" else 1, faces=faces_mode, padding=0.25, input=model_input)
    if faces_mode == "given":
        from ..errors import FacelabError

        sample = []
        for it in split_items(train_items, [min(1.0, 200 / len(train_items)), 1.0], seed=0)[0]:
            try:
                sample.append(fetcher.load(it.source))
            except FacelabError:
                continue  # reported when the chips are built
        pad, sx, sy, found = measure_framing(sample)
        if found:
            spec = replace(spec, padding=round(pad, 3), shift_x=round(sx, 3), shift_y=round(sy, 3))
        err(f"framing of the given crops ({found} of {len(sample)} faces found): padding {spec.padding}, shift ({spec.shift_x}, {spec.shift_y})")
    t0 = time.time()
    train_set, train_fail = build_chips_shown(train_items, spec, classes, fetcher, "loading training images", quiet)
    val_set, val_fail = build_chips_shown(val_items, spec, classes, fetcher, "loading validation images", quiet) if val_items else (None, [])
    for f in train_fail + val_fail:
        err(f"{f} (skipped)")
    if len(train_set) < 2:
        fail(f"only {len(train_set)} usable training images (see the errors above)")
    err(f"{len(train_set)} training and {len(val_set) if val_set else 0} validation faces; {len(train_fail) + len(val_fail)} skipped ({time.time() - t0:.0f} s)")
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed, size=spec.size, channels=spec.channels,
        widths=tuple(int(w) for w in widths.split(",")), threads=threads, input=model_input, max_minutes=max_minutes, balance=balance, keep=keep,
    )
    if model_input == "chip:dlib":
        from ..train.attribute_finetune import DROPOUT

        cfg = replace(cfg, dropout=DROPOUT)
    task_specs = [TaskSpec(t, classes[t]) for t in present]
    ck = checkpoint or out.with_suffix(".ckpt")
    res = _train_with_progress(train_set, val_set, task_specs, cfg, ck, quiet, blocks=blocks)
    meta = {
        "kind": "attributes", "format": 1, "name": name or out.stem, "input": model_input, "tasks": classes, "chip": spec.to_dict(),
        "trained": {
            "items": len(train_set), "val_items": len(val_set) if val_set else 0, "epochs": len(res.history), "best_epoch": res.best_epoch,
            "val_metrics": {k: round(v, 4) for k, v in res.best_metrics.items()}, "seed": seed, "stopped": res.stopped,
            "minutes": round(sum(h.seconds for h in res.history) / 60, 1),
            **({"finetuned_blocks": blocks} if model_input == "chip:dlib" else {}),
        },
    }
    export_onnx(res, out, meta)
    kept = export_epochs(res, out, meta)
    report = {**meta, "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}, "training": res.summary(),
              "failures": [f.to_dict() for f in train_fail + val_fail], "balance": res.balance,
              "kept_epochs": {str(e): str(p) for e, p in zip(res.kept, kept)}, "plots": _plots(lambda: res.plots(out))}
    rep = out.with_suffix(".report.json")
    rep.write_text(json.dumps(report, indent=2))
    if ck.exists():
        ck.unlink()
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {rep}: best epoch {res.best_epoch} of {len(res.history)} ({res.stopped}); "
               + ", ".join(f"{k} {v:.4f}" for k, v in res.best_metrics.items()))


@guard
def train_ensemble(
    models: Annotated[list[Path], typer.Argument(help="Two or more attributes .onnx files with the same input and classes.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx model to write.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Model name stored in the file (default: the file name).")] = None,
    tta_shift: Annotated[float, typer.Option("--tta-shift", min=0, help="Test-time augmentation: also average over chips shifted +-this many px in x and in y.")] = 0.0,
    tta_scale: Annotated[float, typer.Option("--tta-scale", min=0, max=0.5, help="... and zoomed by 1 +- this.")] = 0.0,
    tta_rotate: Annotated[float, typer.Option("--tta-rotate", min=0, max=45, help="... and rotated +- this many degrees.")] = 0.0,
    half: Annotated[bool, typer.Option("--half", help="Store the weights as float16 (half the file; inference still computes in float32).")] = False,
) -> None:
    """Average attribute models (e.g. the same net trained with different seeds) into one ONNX file."""
    from ..train.ensemble import merge_models
    from ..attributes.onnx_model import tta_warps

    if out.suffix.lower() != ".onnx":
        fail(f"--out must be a .onnx file, not {out}")
    warps = tta_warps(tta_shift, tta_scale, tta_rotate)
    path = merge_models(models, out, name=name, tta=warps, half=half)
    extra = f", over {len(warps)} warps of each chip" if len(warps) > 1 else ""
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): the mean of {len(models)} models{extra}")


def _train_with_progress(train_set, val_set, task_specs, cfg, ck, quiet: bool, blocks: int = 3):
    from ..train.attributes import train

    if cfg.input == "chip:dlib":  # dlib's ResNet fine-tuned: epochs are short, no checkpoint
        from ..train.attribute_finetune import finetune_attributes

        def train(train_set, val_set, task_specs, cfg, checkpoint=None, **kw):  # noqa: F811 - same call, other trainer
            return finetune_attributes(train_set, val_set, task_specs, cfg, blocks=blocks, **kw)

    def line(log) -> str:
        m = " ".join(f"{k} {v:.4f}" for k, v in log.metrics.items())
        vl = f" val_loss {log.val_loss:.4f}" if log.val_loss is not None else ""
        return f"epoch {log.epoch}/{cfg.epochs}: loss {log.loss:.4f}{vl} {m} ({log.seconds:.0f} s)"

    if quiet:
        return train(train_set, val_set, task_specs, cfg, checkpoint=ck, on_epoch=lambda log: err(line(log)))
    with progress_bar(TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=False) as p:
        bar = p.add_task("training", total=None, info="")

        def on_batch(epoch: int, b: int, n: int, loss: float) -> None:
            p.update(bar, total=n, completed=b + 1, description=f"epoch {epoch + 1}/{cfg.epochs}", info=f"loss {loss:.4f}")

        def on_epoch(log) -> None:
            p.console.print(line(log))

        return train(train_set, val_set, task_specs, cfg, checkpoint=ck, on_batch=on_batch, on_epoch=on_epoch)


def build_chips_shown(items, spec, classes, fetcher, label: str, quiet: bool, workers: int = 4, cache: bool = True):
    from ..attributes.data import build_chips

    if quiet or not items:
        return build_chips(items, spec, classes, fetcher=fetcher, workers=workers, cache=cache)
    with progress_bar(TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=False) as p:
        task = p.add_task(label, total=len(items), info="")
        return build_chips(items, spec, classes, fetcher=fetcher, workers=workers, on_item=lambda: p.advance(task), cache=cache)


@guard
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
    roll: Annotated[float, typer.Option("--roll", min=0, max=180, help="Turn training photos by up to this many degrees either way (0: never).")] = 0.0,
    roll_prob: Annotated[float, typer.Option("--roll-prob", min=0, max=1, help="Share of training crops turned when --roll > 0.")] = 0.5,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from WORK/last.pt.")] = False,
) -> None:
    """Fine-tune BlazeFace full range (face-boxes train split + pasted faces) and export ONNX."""
    try:
        import torch  # noqa: F401  (only checking it is there)
    except ImportError:
        fail("training needs torch: pip install -e '.[train]'  (torch==2.13.0, CPU build)")
    if not (data / "face-boxes" / "annotations").is_dir():
        fail(f"{data}: no face-boxes/annotations folder (pass --data, the shared data folder)")
    from ..train.blazeface import main as train_main

    argv = [
        "--work", str(work), "--data", str(data), "--epochs", str(epochs), "--samples-per-epoch", str(samples_per_epoch),
        "--batch", str(batch), "--lr", str(lr), "--long-side", str(long_side), "--threads", str(threads),
        "--roll", str(roll), "--roll-prob", str(roll_prob),
    ]
    train_main(argv + (["--resume"] if resume else []))


@guard
def predict_cmd(
    paths: Paths,
    model: Annotated[Path, typer.Option("--model", help="A model file facelab trained (its 'kind' picks the predictor).")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Candidates listed per face (identities).")] = 3,
    whole_image: Annotated[bool, typer.Option("--whole-image", help="Attributes: each image is one face crop (no detection), like FER2013/UTKFace images.")] = False,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
    epoch: EpochOpt = None,
) -> None:
    """Run a model facelab trained (identity classifier .npz, attributes .onnx) on every face of the images."""
    from ..train.predict import PredictOptions, predict_job

    if epoch is not None:
        from ..attributes.onnx_model import select_epoch
        from ..errors import InputError

        if model.suffix.lower() != ".onnx":
            raise InputError("--epoch picks the kept weights of an attributes .onnx model", source=str(model))
        model = Path(select_epoch(model, epoch))

    job = predict_job(model, PredictOptions(detector=detector, rotate=rotate_value(rotate), min_face=min_face, top_k=top_k, whole_image=whole_image))
    run_images(paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, limit=limit, extra=face_label)


def register(app: typer.Typer) -> None:
    train_app.command("identities")(train_identities_cmd)
    train_app.command("landmarks")(train_landmarks_cmd)
    train_app.command("attributes")(train_attributes)
    train_app.command("ensemble")(train_ensemble)
    train_app.command("detector")(train_detector)
    finetune.register(train_app)
    app.add_typer(train_app, name="train")
    app.command("predict")(predict_cmd)
