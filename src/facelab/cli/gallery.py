"""Gallery commands (:mod:`facelab.gallery`): ``enroll``, ``enroll-dir``, ``identify`` and ``gallery list|show|rename|remove|export|import|info``.

The gallery is ``--db`` (a path, ``sqlite:///path`` or ``postgresql://...``),
else ``$FACELAB_DB``, else ``$FACELAB_HOME/gallery.db`` (``~/.facelab``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..pipeline import IdentifyJob
from ..types import Face
from .common import (
    DEFAULT_DETECTOR,
    DEFAULT_MIN_FACE,
    DEFAULT_ROTATE,
    EXIT_BAD_INPUT,
    EXIT_NO_FACE,
    DbOpt,
    DetectorOpt,
    JsonOpt,
    LimitOpt,
    MinFaceOpt,
    OutOpt,
    Paths,
    QuietOpt,
    RotateOpt,
    WorkersOpt,
    err,
    fail,
    guard,
    make_pipeline,
    new_table,
    print_json,
    print_table,
    progress_bar,
    rotate_value,
    run_images,
)
ModelOpt = Annotated[
    Optional[str], typer.Option("--embedder", "--model", "-m", help="Embedder: dlib or an .onnx file (default: the gallery's own, dlib for a new gallery).")
]
FallbackOpt = Annotated[bool, typer.Option("--whole-image", help="Use the whole image when no face is found (pre-cropped face datasets).")]

gallery_app = typer.Typer(help="Manage the gallery of enrolled people: list, show, rename, remove, export, import, info.", no_args_is_help=True)


def _open(db: str | None, **kw):
    from ..gallery import open_gallery

    return open_gallery(db, **kw)


def _print_enroll(res) -> None:
    if res.status == "added":
        if res.note:
            err(f"{res.source}: {res.note}")
    elif res.status == "duplicate":
        err(f"{res.source}: already enrolled as {res.person!r} (skipped)")
    else:
        err(f"{res.source}: {res.note} (skipped)")


def _enroll_summary(results, as_json: bool) -> None:
    if as_json:
        print_json(results)
        return
    per: dict[str, dict[str, int]] = {}
    for r in results:
        d = per.setdefault(r.person, {"added": 0, "duplicate": 0, "no_face": 0, "conflict": 0, "error": 0})
        d[r.status] = d.get(r.status, 0) + 1
    t = new_table("person", "added", "already there", "no face", "refused/bad", "low quality")
    for name, d in per.items():
        t.add_row(
            name, str(d["added"]), str(d["duplicate"]), str(d["no_face"]), str(d["conflict"] + d["error"]), str(d.get("low_quality", 0) + d.get("not_best", 0))
        )
    print_table(t)


@guard
def enroll(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    images: Annotated[list[str], typer.Argument(help="Images of this person (the largest face of each is enrolled).")],
    db: DbOpt = None,
    model: ModelOpt = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    whole_image: FallbackOpt = False,
    as_json: JsonOpt = False,
    min_quality: Annotated[
        Optional[float], typer.Option("--min-quality", min=0.0, max=1.0, help="Refuse faces whose quality score (0-1, facelab.quality) is lower.")
    ] = None,
    best: Annotated[Optional[int], typer.Option("--best", min=1, help="Enrol only the N images whose faces have the highest quality.")] = None,
) -> None:
    """Enrol a person from one or more images (idempotent: images already enrolled are skipped).

    Exit 2 if an image is unreadable or already enrolled as someone else, 1 if one has no face.
    """
    with _open(db, model=model, detector=detector, rotate=rotate_value(rotate), min_face=min_face) as g:
        results = g.enroll(
            name, images, fallback=whole_image, on_result=_print_enroll if not as_json else None, min_quality=min_quality, best=best
        )
        _enroll_summary(results, as_json)
    if any(r.status in ("error", "conflict") for r in results):
        raise typer.Exit(EXIT_BAD_INPUT)
    if any(r.status == "no_face" for r in results):
        raise typer.Exit(EXIT_NO_FACE)


@guard
def enroll_dir(
    folder: Annotated[Path, typer.Argument(help="A folder with one sub-folder of images per person (DIR/<name>/*.jpg).")],
    db: DbOpt = None,
    model: ModelOpt = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    whole_image: FallbackOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Enrol everyone in a folder: DIR/<name>/*.jpg (one transaction per batch; re-running skips what is there)."""
    from ..gallery import known_people_from_folder

    if not folder.is_dir():
        fail(f"{folder}: not a folder (expected one sub-folder per person)")
    total = len(known_people_from_folder(folder))
    if not total:
        fail(f"{folder}: no images found (expected DIR/<name>/*.jpg)")
    with _open(db, model=model, detector=detector, rotate=rotate_value(rotate), min_face=min_face) as g:
        if quiet or as_json:
            results = g.enroll_dir(folder, fallback=whole_image, on_result=None if as_json else _print_enroll)
        else:
            with progress_bar() as p:
                task = p.add_task("enrolling", total=total)

                def on_result(res) -> None:
                    _print_enroll(res)
                    p.advance(task)

                results = g.enroll_dir(folder, fallback=whole_image, on_result=on_result)
        _enroll_summary(results, as_json)
    if not any(r.ok for r in results):
        raise typer.Exit(EXIT_NO_FACE if all(r.status == "no_face" for r in results) else EXIT_BAD_INPUT)


