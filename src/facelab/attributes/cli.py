"""Commands: ``facelab train attributes``, ``facelab evaluate attributes`` (``facelab predict`` runs the models: facelab.train.predict)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .data import dataset_items

ManifestOpt = Annotated[Optional[Path], typer.Option("--manifest", help="JSON list of {\"image\": path-or-URL, \"age\", \"gender\", \"emotion\", \"ethnicity\", \"age_group\"}.")]
DatasetOpt = Annotated[Optional[tuple[str, Path]], typer.Option("--dataset", help="Import a dataset folder: fer2013 DIR or utkface DIR.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each URL.")]
MaxMbOpt = Annotated[float, typer.Option("--max-mb", help="Largest image to download, MiB.")]
RetriesOpt = Annotated[int, typer.Option("--retries", help="Retries for a URL that times out or fails with 5xx.")]
EpochOpt = Annotated[Optional[int], typer.Option("--epoch", min=1, help="Use the weights of this epoch (kept by 'train attributes --keep all|best:K') instead of the best.")]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", help="Label prefix (or exact label) -> task for labelling-tool exports, e.g. Emotion_=emotion (repeatable).")]
CacheOpt = Annotated[Optional[Path], typer.Option("--cache", help="Download cache folder (default ~/.cache/facelab/downloads).")]


def _fetcher(timeout: float, max_mb: float, retries: int, cache: Path | None):
    from .data import Fetcher, default_cache_dir

    return Fetcher(cache or default_cache_dir(), timeout=timeout, max_bytes=int(max_mb * 2**20), retries=retries)


def _progress():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
    )


def _build(items, spec, classes, fetcher, label: str, quiet: bool, workers: int = 4, cache: bool = True):
    from .data import build_chips

    if quiet or not items:
        return build_chips(items, spec, classes, fetcher=fetcher, workers=workers, cache=cache)
    with _progress() as p:
        task = p.add_task(label, total=len(items), info="")
        return build_chips(items, spec, classes, fetcher=fetcher, workers=workers, on_item=lambda: p.advance(task), cache=cache)


def err(msg: str) -> None:
    from ..cli import err as _err

    _err(msg)


def fail(msg: str, code: int = 2) -> None:
    from ..cli import fail as _fail

    _fail(msg, code)


def _group(app: typer.Typer, name: str) -> typer.Typer:
    """The ``train`` / ``evaluate`` group of *this* app (robust to ``python -m facelab.cli``, where the module loads twice)."""
    for g in app.registered_groups:
        if g.name == name and g.typer_instance is not None:
            return g.typer_instance
    raise RuntimeError(f"the facelab app has no {name!r} command group")


def register(app: typer.Typer) -> None:
    from ..cli import _guard  # imported here: facelab.cli imports this module while it registers its rooms

    _group(app, "train").command("attributes")(_guard(train_attributes))
    _group(app, "train").command("ensemble")(_guard(train_ensemble))
    _group(app, "evaluate").command("attributes")(_guard(evaluate_attributes))


def train_attributes(
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx model to write.")],
    manifest: ManifestOpt = None,
    dataset: DatasetOpt = None,
    val_manifest: Annotated[Optional[Path], typer.Option("--val-manifest", help="Validation items (default: a seeded split of the training items, or the dataset's own).")] = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", min=0.0, max=0.5)] = 0.1,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Only these tasks (comma-separated); default: every task the items label.")] = None,
    model_input: Annotated[str, typer.Option("--input", help="chip (a CNN on face pixels) or embedding:dlib (heads on dlib's 128-d embedding).")] = "chip",
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
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Resumable checkpoint (default: OUT.ckpt); a finished run deletes it.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Model name stored in the file (default: the file name).")] = None,
    timeout: TimeoutOpt = 10.0,
    max_mb: MaxMbOpt = 20.0,
    retries: RetriesOpt = 2,
    cache: CacheOpt = None,
    labels_from: Annotated[Optional[Path], typer.Option("--labels-from", help="A labelling-tool export (JSONL: content + annotation.labels, e.g. Dataturks): your own label sets.")] = None,
    label_map: MapOpt = None,
    balance: Annotated[str, typer.Option("--balance", help="Class balance: none, augment (small classes repeated and augmented more), weights (class-weighted loss).")] = "none",
    keep: Annotated[str, typer.Option("--keep", help="Weights kept besides the best: best, all (every epoch) or best:K; pick one later with --epoch N.")] = "best",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train one multi-task network (one head per labelled task; missing labels are masked) and export ONNX."""
    from dataclasses import replace

    from ..train.balance import check_mode
    from .data import ChipSpec, import_label_export, parse_label_map, read_manifest, measure_framing, split_items
    from .labels import FIXED_CLASSES, TASKS
    from .train import TaskSpec, TrainConfig, _kept_epochs, export_epochs, export_onnx

    if manifest is None and dataset is None and labels_from is None:
        fail("give --manifest FILE, --labels-from EXPORT.jsonl and/or --dataset fer2013|utkface DIR")
    check_mode(balance)
    _kept_epochs(keep)
    if model_input not in ("chip", "embedding:dlib"):
        fail(f"--input must be chip or embedding:dlib, not {model_input!r}")
    if faces not in (None, "given", "detect"):
        fail(f"--faces must be given or detect, not {faces!r}")
    if out.suffix.lower() != ".onnx":
        fail(f"--out must be a .onnx file, not {out}")
    fetcher = _fetcher(timeout, max_mb, retries, cache)
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
    known = list(dict.fromkeys([*TASKS, *declared]))
    wanted = [t.strip() for t in tasks.split(",")] if tasks else known
    bad = [t for t in wanted if t not in known]
    if bad:
        fail(f"unknown task {bad[0]!r} (choose from: {', '.join(known)})")
    present = [t for t in wanted if any(t in it.labels for it in train_items)]
    if not present:
        fail("the training items have no labels for the tasks asked for")
    classes: dict[str, list[str]] = {}
    for t in present:
        if t in declared:
            classes[t] = list(declared[t])
        elif t == "age":
            classes[t] = []
        elif t in FIXED_CLASSES:
            classes[t] = list(FIXED_CLASSES[t])
        else:
            classes[t] = sorted({str(it.labels[t]) for it in train_items if t in it.labels})
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
    train_set, train_fail = _build(train_items, spec, classes, fetcher, "loading training images", quiet)
    val_set, val_fail = _build(val_items, spec, classes, fetcher, "loading validation images", quiet) if val_items else (None, [])
    for f in train_fail + val_fail:
        err(f"{f} (skipped)")
    if len(train_set) < 2:
        fail(f"only {len(train_set)} usable training images (see the errors above)")
    err(f"{len(train_set)} training and {len(val_set) if val_set else 0} validation faces; {len(train_fail) + len(val_fail)} skipped ({time.time() - t0:.0f} s)")
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed, size=spec.size, channels=spec.channels,
        widths=tuple(int(w) for w in widths.split(",")), threads=threads, input=model_input, max_minutes=max_minutes, balance=balance, keep=keep,
    )
    task_specs = [TaskSpec(t, classes[t]) for t in present]
    ck = checkpoint or out.with_suffix(".ckpt")
    res = _train_with_progress(train_set, val_set, task_specs, cfg, ck, quiet)
    meta = {
        "kind": "attributes", "format": 1, "name": name or out.stem, "input": model_input, "tasks": classes, "chip": spec.to_dict(),
        "trained": {
            "items": len(train_set), "val_items": len(val_set) if val_set else 0, "epochs": len(res.history), "best_epoch": res.best_epoch,
            "val_metrics": {k: round(v, 4) for k, v in res.best_metrics.items()}, "seed": seed, "stopped": res.stopped,
            "minutes": round(sum(h.seconds for h in res.history) / 60, 1),
        },
    }
    export_onnx(res, out, meta)
    kept = export_epochs(res, out, meta)
    report = {**meta, "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}, "training": res.summary(),
              "failures": [f.to_dict() for f in train_fail + val_fail], "balance": res.balance,
              "kept_epochs": {str(e): str(p) for e, p in zip(res.kept, kept)}, "plots": _training_plots(res, out)}
    rep = out.with_suffix(".report.json")
    rep.write_text(json.dumps(report, indent=2))
    if ck.exists():
        ck.unlink()
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {rep}: best epoch {res.best_epoch} of {len(res.history)} ({res.stopped}); "
               + ", ".join(f"{k} {v:.4f}" for k, v in res.best_metrics.items()))


