"""``facelab train identities``, ``facelab evaluate identities`` and ``facelab predict``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..cli import (
    DetectorOpt,
    JsonOpt,
    MinFaceOpt,
    OutOpt,
    Paths,
    QuietOpt,
    RotateMode,
    RotateOpt,
    WorkersOpt,
    _guard,
    _rotate_value,
    err,
    evaluate_app,
    fail,
    train_app,
)
from ..errors import InputError

LabelRegexOpt = Annotated[
    Optional[str], typer.Option("--label-regex", help="Label = this regex's first group in each file name (flat folders such as Yale), instead of DIR/<name>/.")
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the embedding cache ($FACELAB_HOME/cache).")]


def _embed(folder: Path, label_regex: str | None, settings: dict, no_cache: bool, quiet: bool):
    from .dataset import embed_dataset, identity_dataset

    items = identity_dataset(folder, label_regex=label_regex)
    es = embed_dataset(items, cache=not no_cache, progress=not quiet, **settings)
    for path, why in es.failed:
        err(f"{path}: {why} (left out)")
    if es.fallback.any():
        err(f"{int(es.fallback.sum())} image(s) without a detected face were embedded whole (--whole-image)")
    if (es.n_faces > 1).any():
        err(f"{int((es.n_faces > 1).sum())} image(s) had several faces: the largest was used")
    return es


@train_app.command("identities")
@_guard
def train_identities_cmd(
    folder: Annotated[Path, typer.Argument(help="Labelled images: DIR/<person>/*.jpg (or a flat folder with --label-regex).")],
    model: Annotated[str, typer.Option("--model", help="Classifier: svm (linear SVM, reference), knn, logreg, or mlp (fine-tuned adapter).")] = "svm",
    folds: Annotated[int, typer.Option("--folds", min=2, help="k of the k-fold cross-validation.")] = 10,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model file to write (default identities-<model>.npz).")] = None,
    grid: Annotated[Optional[str], typer.Option("--grid", help='Hyper-parameter grid as JSON, e.g. \'{"C": [0.1, 1]}\' (default: a small built-in grid).')] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Open-set threshold (default: chosen on the held-out folds).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds and of the MLP.")] = 0,
    label_regex: LabelRegexOpt = None,
    embedder: Annotated[str, typer.Option("--embedder", "-e", help="Embedder: dlib or an ONNX file.")] = "dlib",
    detector: DetectorOpt = "hog",
    rotate: RotateOpt = RotateMode.auto,
    min_face: MinFaceOpt = 40,
    whole_image: Annotated[bool, typer.Option("--whole-image/--skip-no-face", help="Embed images without a detected face whole (pre-cropped face sets) or leave them out.")] = False,
    no_cache: NoCacheOpt = False,
    balance: Annotated[str, typer.Option("--balance", help="Class balance: none, augment (augmented copies of the images of people with fewer photos), weights (class-weighted fits; not knn).")] = "none",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the learning curve, MLP loss curve and class counts as PNG beside the model.")] = True,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train an identity classifier on embeddings: k-fold CV (per-fold and mean accuracy), grid search, open-set threshold."""
    from .identities import CLASSIFIERS, train_identities

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
    settings = {"embedder": embedder, "detector": detector, "min_face": min_face, "rotate": _rotate_value(rotate), "fallback": whole_image}
    es = _embed(folder, label_regex, settings, no_cache, quiet)

    def progress(done: int, total: int) -> None:
        if not quiet and not as_json:
            err(f"fold {done}/{total} done")

    from .balance import check_mode

    check_mode(balance)
    extra = None
    if balance == "augment":
        from .dataset import augment_rows

        extra = augment_rows(es, seed=seed, cache=not no_cache, progress=not quiet)
        err(f"{len(extra.source)} augmented copies of the images of people with fewer photos")
    res = train_identities(
        es, model, folds=folds, grid=grid_d, seed=seed, threshold=threshold, progress=progress,
        dataset={"root": str(folder.resolve()), "label_regex": label_regex, **es.summary()}, balance=balance, extra=extra,
    )
    path = res.model.save(output or Path(f"identities-{model}.npz"))
    pngs: list[str] = []
    if plots:
        from ..errors import FacelabError

        try:
            pngs = res.plots(es, Path(path).parent, Path(path).stem, folds=min(folds, 5), seed=seed)
        except FacelabError as e:
            err(f"no plots: {e}")
    cv = res.cv
    if as_json:
        typer.echo(json.dumps({"model_file": path, "params": res.final_params, "threshold": res.model.threshold, "cv": cv.to_dict(), "grid_search": res.grid_rows,
                               "balance": res.model.meta["balance"], "plots": pngs}, indent=2))
        return
    typer.echo(f"{len(es)} images of {len(es.classes)} people, {model} ({res.model.meta['approach']})")
    typer.echo("fold accuracy: " + "  ".join(f"{a:.4f}" for a in cv.fold_accuracy))
    typer.echo(f"{cv.folds}-fold CV accuracy: {cv.mean_accuracy:.4f} ± {cv.std_accuracy:.4f}")
    typer.echo(f"parameters: {json.dumps(res.final_params)}   open-set threshold: {res.model.threshold:.4f} (held-out open-set accuracy {cv.open_set_accuracy:.4f})")
    typer.echo(f"model written to {path}" + (f"; plots: {', '.join(Path(p).name for p in pngs)}" if pngs else ""))


