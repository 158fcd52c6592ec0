"""``facelab dataset build`` and ``facelab augment`` (:mod:`facelab.datasets`)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from .common import (
    DEFAULT_DETECTOR,
    DEFAULT_MIN_FACE,
    DEFAULT_ROTATE,
    DetectorOpt,
    JsonOpt,
    LimitOpt,
    MinFaceOpt,
    PerPersonLimitOpt,
    QuietOpt,
    RotateOpt,
    WorkersOpt,
    err,
    fail,
    guard,
    new_table,
    print_json,
    print_table,
)
from .data import LabelMapOpt

dataset_app = typer.Typer(help="Build clean face datasets from raw photos (one folder per person).", no_args_is_help=True)


def parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--split must be three numbers like 0.7,0.15,0.15, not {text!r}") from None
    if len(parts) != 3:
        raise InputError(f"--split must be three numbers (train,val,test), got {len(parts)}")
    return parts  # type: ignore[return-value]


@dataset_app.command("build")
@guard
def build(
    raw: Annotated[Path, typer.Argument(help="Raw photos: one sub-folder per person.")],
    out: Annotated[Path, typer.Argument(help="Output folder (created; re-running updates it and skips done work).")],
    size: Annotated[int, typer.Option("--size", help="Side of the aligned face chips (px).")] = 256,
    padding: Annotated[float, typer.Option("--padding", help="Margin around the face, as a fraction of its size.")] = 0.25,
    split: Annotated[str, typer.Option("--split", help="train,val,test fractions, per person.")] = "0.7,0.15,0.15",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    choose: Annotated[str, typer.Option("--choose", help="Face kept when a photo has several: largest or central.")] = "largest",
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_size: Annotated[int, typer.Option("--min-size", help="Reject faces smaller than this (px).")] = 48,
    blur: Annotated[float, typer.Option("--blur", help="Reject chips whose sharpness (variance of Laplacian) is below this.")] = 15.0,
    min_quality: Annotated[
        Optional[float], typer.Option("--min-quality", min=0.0, max=1.0, help="Reject faces whose quality score (0-1, facelab.quality) is lower.")
    ] = None,
    dup_bits: Annotated[int, typer.Option("--dup-bits", help="Near duplicate: perceptual hashes at most this many bits apart.")] = 6,
    outlier: Annotated[float, typer.Option("--outlier", help="Move faces farther than this from their person's centre to review/.")] = 0.52,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    image_format: Annotated[str, typer.Option("--format", help="jpg or png chips.")] = "jpg",
    workers: WorkersOpt = 1,
    limit: PerPersonLimitOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Detect, align, filter (no face, small, blurry, duplicates, outliers) and split a raw photo collection."""
    from ..datasets.build import BuildOptions, build_dataset

    opts = BuildOptions(
        size=size, padding=padding, detector=detector, choose=choose, rotate=rotate.value, min_face=min_face, image_format=image_format, min_size=min_size,
        blur=blur, min_quality=min_quality, dup_bits=dup_bits, outlier=outlier, split=parse_split(split), seed=seed,
    )
    s = build_dataset(raw, out, opts, workers=workers, progress=not quiet, limit_per_person=limit)
    if as_json:
        print_json(s.to_dict(images=False))
        return
    t = new_table("person", "images", "kept", "train/val/test", "review", "rejected")
    for person, p in s.per_person.items():
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(p["reasons"].items()) if k != "outlier")
        sp = p["split"]
        t.add_row(person, str(p["images"]), str(p["kept"]), f"{sp['train']}/{sp['val']}/{sp['test']}", str(p["review"]), f"{p['rejected']}" + (f" ({reasons})" if reasons else ""))
    print_table(t)
    typer.echo(
        f"{s.totals['kept']} kept, {s.totals['review']} to review, {s.totals['rejected']} rejected of {s.totals['images']} images "
        f"({s.processed} processed now, the rest from the cache)"
    )
    typer.echo(f"written to {out}: train/ val/ test/ review/, manifest.csv, report.json, unrecognized.txt, contact/<person>.html|png")


