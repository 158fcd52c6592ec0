"""Expand paths and folders into the list of image files they hold."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .image import IMAGE_EXTENSIONS
from .url import is_url

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")


def facelab_home() -> Path:
    """``$FACELAB_HOME`` (default ``~/.facelab``): the gallery, caches, the server's data."""
    return Path(os.environ.get("FACELAB_HOME") or Path.home() / ".facelab")


def looks_like_image(path: str | os.PathLike[str]) -> bool:
    """True if the file has an image extension or starts with an image signature."""
    p = Path(path)
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def iter_image_paths(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, recursive: bool = True) -> Iterator[str]:
    """Yield image sources: files as given, URLs as given, folders expanded (sorted).

    Files inside folders are kept when they have an image extension or begin with
    an image signature (so extension-less files such as Yale's are found);
    hidden files and folders are skipped.  A path that does not exist is yielded
    as is, so the loader reports it as missing.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    for item in inputs:
        s = os.fspath(item)
        if is_url(s):
            yield s
            continue
        p = Path(s)
        if p.is_dir():
            walker = os.walk(p) if recursive else [(str(p), [], [e.name for e in os.scandir(p) if e.is_file()])]
            for root, dirs, files in walker:
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for fn in sorted(files):
                    if fn.startswith("."):
                        continue
                    fp = os.path.join(root, fn)
                    if looks_like_image(fp):
                        yield fp
        else:
            yield s
