"""Commands of :mod:`facelab.batch`: ``facelab batch embed|analyze|identify``, ``facelab cluster`` and ``facelab cluster-enroll``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    DEFAULT_DETECTOR,
    DEFAULT_MIN_FACE,
    DEFAULT_ROTATE,
    EXIT_BAD_INPUT,
    DbOpt,
    DetectorOpt,
    EmbedderOpt,
    JsonOpt,
    LimitOpt,
    MinFaceOpt,
    QuietOpt,
    RotateOpt,
    err,
    fail,
    guard,
    print_json,
    rotate_value,
)

batch_app = typer.Typer(help="Process folders, globs or manifests of images at scale (local processes or a Ray cluster); resumable.", no_args_is_help=True)

InputArg = Annotated[str, typer.Argument(help="A folder, a glob pattern ('photos/**/*.jpg'), or a manifest: .csv/.json/.jsonl/.parquet/.txt of paths or URLs.")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output folder of Parquet files (one row per face); re-running resumes it.")]
EngineOpt = Annotated[str, typer.Option("--engine", "-e", help="local (process pool) or ray (one actor per CPU).")]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="Join this Ray cluster (e.g. 10.0.0.5:6379 or auto); default: start a local Ray.")]
BatchWorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-w", min=1, help="Worker processes / Ray actors (default: every core / every cluster CPU).")]
ChunkOpt = Annotated[int, typer.Option("--chunk-size", min=1, help="Images per chunk: a part file each; a killed run loses at most the chunks in flight.")]
FlipOpt = Annotated[bool, typer.Option("--flip/--no-flip", help="Average each embedding with the mirrored face's (default; twice the embedding cost).")]
EnrollOpt = Annotated[Optional[str], typer.Option("--enroll-db", help="Also enrol the largest face of every labelled image into this gallery (labels: manifest 'label' column or --label-from-folder).")]
LabelOpt = Annotated[bool, typer.Option("--label-from-folder", help="Label each image with its sub-folder under INPUT (INPUT/<label>/*.jpg).")]
MergeOpt = Annotated[bool, typer.Option("--merge/--no-merge", help="Merge the part files into larger ones when every input is done.")]


def _run(task: str, input: str, output: Path, engine: str, address, workers, chunk_size, opts, enroll_db, label_from_folder, merge, quiet, as_json, limit=None) -> None:
    from ..batch.engine import ENGINES, run_batch

    if engine not in ENGINES:
        fail(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    try:
        s = run_batch(
            task, input, output, engine=engine, workers=workers, address=address, options=opts, chunk_size=chunk_size,
            label_from_folder=label_from_folder, enroll_db=enroll_db, merge=merge, progress=not quiet and not as_json, limit=limit,
        )  # fmt: skip
    except KeyboardInterrupt:
        fail(f"interrupted: the finished chunks are in {output}; run the same command again to resume", 130)
    if as_json:
        print_json(s.to_dict())
        return
    if s.pending == 0:
        typer.echo(f"nothing to do: all {s.skipped} inputs are already in {output}")
        return
    line = f"{s.processed} images ({s.faces} faces, {s.no_face} without a face, {s.errors} errors) in {s.elapsed_s:.1f} s: {s.images_per_s:.2f} images/s"
    line += f" on {s.workers} {engine} worker{'s' if s.workers != 1 else ''}"
    if s.skipped:
        line += f"; {s.skipped} already done"
    if enroll_db:
        line += f"; {s.enrolled} faces enrolled"
    typer.echo(line + f" -> {output}")
    if s.errors:
        codes = ", ".join(f"{k} {v}" for k, v in sorted(s.error_codes.items()))
        err(f"{s.errors} images could not be processed ({codes}): see the rows whose 'error' is set")


@batch_app.command("embed")
@guard
def batch_embed(
    input: InputArg,
    output: OutputOpt,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workers: BatchWorkersOpt = None,
    chunk_size: ChunkOpt = 16,
    model: EmbedderOpt = "dlib",
    flip: FlipOpt = True,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    enroll_db: EnrollOpt = None,
    label_from_folder: LabelOpt = False,
    merge: MergeOpt = True,
    limit: LimitOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Boxes and embeddings of every face."""
    from ..batch.engine import BatchOptions

    opts = BatchOptions(detector=detector, min_face=min_face, rotate=rotate_value(rotate), flip=flip, model=model, landmarks=None, actions=())
    _run("embed", input, output, engine, address, workers, chunk_size, opts, enroll_db, label_from_folder, merge, quiet, as_json, limit)