@evaluate_app.command("identities")
@_guard
def evaluate_identities_cmd(
    folder: Annotated[Path, typer.Argument(help="Labelled images: DIR/<person>/*.jpg (people the model does not know should come back unknown).")],
    model: Annotated[list[Path], typer.Option("--model", help="Model file from 'facelab train identities' (repeat to compare several).")],
    out: Annotated[Path, typer.Option("--out", help="Report folder: report.json, confusion.png, misclassified.jpg per model; compare.json/.md.")] = Path("identities-report"),
    label_regex: LabelRegexOpt = None,
    no_cv: Annotated[bool, typer.Option("--no-cv", help="Predict training images with the final model instead of their cross-validated predictions.")] = False,
    no_cache: NoCacheOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Accuracy, per-class precision/recall, confusion matrix, misclassified contact sheet; a comparison when several models are given."""
    from ..evaluate.identities import compare_row, comparison_table, evaluate_model, write_report
    from .identities import IdentityModel

    models = [IdentityModel.load(m) for m in model]
    names = _unique_names([Path(m).stem for m in model])
    cache: dict[str, object] = {}
    reports, rows = [], []
    for name, m in zip(names, models):
        settings = {k: m.meta.get("embedding", {}).get(k) for k in ("embedder", "detector", "min_face", "rotate", "flip", "fallback") if k in m.meta.get("embedding", {})}
        key = json.dumps(settings, sort_keys=True)
        if key not in cache:
            cache[key] = _embed(folder, label_regex, settings, no_cache, quiet)
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
        typer.echo(json.dumps(result if len(models) > 1 else reports[0], indent=2))
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


@_guard
def predict_cmd(
    paths: Paths,
    model: Annotated[Path, typer.Option("--model", help="A model file facelab trained (its 'kind' picks the predictor).")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Candidates listed per face (identities).")] = 3,
    whole_image: Annotated[bool, typer.Option("--whole-image", help="Attributes: each image is one face crop (no detection), like FER2013/UTKFace images.")] = False,
    detector: DetectorOpt = "hog",
    rotate: RotateOpt = RotateMode.auto,
    min_face: MinFaceOpt = 40,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    epoch: Annotated[Optional[int], typer.Option("--epoch", min=1, help="Attributes: the weights of this epoch (kept by 'train attributes --keep all|best:K').")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a model facelab trained (identity classifier .npz, attributes .onnx) on every face of the images."""
    from .predict import PredictOptions, predict

    if not model.exists():
        raise InputError("no such model file", source=str(model))
    if epoch is not None:
        from ..attributes.onnx_model import select_epoch

        if model.suffix.lower() != ".onnx":
            raise InputError("--epoch picks the kept weights of an attributes .onnx model", source=str(model))
        model = Path(select_epoch(model, epoch))
    predict(model, paths, PredictOptions(detector, rotate, min_face, as_json, out, workers, quiet, top_k, whole_image))


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cmd)
