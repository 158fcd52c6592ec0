"""Video sources (file, webcam index, RTSP/HTTP URL) and annotated-video output, through OpenCV."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import VideoError

#: Frame rate assumed when a source does not say (many webcams and streams).
DEFAULT_FPS = 25.0
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")


@dataclass
class VideoInfo:
    source: str
    kind: str  # "file", "webcam" or "stream"
    width: int
    height: int
    fps: float
    frames: int | None  # known for files only

    @property
    def live(self) -> bool:
        return self.kind != "file"


class VideoSource:
    """Frames (RGB uint8) of a video file, a webcam (``"0"``, ``"1"``...) or a stream URL.

    >>> with VideoSource("clip.mp4") as src:
    ...     for index, frame in src: ...
    """

    def __init__(self, source: str | int | os.PathLike[str], *, open_timeout: float = 10.0):
        self.name = os.fspath(source) if not isinstance(source, int) else str(source)
        s = self.name.strip()
        if s.isdigit():
            self.kind = "webcam"
            self._cap = cv2.VideoCapture(int(s))
        elif "://" in s[:12]:
            scheme = s.split("://", 1)[0].lower()
            if scheme not in STREAM_SCHEMES:
                raise VideoError(f"unsupported stream scheme {scheme!r} (use {', '.join(STREAM_SCHEMES)})", source=s)
            self.kind = "stream"
            ms = int(open_timeout * 1000)
            self._cap = cv2.VideoCapture(s, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            p = Path(s)
            if not p.exists():
                raise VideoError("no such file", source=s)
            if p.is_dir():
                raise VideoError("is a folder, not a video", source=s)
            self.kind = "file"
            self._cap = cv2.VideoCapture(str(p))
        if not self._cap.isOpened():
            why = {"webcam": "no such camera, or it is busy", "stream": "cannot connect, or the stream is not a video OpenCV reads"}.get(
                self.kind, "not a video OpenCV can read (format or codec)"
            )
            self._cap.release()
            raise VideoError(why, source=s)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.info = VideoInfo(
            self.name,
            self.kind,
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps if math.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS,
            n if self.kind == "file" and n > 0 else None,
        )

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        i = 0
        while True:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                if i == 0:
                    raise VideoError("no frame could be read (empty or damaged video)", source=self.name)
                return
            yield i, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            i += 1

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """An MP4 (``mp4v``) written frame by frame from RGB arrays."""

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int]):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise VideoError(f"cannot create the output folder ({e.strerror or e})", source=str(self.path)) from None
        self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (int(size[0]), int(size[1])))
        if not self._w.isOpened():
            raise VideoError("OpenCV cannot write an MP4 video here", source=str(self.path))

    def write(self, rgb: np.ndarray) -> None:
        self._w.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._w.release()


def write_video(path: str | os.PathLike[str], frames, fps: float = 15.0) -> Path:
    """Write RGB frames (an iterable of equal-sized arrays) as an MP4; returns the path."""
    writer = None
    try:
        for f in frames:
            if writer is None:
                writer = VideoWriter(path, fps, (f.shape[1], f.shape[0]))
            writer.write(f)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise VideoError("no frames to write", source=os.fspath(path))
    return Path(path)


class Display:
    """A window showing frames live (``--show``); needs a display and an OpenCV built with GUI support."""

    def __init__(self, title: str = "facelab"):
        self.title = title
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt"):
            raise VideoError("--show needs a display (no $DISPLAY or $WAYLAND_DISPLAY here); write --out video.mp4 instead")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise VideoError(
                "--show needs OpenCV with GUI support: this is opencv-python-headless "
                "(pip install opencv-python instead), or write --out video.mp4"
            ) from None

    def show(self, rgb: np.ndarray) -> bool:
        """Show a frame; False when the user pressed q or Esc, or closed the window."""
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        return key not in (ord("q"), 27) and visible

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


__all__ = ["DEFAULT_FPS", "Display", "VideoInfo", "VideoSource", "VideoWriter", "write_video"]