@batch_app.command("analyze")
@guard
def batch_analyze(
    input: InputArg,
    output: OutputOpt,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workers: BatchWorkersOpt = None,
    chunk_size: ChunkOpt = 16,
    actions: Annotated[str, typer.Option("--actions", "-a", help="Attributes per face: age,gender,emotion,ethnicity, all, or none.")] = "all",
    landmarks: Annotated[str, typer.Option("--landmarks", help="dlib68, dlib5, cnn68 ... or none.")] = "dlib68",
    quality: Annotated[bool, typer.Option("--quality", help="Add a face quality score per row (column quality, 0-1).")] = False,
    model: EmbedderOpt = "dlib",
    flip: FlipOpt = True,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    enroll_db: EnrollOpt = None,
    label_from_folder: LabelOpt = False,
    merge: MergeOpt = True,
    limit: LimitOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Everything for every face: box, landmarks, embedding, attributes."""
    from ..batch.engine import BatchOptions

    acts = () if actions.strip().lower() == "none" else tuple(a for a in actions.split(",") if a.strip())
    lm = None if landmarks.lower() == "none" else landmarks
    opts = BatchOptions(detector=detector, min_face=min_face, rotate=rotate_value(rotate), flip=flip, model=model, landmarks=lm, actions=acts, quality=quality)
    _run("analyze", input, output, engine, address, workers, chunk_size, opts, enroll_db, label_from_folder, merge, quiet, as_json, limit)


@batch_app.command("identify")
@guard
def batch_identify(
    input: InputArg,
    output: OutputOpt,
    db: DbOpt = None,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workers: BatchWorkersOpt = None,
    chunk_size: ChunkOpt = 16,
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Distance above which a face is unknown (default: the gallery's calibrated one).")] = None,
    match: Annotated[str, typer.Option("--match", help="nearest or centroid.")] = "nearest",
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Candidates kept per face.")] = 3,
    flip: FlipOpt = True,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    merge: MergeOpt = True,
    limit: LimitOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Name every face against a gallery (--db): identity, distance, candidates; 'unknown' faces can then be clustered."""
    from ..gallery import default_db
    from ..batch.engine import BatchOptions

    opts = BatchOptions(detector=detector, min_face=min_face, rotate=rotate_value(rotate), flip=flip, landmarks=None, actions=(), db=db or default_db(), threshold=threshold, match=match, top_k=top_k)
    _run("identify", input, output, engine, address, workers, chunk_size, opts, None, False, merge, quiet, as_json, limit)


@guard
def cluster(
    source: Annotated[Path, typer.Argument(help="A batch output folder (or Parquet file) with embeddings.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for clusters.parquet, names.csv, sheets/ and index.html.")] = Path("clusters"),
    method: Annotated[str, typer.Option("--method", help="cw (Chinese whispers), dbscan or hdbscan.")] = "cw",
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Linking distance (default: measured on LFW for the model's metric).")] = None,
    min_size: Annotated[int, typer.Option("--min-size", min=1, help="Smallest cluster kept; smaller groups stay unclustered.")] = 2,
    neighbors: Annotated[int, typer.Option("--neighbors", min=1, help="cw: link faces that are among each other's N nearest.")] = 5,
    all_faces: Annotated[bool, typer.Option("--all", help="Cluster every face, not only those a gallery did not name.")] = False,
    sheets: Annotated[bool, typer.Option("--sheets/--no-sheets", help="Write a contact sheet per cluster.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Group unknown faces into people: a contact sheet per cluster, names.csv to fill in, then 'facelab cluster-enroll'."""
    from ..batch.cluster import cluster_output

    res = cluster_output(source, out, method=method, threshold=threshold, min_size=min_size, neighbors=neighbors, unknown_only=not all_faces, sheets=sheets)
    if as_json:
        print_json(res.to_dict())
        return
    biggest = ", ".join(f"#{k}: {v}" for k, v in list(res.sizes.items())[:8])
    typer.echo(f"{res.faces} faces -> {res.clusters} clusters ({biggest}{', ...' if res.clusters > 8 else ''}); {res.unclustered} in no cluster")
    typer.echo(f"look at {out / 'index.html'}, name clusters in {out / 'names.csv'} (or --name ID=NAME), then: facelab cluster-enroll {out} --db GALLERY")


@guard
def cluster_enroll(
    folder: Annotated[Path, typer.Argument(help="A folder written by 'facelab cluster'.")],
    db: DbOpt = None,
    name: Annotated[Optional[list[str]], typer.Option("--name", "-n", help="ID=NAME (repeatable); adds to / overrides names.csv. Clusters with one name merge.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Name clusters and enrol all their faces into a gallery, in one step."""
    from ..batch.cluster import enroll_clusters, parse_names

    report = enroll_clusters(folder, db, parse_names(name or []))
    if as_json:
        print_json(report)
        return
    for person, d in report.items():
        typer.echo(f"{person}: {d.get('added', 0)} faces enrolled, {d.get('duplicate', 0)} already there, {d.get('conflict', 0)} refused (enrolled as someone else)")
    if any(d.get("conflict") for d in report.values()):
        raise typer.Exit(EXIT_BAD_INPUT)


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")
    app.command("cluster")(cluster)
    app.command("cluster-enroll")(cluster_enroll)
