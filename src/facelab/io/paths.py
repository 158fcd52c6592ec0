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
    hidden files and folders are skipped.  Symbolic links to folders are followed
    (each real folder is listed once, so a link back up cannot loop).  A path that
    does not exist is yielded as is, so the loader reports it as missing.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    for item in inputs:
        s = os.fspath(item)
        if is_url(s):
            yield s
        elif os.path.isdir(s):
            yield from _folder_images(s, recursive)
        else:
            yield s


def _folder_images(folder: str, recursive: bool) -> Iterator[str]:
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link to a folder already listed (or to one of its parents)
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for fn in sorted(files):
            if fn.startswith("."):
                continue
            fp = os.path.join(root, fn)
            if os.path.isfile(fp) and looks_like_image(fp):
                yield fp
