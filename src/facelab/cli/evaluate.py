"""``facelab evaluate identities|landmarks|attributes``: measure models on labelled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import TextColumn, TimeElapsedColumn

from .common import EXIT_NO_FACE, JsonOpt, LimitOpt, PerPersonLimitOpt, QuietOpt, err, fail, guard, new_table, print_json, print_table, progress_bar
from .data import (
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

evaluate_app = typer.Typer(help="Measure models on labelled data: accuracy, reports, plots.", no_args_is_help=True)


@guard
def evaluate_identities_cmd(
    folder: Annotated[Path, typer.Argument(help="Labelled images: DIR/<person>/*.jpg (people the model does not know should come back unknown).")],
    model: Annotated[list[Path], typer.Option("--model", help="Model file from 'facelab train identities' (repeat to compare several).")],
    out: Annotated[Path, typer.Option("--out", help="Report folder: report.json, confusion.png, misclassified.jpg per model; compare.json/.md.")] = Path("identities-report"),
    label_regex: LabelRegexOpt = None,
    no_cv: Annotated[bool, typer.Option("--no-cv", help="Predict training images with the final model instead of their cross-validated predictions.")] = False,
    no_cache: NoCacheOpt = False,
    limit: PerPersonLimitOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Accuracy, per-class precision/recall, confusion matrix, misclassified contact sheet; a comparison when several models are given."""
    from ..evaluate.identities import compare_row, comparison_table, evaluate_model, write_report
    from ..train.identities import IdentityModel

    models = [IdentityModel.load(m) for m in model]
    names = _unique_names([Path(m).stem for m in model])
    cache: dict[str, object] = {}
    reports, rows = [], []
    for name, m in zip(names, models):
        settings = {k: m.meta.get("embedding", {}).get(k) for k in ("embedder", "detector", "min_face", "rotate", "flip", "fallback") if k in m.meta.get("embedding", {})}
        key = json.dumps(settings, sort_keys=True)
        if key not in cache:
            cache[key] = embed_labelled(folder, label_regex, settings, no_cache, quiet, limit)
        rep = evaluate_model(m, cache[key], name=name, use_cv=not no_cv)
        d = write_report(rep, out / name if len(models) > 1 else out)
        reports.append(d)
        rows.append(compare_row(rep))
    result: dict = {"reports": reports}
    if len(models) > 1:
        table = comparison_table(rows)
        (out / "compare.json").write_text(json.dumps(rows, indent=2))
        (out / "compare.md").write_text(table + "\n")
        result["comparison"] = rows
    if as_json:
        print_json(result if len(models) > 1 else reports[0])
        return
    if len(models) > 1:
        typer.echo(comparison_table(rows))
    for d in reports:
        typer.echo(
            f"{d['name']}: accuracy {d['accuracy']:.4f} ({d['source']}), macro precision {d['macro_precision']}, macro recall {d['macro_recall']}, "
            f"{len(d['misclassified'])} misclassified; report in {Path(d['files']['report']).parent}"
        )


def _unique_names(stems: list[str]) -> list[str]:
    out: list[str] = []
    for s in stems:
        n, i = s, 1
        while n in out:
            i += 1
            n = f"{s}-{i}"
        out.append(n)
    return out


