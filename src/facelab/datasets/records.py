"""What a dataset build records per raw image, and where its per-image cache files live (used by build and contact sheets)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from typing import Any

CACHE = ".facelab-cache"
STATUS_COLORS = {"kept": (40, 170, 60), "review": (245, 150, 20), "rejected": (210, 40, 40)}


@dataclass
class ImageRecord:
    """What happened to one raw image."""

    source: str  # path relative to the raw folder
    person: str
    status: str = "rejected"  # kept | review | rejected
    reason: str = ""  # unreadable | no_face | too_small | blurry | duplicate | near_duplicate | outlier
    detail: str = ""
    faces_found: int = 0
    rule: str = ""  # which face was kept: "only face", "largest of 3", "most central of 2"
    rotation: float = 0.0
    box: dict[str, float] | None = None
    face_px: float = 0.0
    sharpness: float | None = None
    phash: str | None = None
    sha256: str = ""
    outlier_distance: float | None = None
    duplicate_of: str | None = None
    split: str | None = None
    file: str | None = None  # output path relative to the output folder
    chip: str | None = None  # cached chip, relative to the output folder
    embedding: list[float] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("embedding")
        d.pop("chip")
        return {k: v for k, v in d.items() if v not in (None, "")}


def cache_file(out: str, rel: str, kind: str, ext: str) -> str:
    """The cache file of kind ``kind`` (records, chips, thumbs) for the raw image ``rel`` of the build in ``out``."""
    return os.path.join(out, CACHE, kind, f"{hashlib.sha1(rel.encode('utf-8')).hexdigest()[:20]}.{ext}")


__all__ = ["CACHE", "STATUS_COLORS", "ImageRecord", "cache_file"]
