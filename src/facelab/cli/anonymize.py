"""``facelab anonymize PHOTOS_OR_VIDEOS --out DIR``: cover every face (see :mod:`facelab.anonymize`).

Photos: ``DIR/<name>.<ext>`` (PNG stays PNG, the rest JPEG quality 95) and ``DIR/<name>.json``, the sidecar
listing what was covered.  Videos (.mp4 .avi .mov .mkv .webm .m4v): ``DIR/<name>.mp4`` at the source's frame
rate, every frame kept (no audio), and ``DIR/<name>.json`` with the tracks covered.
"""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DbOpt, EXIT_BAD_INPUT, QuietOpt, err, fail, guard

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class Method(str, Enum):
    blur = "blur"
    pixelate = "pixelate"
    solid = "solid"
    mask = "mask"


@guard
def anonymize_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Photos, folders of photos (searched recursively) or video files.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the anonymised files and their JSON sidecars.")],
    method: Annotated[Method, typer.Option("--method", help="blur, pixelate, solid (black) or mask (the face's mean colour).")] = Method.blur,
    margin: Annotated[Optional[float], typer.Option("--margin", min=0.0, max=2.0, help="Margin around each face box, a share of its size (default 0.3).")] = None,
    shape: Annotated[str, typer.Option("--shape", help="ellipse or rect (both turn with the face).")] = "ellipse",
    keep_known: Annotated[bool, typer.Option("--keep-known", help="Leave the gallery's people visible; cover everyone else.")] = False,
    only_known: Annotated[bool, typer.Option("--only-known", help="Cover only the gallery's people.")] = False,
    db: DbOpt = None,
    every: Annotated[int, typer.Option("--every", "-n", min=1, help="Videos: detect on every N-th frame (tracks cover the frames between).")] = 1,
    quiet: QuietOpt = False,
) -> None:
    """Cover every face of photos and videos (blur, pixelate, solid or mask), turned faces included."""
    from ..anonymize import DEFAULT_MARGIN, SHAPES, anonymize
    from ..errors import InputError
    from ..io import iter_image_paths, load_image

    if keep_known and only_known:
        fail("--keep-known and --only-known exclude each other")
    if shape not in SHAPES:
        fail(f"--shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    margin = DEFAULT_MARGIN if margin is None else margin
    gallery = None
    if keep_known or only_known:
        from .stream import _gallery

        gallery = _gallery(db)
        if gallery is None or len(gallery) == 0:
            fail("--keep-known/--only-known need a gallery with people in it (--db, or enrol people with `facelab enroll`)")
    out.mkdir(parents=True, exist_ok=True)
    bad = 0
    videos = [s for s in inputs if s.lower().endswith(VIDEO_EXTENSIONS)]
    photos = [s for s in inputs if s not in videos]
    try:
        for src in iter_image_paths(photos) if photos else ():
            try:
                res = anonymize(load_image(src), method=method.value, margin=margin, shape=shape, gallery=gallery, keep_known=keep_known, only_known=only_known)
            except InputError as e:
                err(str(e))
                bad += 1
                continue
            res.source = src
            dest = _dest(out, src, ".png" if src.lower().endswith(".png") else ".jpg")
            from ..draw import save_image

            save_image(res.image, dest, quality=95)
            dest.with_suffix(".json").write_text(json.dumps(res.to_dict(), indent=2) + "\n")
            if not quiet:
                typer.echo(f"{src}: {len(res.covered)} covered, {len(res.kept)} kept -> {dest}")
        for src in videos:
            from ..video.stream import stream

            dest = _dest(out, src, ".mp4")
            res = stream(src, every=every, out=dest, anonymize=method.value, margin=margin, gallery=gallery, keep_known=keep_known, only_known=only_known)
            side = res.to_dict()
            side.update(method=method.value, margin=margin)
            dest.with_suffix(".json").write_text(json.dumps(side, indent=2) + "\n")
            if not quiet:
                typer.echo(f"{src}: {res.frames} frames, {len(res.tracks)} faces tracked and covered, {res.fps:.1f} frames/s -> {dest}")
    finally:
        if gallery is not None:
            gallery.close()
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


def _dest(out: Path, src: str, ext: str) -> Path:
    return out / (Path(os.path.basename(src.rstrip("/"))).stem + ext)


def register(app: typer.Typer) -> None:
    app.command("anonymize")(anonymize_cmd)


__all__ = ["anonymize_cmd", "register"]