def _training_plots(res, out: Path) -> list[str]:
    """Loss/accuracy curves and the class counts (before/after balancing) beside the model; a warning if they cannot be drawn."""
    from ..errors import FacelabError
    from ..train.curves import plot_class_counts, plot_curves

    try:
        files = plot_curves(res.history_dicts(), out.parent, prefix=f"{out.stem}.curves", title=out.stem)
        if res.balance.get("before"):
            after = res.balance["after"] if res.balance.get("mode") != "none" else None
            files.append(plot_class_counts(res.balance["before"], after, out.parent / f"{out.stem}.balance.png", title=f"classes ({res.balance['mode']})"))
        return files
    except FacelabError as e:
        err(f"no plots: {e}")
        return []


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
    from .ensemble import merge_models
    from .onnx_model import tta_warps

    if out.suffix.lower() != ".onnx":
        fail(f"--out must be a .onnx file, not {out}")
    warps = tta_warps(tta_shift, tta_scale, tta_rotate)
    path = merge_models(models, out, name=name, tta=warps, half=half)
    extra = f", over {len(warps)} warps of each chip" if len(warps) > 1 else ""
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): the mean of {len(models)} models{extra}")


def _train_with_progress(train_set, val_set, task_specs, cfg, ck, quiet: bool):
    from .train import train

    def line(log) -> str:
        m = " ".join(f"{k} {v:.4f}" for k, v in log.metrics.items())
        vl = f" val_loss {log.val_loss:.4f}" if log.val_loss is not None else ""
        return f"epoch {log.epoch}/{cfg.epochs}: loss {log.loss:.4f}{vl} {m} ({log.seconds:.0f} s)"

    if quiet:
        return train(train_set, val_set, task_specs, cfg, checkpoint=ck, on_epoch=lambda log: err(line(log)))
    with _progress() as p:
        bar = p.add_task("training", total=None, info="")

        def on_batch(epoch: int, b: int, n: int, loss: float) -> None:
            p.update(bar, total=n, completed=b + 1, description=f"epoch {epoch + 1}/{cfg.epochs}", info=f"loss {loss:.4f}")

        def on_epoch(log) -> None:
            p.console.print(line(log))

        return train(train_set, val_set, task_specs, cfg, checkpoint=ck, on_batch=on_batch, on_epoch=on_epoch)