@guard
def identify(
    paths: Paths,
    db: DbOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Candidates listed per face.")] = 3,
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Distance above which a face is unknown (default: calibrated for the model and --match).")] = None,
    match: Annotated[str, typer.Option("--match", help="nearest (closest enrolled embedding) or centroid (mean of a person's embeddings).")] = "nearest",
    search: Annotated[str, typer.Option("--search", help="auto, exact, faiss or pgvector.")] = "auto",
    model: ModelOpt = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
) -> None:
    """Who is in these photos?  Every face: a name or 'unknown', its distance, the top-k candidates."""
    g = _open(db, model=model, threshold=threshold, match=match, search=search, top_k=top_k, detector=detector, rotate=rotate_value(rotate), min_face=min_face)
    with g:
        g.check_ready()  # an empty gallery or another model fails here, before any image work
        job = IdentifyJob(make_pipeline(detector, rotate, min_face, None, g.embedder_spec), g)
        if g.search_kind() == "faiss":
            g.refresh()  # build/update the saved index once, before workers load it

        def extra(f: Face) -> str:
            if f.identity is None:
                return ""
            ident = f.identity
            others = ", ".join(f"{c.name} {c.distance:.2f}" for c in ident.candidates[1 if ident.known else 0 :])
            return f" [bold]{ident.name}[/bold] ({ident.distance:.2f})" + (f"  {'next' if ident.known else 'closest'}: {others}" if others else "")

        run_images(paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, limit=limit, extra=extra)


@gallery_app.command("list")
@guard
def gallery_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Everyone enrolled, with their number of embeddings."""
    with _open(db) as g:
        people = g.people()
        if as_json:
            print_json(people)
            return
        if not people:
            typer.echo(f"{g.store.display}: nobody enrolled yet")
            return
        for p in people:
            typer.echo(f"{p.name}\t{p.count}")


@gallery_app.command("show")
@guard
def gallery_show(name: Annotated[str, typer.Argument(help="A person's name.")], db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """One person: their embeddings, where each came from, when."""
    with _open(db) as g:
        p = g.person(name)
        embs = g.embeddings(name)
        if as_json:
            print_json({**p.to_dict(), "embeddings": [e.to_dict() for e in embs]})
            return
        typer.echo(f"{p.name}: {p.count} embedding(s), enrolled {p.created}")
        for e in embs:
            extra = f" ({e.n_faces} faces, largest used)" if e.n_faces and e.n_faces > 1 else ""
            typer.echo(f"  #{e.id}  {e.source or '-'}{extra}  {e.created}")


@gallery_app.command("rename")
@guard
def gallery_rename(old: Annotated[str, typer.Argument()], new: Annotated[str, typer.Argument()], db: DbOpt = None) -> None:
    """Rename a person."""
    with _open(db) as g:
        g.rename(old, new)
    typer.echo(f"renamed {old!r} to {new!r}")


@gallery_app.command("remove")
@guard
def gallery_remove(
    name: Annotated[str, typer.Argument()],
    db: DbOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a person and all their embeddings."""
    with _open(db) as g:
        p = g.person(name)
        if not yes and sys.stdin.isatty():
            typer.confirm(f"remove {p.name!r} and {p.count} embedding(s)?", abort=True)
        n = g.remove(name)
    typer.echo(f"removed {name!r} ({n} embedding(s))")


@gallery_app.command("export")
@guard
def gallery_export(file: Annotated[Path, typer.Argument(help="JSON file to write.")], db: DbOpt = None) -> None:
    """Write the whole gallery to a portable JSON file."""
    with _open(db) as g:
        n = g.export(file)
    typer.echo(f"exported {n['people']} people, {n['embeddings']} embeddings to {file}")


@gallery_app.command("import")
@guard
def gallery_import(file: Annotated[Path, typer.Argument(help="A file written by 'facelab gallery export'.")], db: DbOpt = None) -> None:
    """Add the people of an export file (embeddings already present are skipped)."""
    with _open(db) as g:
        n = g.import_(file)
    typer.echo(f"imported {n['people']} people: {n['added']} embeddings added, {n['duplicate']} already there, {n['conflict']} refused (enrolled as someone else)")
    if n["conflict"]:
        raise typer.Exit(EXIT_BAD_INPUT)


@gallery_app.command("info")
@guard
def gallery_info(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Where the gallery is, its schema, model, size, search method and threshold."""
    with _open(db) as g:
        info = g.info()
    if as_json:
        print_json(info)
    else:
        for k, v in info.items():
            typer.echo(f"{k}: {v}")


def register(app: typer.Typer) -> None:
    app.command("enroll")(enroll)
    app.command("enroll-dir")(enroll_dir)
    app.command("identify")(identify)
    app.add_typer(gallery_app, name="gallery")