@guard
def evaluate_landmarks_cmd(
    data: Annotated[Path, typer.Option("--data", help="Folder with keypoints.csv and images/ (or the CSV itself).")],
    model: Annotated[list[str], typer.Option("--model", "-m", help="dlib68, cnn68, or a .onnx file from `facelab train landmarks`; repeatable.")] = ["dlib68"],  # noqa: B006
    split: Annotated[str, typer.Option("--split", help="Which persons to score: test (held out), val, train or all.")] = "all",
    limit: LimitOpt = None,
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
    if not scores[0].n:
        fail(f"nothing to score: {detector} found no face in any of the {len(samples)} images", EXIT_NO_FACE)
    report = {"data": str(data), "split": split, "images": len(samples), "detector": detector, "models": [s.to_dict() for s in scores]}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report["ced_png"] = ced_plot(scores, out / "ced.png")
        full = {**report, "per_image": {s.model: s.per_image for s in scores}}
        (out / "report.json").write_text(json.dumps(full, indent=2))
    if as_json:
        print_json(report)
        return
    t = new_table("model", "NME", "fail >0.1", "AUC@0.1", "jaw", "brows", "nose", "eyes", "mouth", "ms/face",
                  title=f"{scores[0].n} faces ({scores[0].missed} not found by {detector}, left out for every model)")
    for s in scores:
        r = s.region_errors
        t.add_row(s.model, f"{s.nme:.4f}", f"{100 * s.failure_rate:.1f}%", f"{s.auc:.3f}", *(f"{r[k]:.4f}" for k in ("jaw", "brows", "nose", "eyes", "mouth")), f"{s.ms_per_face:.2f}")
    print_table(t)
    if out is not None:
        typer.echo(f"report.json and ced.png written to {out}")


@guard
def evaluate_attributes(
    model: Annotated[str, typer.Option("--model", "-m", help="An attributes .onnx file, or a model name (fer-cnn, utk-dlib, agegender).")],
    manifest: ManifestOpt = None,
    dataset: DatasetOpt = None,
    split: Annotated[str, typer.Option("--split", help="Dataset part to use: test (utkface's held-out 10%; fer2013's val) or val or train.")] = "test",
    faces: Annotated[Optional[str], typer.Option("--faces", help="given (images are face crops) or detect (default: given for --dataset, detect for manifests).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.json and confusion_<task>.png.")] = Path("attributes-eval"),
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 10.0,
    max_mb: MaxMbOpt = 20.0,
    retries: RetriesOpt = 2,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
    epoch: EpochOpt = None,
    label_map: LabelMapOpt = None,
) -> None:
    """Accuracy per task and MAE for age, by gender / ethnicity / age band, confusion-matrix PNGs, JSON report."""
    from ..attributes import get_attribute_model
    from ..attributes.data import dataset_items, parse_label_map, read_manifest
    from ..evaluate.attributes import evaluate, write_report
    from ..attributes.onnx_model import select_epoch

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
    items = items[:limit] if limit else items
    faces_mode = faces or ("given" if dataset is not None and manifest is None else "detect")
    fetcher = make_fetcher(timeout, max_mb, retries, cache)
    if quiet:
        res = evaluate(m, items, faces=faces_mode, fetcher=fetcher)
    else:
        with progress_bar(TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=False) as p:
            bar = p.add_task("evaluating", total=len(items), info="")
            res = evaluate(m, items, faces=faces_mode, fetcher=fetcher, on_item=lambda: p.advance(bar))
    for f in res.failures:
        err(f"{f} (skipped)")
    if not res.report["evaluated"]:
        fail(f"nothing evaluated: all {len(items)} items failed (see above)", EXIT_NO_FACE)
    path = write_report(res, out)
    if as_json:
        print_json(res.report)
        return
    _print_report(res.report)
    typer.echo(f"report: {path}")


def _print_report(rep: dict[str, Any]) -> None:
    t = new_table("task", "metric", "all", "by gender", "by ethnicity", "by age band", title=f"{rep['model']}: {rep['evaluated']} of {rep['items']} items, {rep['ms_per_face']} ms/face",
                  left=("metric", "all", "by gender", "by ethnicity", "by age band"))
    for task, e in rep["tasks"].items():
        fmt = (lambda v: f"{v:.2f}") if e["metric"] == "mae" else (lambda v: f"{v:.1%}")
        cols = []
        for g in ("gender", "ethnicity", "age_band"):
            groups = e["by"].get(g, {})
            cols.append("\n".join(f"{k}: {fmt(v['value'])} ({v['n']})" for k, v in groups.items()) or "-")
        t.add_row(task, e["metric"], f"{fmt(e['value'])} (n={e['n']})", *cols)
    print_table(t)


def register(app: typer.Typer) -> None:
    evaluate_app.command("identities")(evaluate_identities_cmd)
    evaluate_app.command("landmarks")(evaluate_landmarks_cmd)
    evaluate_app.command("attributes")(evaluate_attributes)
    app.add_typer(evaluate_app, name="evaluate")
