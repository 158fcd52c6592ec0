"""Faces in videos and live streams: detect every N frames, track, name and describe each person once per track.

>>> from facelab.video import stream
>>> res = stream("clip.mp4", every=2, gallery=Gallery("people.db"), actions=["age", "emotion"], out="annotated.mp4", jsonl="tracks.jsonl")
>>> [(t.id, t.name) for t in res.tracks], res.fps
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..embed import metric_of
from ..errors import VideoError
from ..pipeline import FaceAnalysis
from ..types import Face
from .source import Display, VideoInfo, VideoSource, VideoWriter
from .tracker import Track, Tracker

#: Smallest face looked for by default: webcam and video faces are large, and HOG is ~4x faster at its native 80 px.
DEFAULT_MIN_FACE = 80


@dataclass
class FrameResult:
    """One frame: its index, time, whether faces were detected on it, and the tracks drawn on it."""

    index: int
    time: float
    detected: bool
    tracks: list[Track]
    image: np.ndarray  # the annotated frame (RGB)


@dataclass
class StreamResult:
    """What a run over a video found, and how fast it went."""

    source: str
    frames: int  # frames read
    processed: int  # frames faces were detected on
    seconds: float  # wall time
    video_fps: float  # the source's frame rate
    every: int
    tracks: list[Track] = field(default_factory=list)
    out_video: str | None = None
    out_jsonl: str | None = None

    @property
    def fps(self) -> float:
        """Frames handled per second of wall time (decoding, detection, tracking, drawing, writing)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "frames": self.frames,
            "processed": self.processed,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "video_fps": round(self.video_fps, 3),
            "every": self.every,
            "tracks": [t.to_dict(self.video_fps) for t in self.tracks],
            "out_video": self.out_video,
            "out_jsonl": self.out_jsonl,
        }


def track_label(t: Track) -> str:
    from ..draw import default_label

    text = default_label(t.predicted_face(t.last_frame))
    return f"#{t.id} {text}".strip()


class StreamProcessor:
    """The per-frame work of :func:`stream`, usable on frames from anywhere (e.g. a server's websocket)."""

    def __init__(
        self,
        *,
        every: int = 1,
        detector: str = "hog",  # video faces are large: HOG at its native scale is the fastest (docs/stream.md)
        min_face: int = DEFAULT_MIN_FACE,
        rotate: Any = False,
        landmarks: str | None = "dlib68",
        embedder: str = "dlib",
        gallery: Any = None,
        actions: Sequence[str] = (),
        top_k: int = 3,
        max_age: int | None = None,
        min_hits: int = 1,
        fps: float = 25.0,
        anonymize: str | None = None,
        margin: float | None = None,
        keep_known: bool = False,
        only_known: bool = False,
        quality: bool = False,
    ):
        from ..attributes import parse_actions, prepare_models

        if every < 1:
            raise VideoError(f"--every must be at least 1, not {every}")
        self.every, self.top_k, self.fps = int(every), int(top_k), float(fps)
        self.gallery = gallery if gallery is not None and len(gallery) > 0 else None
        if self.gallery is not None:
            self.gallery.check_ready()  # a model mismatch fails now, not on the first face
        emb_spec = gallery.embedder_spec if gallery is not None else embedder
        flip = gallery.flip if gallery is not None else False
        self.actions = parse_actions(list(actions))
        if self.actions:
            prepare_models(self.actions)
        #: anonymising: cover every tracked face (``anonymize`` is the method) instead of drawing annotations;
        #: faces come from facelab.anonymize.find_faces (default detector, recall settings, rotation sweep)
        self.anonymize, self.keep_known, self.only_known = anonymize, bool(keep_known), bool(only_known)
        #: quality: score every detected face and keep each track's best shot (Track.best, "best_shot" in its JSON)
        self.quality = bool(quality)
        if anonymize is not None:
            from ..anonymize import DEFAULT_MARGIN, METHODS, choose

            if anonymize not in METHODS:
                raise VideoError(f"anonymize must be one of {', '.join(METHODS)}, not {anonymize!r}")
            choose([], keep_known=keep_known, only_known=only_known)  # the two exclude each other
            if (keep_known or only_known) and self.gallery is None:
                raise VideoError("keep_known/only_known need a gallery with people in it")
            self.margin = DEFAULT_MARGIN if margin is None else float(margin)
            landmarks = None
        self.pipeline = FaceAnalysis(
            detector=detector,
            landmarks=landmarks,
            embedder=emb_spec,
            rotate=rotate,
            flip=flip,
            detector_options={"min_face": int(min_face)},
        ).prepare()
        from ..embed import get_embedder

        model = get_embedder(emb_spec).name
        age = max_age if max_age is not None else max(2 * self.every, int(round(self.fps)))  # about a second unseen
        self.tracker = Tracker(max_age=age, min_hits=min_hits, metric=metric_of(model))
        self.processed = 0

    def process(self, index: int, frame: np.ndarray) -> FrameResult:
        """Detect (on every ``every``-th frame), track, name/describe tracks when due, and draw."""
        from ..draw import draw_faces

        detected = index % self.every == 0
        if detected:
            faces = self._find(frame) if self.anonymize is not None else self.pipeline.get(frame)
            if self.quality and faces:
                from ..quality import assess_faces

                assess_faces(frame, faces)
            seen = self.tracker.update(faces, index)
            if self.quality:
                for t in seen:
                    if t.last_frame == index:
                        t.consider(t.face, index)
            self.processed += 1
            for t in seen:
                if t.due():
                    self._describe(t, frame)
        else:
            seen = self.tracker.visible(index, self.every)
        if self.anonymize is not None:  # also cover tracks the detector missed on this frame (up to ~1/3 s)
            ids = {t.id for t in seen}
            seen = list(seen) + [t for t in self.tracker.visible(index, max(self.every, int(self.fps / 3))) if t.id not in ids]
        drawn = [t.predicted_face(index) for t in seen]
        if self.anonymize is not None:
            return FrameResult(index, index / self.fps, detected, list(seen), self._cover(frame, seen, drawn))
        image = draw_faces(frame, drawn, labels=[track_label(t) for t in seen])
        return FrameResult(index, index / self.fps, detected, list(seen), image)

    def _find(self, frame: np.ndarray) -> list[Face]:
        from ..anonymize import find_faces

        faces = find_faces(frame)
        if self.gallery is not None and faces:
            from ..embed import embed

            embed(frame, faces, self.pipeline.embedder, flip=self.pipeline.flip)
        return faces

    def _cover(self, frame: np.ndarray, tracks: list[Track], faces: list[Face]) -> np.ndarray:
        """The frame with the tracked faces covered (known people kept or covered as asked)."""
        from ..anonymize import choose, cover, region_of

        for t, f in zip(tracks, faces):
            f.identity = t.identity
        to_cover, kept = choose(faces, keep_known=self.keep_known, only_known=self.only_known)
        return cover(frame, [region_of(f, margin=self.margin, method=self.anonymize) for f in to_cover], keep=kept)

    def _describe(self, t: Track, frame: np.ndarray) -> None:
        """Identity from the track's mean embedding; attributes of its current face, averaged over the track."""
        if self.gallery is not None and t.embedding is not None:
            t.identity = self.gallery.identify_vectors(np.asarray(t.embedding, np.float32)[None], top_k=self.top_k)[0]
        if self.actions:
            from ..attributes import predict_faces

            face = Face(t.face.box, t.face.score, t.face.detector, t.face.rotation, landmarks=t.face.landmarks, embedding=t.face.embedding)
            predict_faces(frame, [face], self.actions)
            t.add_attributes(face.attributes)
        t.mark_updated()

    def finish(self) -> list[Track]:
        return self.tracker.finish()


