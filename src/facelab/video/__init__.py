"""Faces in videos: files, webcams and RTSP/HTTP streams, with tracking.

* :func:`stream`: detect every N frames, track people (:class:`Tracker`: IoU plus
  embeddings, stable IDs), identify each track against a gallery and estimate its
  attributes a few times per track, write an annotated MP4 and JSON lines.
* :class:`VideoSource` / :class:`VideoWriter`: OpenCV input and output.
* :mod:`.synth`: test videos built from still photos.
"""

from __future__ import annotations

from .source import DEFAULT_FPS, Display, VideoInfo, VideoSource, VideoWriter, write_video
from .stream import DEFAULT_MIN_FACE, FrameResult, StreamProcessor, StreamResult, stream
from .tracker import Track, Tracker

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_MIN_FACE",
    "Display",
    "FrameResult",
    "StreamProcessor",
    "StreamResult",
    "Track",
    "Tracker",
    "VideoInfo",
    "VideoSource",
    "VideoWriter",
    "stream",
    "write_video",
]