def evaluate_attributes(
    model: Annotated[str, typer.Option("--model", "-m", help="An attributes .onnx file, or a model name (fer-cnn, utk-dlib, agegender).")],
    manifest: ManifestOpt = None,
    dataset: DatasetOpt = None,
    split: Annotated[str, typer.Option("--split", help="Dataset part to use: test (utkface's held-out 10%; fer2013's val) or val or train.")] = "test",
    faces: Annotated[Optional[str], typer.Option("--faces", help="given (images are face crops) or detect (default: given for --dataset, detect for manifests).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.json and confusion_<task>.png.")] = Path("attributes-eval"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    timeout: TimeoutOpt = 10.0,
    max_mb: MaxMbOpt = 20.0,
    retries: RetriesOpt = 2,
    cache: CacheOpt = None,
    epoch: EpochOpt = None,
    label_map: MapOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Accuracy per task and MAE for age, by gender / ethnicity / age band, confusion-matrix PNGs, JSON report."""
    from . import get_attribute_model
    from .data import parse_label_map, read_manifest
    from .evaluate import evaluate, write_report
    from .onnx_model import select_epoch

    if manifest is None and dataset is None:
        fail("give --manifest FILE (or a labelling-tool export .jsonl) or --dataset fer2013|utkface DIR")
    m = get_attribute_model(select_epoch(model, epoch))
    m.prepare()
    items = []
    if dataset is not None:
        items += dataset_items(dataset[0], dataset[1], split)
    if manifest is not None:
        mapping = parse_label_map(label_map) if label_map else None
        items += read_manifest(manifest, classes={t: c for t, c in getattr(m, "classes", {}).items() if c}, mapping=mapping)[0]
    faces_mode = faces or ("given" if dataset is not None and manifest is None else "detect")
    fetcher = _fetcher(timeout, max_mb, retries, cache)
    if quiet:
        res = evaluate(m, items, faces=faces_mode, fetcher=fetcher)
    else:
        with _progress() as p:
            bar = p.add_task("evaluating", total=len(items), info="")
            res = evaluate(m, items, faces=faces_mode, fetcher=fetcher, on_item=lambda: p.advance(bar))
    for f in res.failures:
        err(f"{f} (skipped)")
    path = write_report(res, out)
    if as_json:
        typer.echo(json.dumps(res.report, indent=2))
        return
    _print_report(res.report)
    typer.echo(f"report: {path}")


def _print_report(rep: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{rep['model']}: {rep['evaluated']} of {rep['items']} items, {rep['ms_per_face']} ms/face", show_header=True, header_style="bold")
    for c in ("task", "metric", "all", "by gender", "by ethnicity", "by age band"):
        t.add_column(c)
    for task, e in rep["tasks"].items():
        fmt = (lambda v: f"{v:.2f}") if e["metric"] == "mae" else (lambda v: f"{v:.1%}")
        cols = []
        for g in ("gender", "ethnicity", "age_band"):
            groups = e["by"].get(g, {})
            cols.append("\n".join(f"{k}: {fmt(v['value'])} ({v['n']})" for k, v in groups.items()) or "-")
        t.add_row(task, e["metric"], f"{fmt(e['value'])} (n={e['n']})", *cols)
    Console().print(t)