def _samples_from(src: Path, landmarks_model: str, quiet: bool, limit: int | None = None) -> list[tuple[str, object]]:
    """(path, 68 points) pairs: from keypoints.csv when the folder has one, else detected + landmarked."""
    import numpy as np

    if (src / "keypoints.csv").is_file() or src.suffix.lower() == ".csv":
        from ..evaluate.landmarks import read_keypoints

        return [(s.path, s.points) for s in read_keypoints(src)][:limit]
    from ..detect import detect
    from ..io import iter_image_paths, load_image
    from ..landmarks import get_landmarker
    from ..progress import track

    lm = get_landmarker(landmarks_model)
    if lm.scheme != "68":
        raise InputError(f"augment needs a 68-point landmark model, {landmarks_model!r} gives scheme {lm.scheme!r}")
    paths = list(iter_image_paths(src))[:limit]
    if not paths:
        raise InputError("no images found", source=str(src))
    out = []
    for p in track(paths, len(paths), "landmarks", not quiet):
        try:
            img = load_image(p)
        except InputError as e:
            err(f"{e} (skipped)")
            continue
        faces = detect(img, rotate="auto")[:1]
        if not faces:
            err(f"{p}: no face found (skipped)")
            continue
        out.append((p, np.asarray(lm.predict(img, faces)[0].points)))
    return out


def augment(
    src: Annotated[Path, typer.Argument(help="A keypoints folder (keypoints.csv + images/), or a folder of face images (landmarks are found).")],
    out: Annotated[Path, typer.Argument(help="Output folder: images/ + keypoints.csv (a keypoints folder again) and preview.png.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Augmented copies per image.")] = 4,
    preset_name: Annotated[str, typer.Option("--preset", help="none, light, default or strong.")] = "default",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    preview: Annotated[Optional[Path], typer.Option("--preview", help="Preview grid PNG (default OUT/preview.png).")] = None,
    landmarks_model: Annotated[str, typer.Option("--landmarks", help="68-point model for folders without keypoints.csv.")] = "dlib68",
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
) -> None:
    """Keypoint-aware augmentation (rotation, flip with left/right swap, scale, light, blur, noise, occlusion, pose)."""
    from ..draw import save_image
    from ..io import load_image
    from ..progress import track
    from ..datasets.augment import Augmenter, preset, preview_grid

    try:
        cfg = preset(preset_name)
        if not src.exists():
            raise InputError("no such file or folder", source=str(src))
        samples = _samples_from(src, landmarks_model, quiet, limit)
        if not samples:
            raise InputError("nothing to augment (no image with landmarks)", source=str(src))
    except InputError as e:
        fail(str(e))
    aug = Augmenter(cfg, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    base = src if src.is_dir() else src.parent
    if (base / "images").is_dir() and (base / "keypoints.csv").is_file():
        base = base / "images"
    rows = []
    for path, pts in track(samples, len(samples), "augmenting", not quiet):
        img = load_image(path)
        rel = os.path.relpath(path, base)
        stem = os.path.splitext(rel)[0]
        for k in range(n):
            im2, p2 = aug(img, pts)
            name = f"{stem}_aug{k}.jpg"
            save_image(im2, out / "images" / name)
            rows.append([name] + [f"{v:.2f}" for v in p2.reshape(-1)])
    with open(out / "keypoints.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image"] + [f"{a}{i}" for i in range(68) for a in ("x", "y")])
        w.writerows(rows)
    path0, pts0 = samples[0]
    pv = preview_grid(load_image(path0), pts0, cfg, preview or out / "preview.png", seed=seed)
    typer.echo(f"{len(rows)} augmented images and keypoints.csv written to {out}; preview grid {pv}")


@dataset_app.command("import-labels")
@guard
def import_labels(
    export: Annotated[Path, typer.Argument(help="A labelling-tool export: one JSON object per line with content (image URL or path) and annotation.labels (Dataturks).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The attributes manifest to write (JSON with the tasks and their classes).")],
    label_map: LabelMapOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a labelling-tool export into a facelab attributes manifest (tasks and classes read from the labels)."""
    from ..attributes.data import import_label_export, parse_label_map, write_manifest

    items, tasks, summary = import_label_export(export, parse_label_map(label_map) if label_map else None)
    path = write_manifest(items, out, tasks=tasks)
    if as_json:
        print_json({"manifest": str(path), **summary})
        return
    typer.echo(f"{summary['items']} labelled images ({summary['unlabelled']} unlabelled skipped) -> {path}")
    for t, cs in summary["tasks"].items():
        typer.echo(f"  {t}: " + ", ".join(f"{c} ({n})" for c, n in cs.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
    app.command("augment")(guard(augment))