def observation(fr: FrameResult, t: Track) -> dict[str, Any]:
    """One JSON-lines record: a track seen on a frame where faces were detected."""
    d: dict[str, Any] = {
        "type": "observation",
        "frame": fr.index,
        "time": round(fr.time, 3),
        "track": t.id,
        "box": t.face.box.to_dict(),
        "score": round(t.face.score, 4),
        "name": t.name,
    }
    if t.identity is not None:
        d["distance"] = round(t.identity.distance, 4)
    if t.attributes:
        d["attributes"] = {k: a.to_dict()["value"] for k, a in t.attributes.items()}
    return d


def stream(
    source: str | int | os.PathLike[str],
    *,
    every: int = 1,
    out: str | os.PathLike[str] | None = None,
    jsonl: str | os.PathLike[str] | None = None,
    show: bool = False,
    max_frames: int | None = None,
    on_frame: Callable[[FrameResult, VideoInfo], None] | None = None,
    **options: Any,
) -> StreamResult:
    """Run over a video file, webcam index or stream URL until it ends (or ``max_frames``, q in the window, Ctrl-C).

    ``options`` go to :class:`StreamProcessor` (``detector``, ``min_face``, ``gallery``,
    ``actions``, ``landmarks``...).  Writes the annotated MP4 to ``out`` and JSON lines
    (one ``observation`` per track per detected frame, then one ``track`` per
    track and a ``summary``) to ``jsonl``.
    """
    display = Display(f"facelab {source}") if show else None  # fail before opening anything
    with VideoSource(source) as src:
        info = src.info
        proc = StreamProcessor(every=every, fps=info.fps, **options)
        writer = VideoWriter(out, info.fps, (info.width, info.height)) if out is not None else None
        log = _open_jsonl(jsonl)
        frames = 0
        t0 = time.perf_counter()
        try:
            try:
                for index, frame in src:
                    if max_frames is not None and index >= max_frames:
                        break
                    fr = proc.process(index, frame)
                    frames += 1
                    if writer is not None:
                        writer.write(fr.image)
                    if log is not None and fr.detected:
                        for t in fr.tracks:
                            log.write(json.dumps(observation(fr, t)) + "\n")
                    if on_frame is not None:
                        on_frame(fr, info)
                    if display is not None and not display.show(fr.image):
                        break
            except KeyboardInterrupt:  # Ctrl-C ends a live stream: outputs are still completed
                pass
            seconds = time.perf_counter() - t0
            res = StreamResult(
                src.name,
                frames,
                proc.processed,
                seconds,
                info.fps,
                proc.every,
                proc.finish(),
                str(out) if out is not None else None,
                str(jsonl) if jsonl is not None else None,
            )
            if log is not None:
                for t in res.tracks:
                    log.write(json.dumps({"type": "track", **t.to_dict(info.fps)}) + "\n")
                summary = {k: v for k, v in res.to_dict().items() if k != "tracks"}
                log.write(json.dumps({"type": "summary", **summary}) + "\n")
        finally:
            for closing in (writer, display, log):
                if closing is not None:
                    closing.close()
    return res


def _open_jsonl(path: str | os.PathLike[str] | None):
    if path is None:
        return None
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        return open(p, "w")
    except OSError as e:
        raise VideoError(f"cannot write ({e.strerror or e})", source=str(p)) from None


__all__ = ["DEFAULT_MIN_FACE", "FrameResult", "StreamProcessor", "StreamResult", "observation", "stream", "track_label"]
