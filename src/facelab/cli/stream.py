"""``facelab stream SOURCE``: faces in a video file, webcam or stream, tracked, named and described per person."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..video.stream import DEFAULT_MIN_FACE as STREAM_MIN_FACE
from .common import (
    DEFAULT_DETECTOR,
    DEFAULT_ROTATE,
    DbOpt,
    DetectorOpt,
    JsonOpt,
    MinFaceOpt,
    QuietOpt,
    RotateOpt,
    guard,
    new_table,
    print_json,
    print_table,
    progress_bar,
    rotate_value,
)


@guard
def stream_cmd(
    source: Annotated[str, typer.Argument(help="A video file, a webcam index (0, 1...) or an rtsp:// / http(s):// stream URL.")],
    every: Annotated[
        int, typer.Option("--every", "-n", min=1, help="Detect faces on every N-th frame (tracks carry the boxes between).")
    ] = 1,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the annotated video (MP4) here.")] = None,
    jsonl: Annotated[
        Optional[Path], typer.Option("--jsonl", help="Write JSON lines here: observations per detected frame, then one line per track.")
    ] = None,
    db: DbOpt = None,
    identify: Annotated[bool, typer.Option("--identify/--no-identify", help="Name each track from the gallery.")] = True,
    actions: Annotated[
        Optional[str], typer.Option("--actions", "-a", help="Attributes per track: age,gender,emotion,ethnicity (or all).")
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Show the annotated frames live in a window (needs a display and OpenCV with GUI).")
    ] = False,
    max_frames: Annotated[
        Optional[int], typer.Option("--max-frames", min=1, help="Stop after this many frames (live sources run until Ctrl-C otherwise).")
    ] = None,
    landmarks: Annotated[str, typer.Option("--landmarks", help="Landmarks drawn: dlib68, dlib5, cnn68, simple15, or none.")] = "dlib68",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    min_face: MinFaceOpt = STREAM_MIN_FACE,
    rotate: RotateOpt = DEFAULT_ROTATE,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Detect, track, identify and describe the faces of a video; report frames per second."""
    from ..video.stream import stream

    gallery = _gallery(db) if identify else None
    progress, on_frame = _progress(source, quiet)
    try:
        with progress:
            res = stream(
                source,
                every=every,
                out=out,
                jsonl=jsonl,
                show=show,
                max_frames=max_frames,
                on_frame=on_frame,
                detector=detector,
                min_face=min_face,
                rotate=rotate_value(rotate),
                landmarks=None if landmarks == "none" else landmarks,
                gallery=gallery,
                actions=(actions or "").split(",") if actions else (),
            )
    finally:
        if gallery is not None:
            gallery.close()
    if as_json:
        print_json(res)
        return
    _summary(res)


def _gallery(db: str | None):
    from ..gallery import open_gallery
    from ..gallery.store import default_db

    if db is None:
        db = default_db() if os.environ.get("FACELAB_DB") else None
        if db is None:
            from ..io import facelab_home

            p = facelab_home() / "gallery.db"
            if not p.exists():
                return None
            db = str(p)
    return open_gallery(db)


def _progress(source: str, quiet: bool):
    """A rich progress bar (frames, live frames/s) and the per-frame callback feeding it."""
    import contextlib
    import time

    if quiet:
        return contextlib.nullcontext(), None
    from rich.progress import TextColumn

    progress = progress_bar(TextColumn("{task.fields[fps]}"))
    state: dict = {"task": None, "t0": time.perf_counter()}

    def on_frame(fr, info) -> None:
        if state["task"] is None:
            state["task"] = progress.add_task(str(source)[-40:], total=info.frames, fps="")
        el = time.perf_counter() - state["t0"]
        progress.update(state["task"], completed=fr.index + 1, fps=f"{(fr.index + 1) / el:.1f} frames/s" if el > 0 else "")

    return progress, on_frame


def _summary(res) -> None:
    t = new_table("track", "seen (s)", "detections", "name", "distance", "attributes", left=("name", "attributes"))
    fps = res.video_fps
    for tr in res.tracks:
        attrs = ", ".join(f"{k} {a.value:.0f}" if isinstance(a.value, float) else f"{k} {a.value}" for k, a in tr.attributes.items())
        dist = f"{tr.identity.distance:.3f}" if tr.identity is not None else ""
        t.add_row(f"#{tr.id}", f"{tr.first_frame / fps:.2f}-{tr.last_frame / fps:.2f}", str(tr.hits), tr.name or "", dist, attrs)
    if res.tracks:
        print_table(t)
    else:
        typer.echo("no faces")
    typer.echo(f"{res.frames} frames in {res.seconds:.1f} s: {res.fps:.1f} frames/s (faces detected on {res.processed}, every {res.every})")
    for what, path in (("annotated video", res.out_video), ("tracks", res.out_jsonl)):
        if path:
            typer.echo(f"{what}: {path}")


def register(app: typer.Typer) -> None:
    app.command("stream")(stream_cmd)
