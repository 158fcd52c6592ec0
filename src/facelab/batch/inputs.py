"""What a batch job reads: a folder, a glob pattern, or a manifest of paths or URLs.

Manifests:

* ``.csv`` / ``.tsv`` with a header: the image column is the first of
  ``source, path, url, image, file, filename`` (else the only column); an
  optional ``label`` (or ``name``, ``person``) column is carried into the rows;
* ``.json``: a list of strings or of objects with those keys; ``.jsonl``: one per line;
* ``.parquet``: the same columns (read in batches, never whole);
* ``.txt`` / ``.lst``: one path or URL per line (``#`` comments).

Relative paths in a manifest are relative to the manifest's folder; empty entries are skipped.  Inputs are
streamed: nothing holds the whole list (except a JSON manifest, parsed whole).
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import is_url, iter_image_paths, looks_like_image

SOURCE_KEYS = ("source", "path", "url", "image", "file", "filename")
LABEL_KEYS = ("label", "name", "person")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet", ".txt", ".lst")


@dataclass(frozen=True)
class Item:
    """One image to process and its optional label (a person's name, for enrolment and evaluation)."""

    source: str
    label: str | None = None


@dataclass
class InputSpec:
    """A batch input (see the module docstring); iterate it for :class:`Item` objects, as often as needed."""

    spec: str
    label_from_folder: bool = False
    limit: int | None = None  # only the first N items

    def __post_init__(self) -> None:
        self.spec = os.fspath(self.spec)
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be at least 1, not {self.limit}", source=self.spec)
        s = self.spec
        if is_url(s):
            self.kind = "url"
        elif os.path.isdir(s):
            self.kind = "folder"
        elif os.path.isfile(s) and Path(s).suffix.lower() in MANIFEST_SUFFIXES:
            self.kind = "manifest"
        elif os.path.isfile(s):
            self.kind = "file"
        elif glob.has_magic(s):
            self.kind = "glob"
        else:
            raise InputError("no such folder, file or manifest, and not a glob pattern", source=s)
        if self.label_from_folder and self.kind != "folder":
            raise InputError("labels from sub-folder names need a folder input (INPUT/<label>/*.jpg)", source=s)

    def __iter__(self) -> Iterator[Item]:
        for i, item in enumerate(self._items()):
            if self.limit is not None and i >= self.limit:
                return
            yield item

    def _items(self) -> Iterator[Item]:
        if self.kind in ("url", "file"):
            yield Item(self.spec)
        elif self.kind == "folder":
            root = Path(self.spec)
            for p in iter_image_paths(root):
                label = None
                if self.label_from_folder:
                    rel = Path(p).relative_to(root).parts
                    label = rel[0] if len(rel) > 1 else None
                yield Item(p, label)
        elif self.kind == "glob":
            for p in sorted(glob.iglob(self.spec, recursive=True)):
                if os.path.isfile(p) and looks_like_image(p):
                    yield Item(p)
        else:
            yield from _manifest(Path(self.spec))

    def count(self) -> int:
        return sum(1 for _ in self)


def _missing(v: Any) -> bool:
    """None, NaN (pandas' missing value) or an empty string."""
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""


def _item(value: Any, label: Any, base: Path) -> Item | None:
    """The item of a manifest entry (``None`` for an empty entry, which is skipped)."""
    if _missing(value):
        return None
    s = str(value).strip()
    if not is_url(s) and not os.path.isabs(s):
        s = os.path.normpath(os.path.join(base, s)) if str(base) not in ("", ".") else s
    lab = None if _missing(label) else str(label)
    return Item(s, lab)


def _pick(keys: list[str], manifest: Path) -> tuple[str, str | None]:
    low = {k.lower().strip(): k for k in keys}
    src = next((low[k] for k in SOURCE_KEYS if k in low), None)
    if src is None:
        if len(keys) == 1:
            src = keys[0]
        else:
            raise InputError(f"no image column: expected one of {', '.join(SOURCE_KEYS)} (columns: {', '.join(keys)})", source=str(manifest))
    lab = next((low[k] for k in LABEL_KEYS if k in low), None)
    return src, lab


def _manifest(path: Path) -> Iterator[Item]:
    base = path.parent
    suffix = path.suffix.lower()
    try:
        if suffix in (".txt", ".lst"):
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    line = line.strip()
                    if line and not line.startswith("#"):
                        yield from _some(_item(line, None, base))
        elif suffix in (".csv", ".tsv"):
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
                if not reader.fieldnames:
                    raise InputError("empty manifest (a CSV header is needed)", source=str(path))
                src, lab = _pick(list(reader.fieldnames), path)
                for row in reader:
                    yield from _some(_item(row.get(src), row.get(lab) if lab else None, base))
        elif suffix in (".jsonl", ".ndjson"):
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        yield from _some(_json_item(json.loads(line), base, f"{path}:{n}", path))
        elif suffix == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict):  # {"images": [...]} or similar: the first list value
                doc = next((v for v in doc.values() if isinstance(v, list)), None)
            if not isinstance(doc, list):
                raise InputError("a JSON manifest is a list of paths or of objects with a 'source'/'path'/'url' key", source=str(path))
            for n, entry in enumerate(doc):
                yield from _some(_json_item(entry, base, f"{path}[{n}]", path))
        elif suffix == ".parquet":
            yield from _parquet(path, base)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the manifest ({e})", source=str(path)) from None
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON ({e})", source=str(path)) from None


def _some(item: Item | None) -> Iterator[Item]:
    if item is not None:
        yield item


def _json_item(entry: Any, base: Path, where: str, path: Path) -> Item | None:
    if isinstance(entry, str):
        return _item(entry, None, base)
    if isinstance(entry, dict):
        src, lab = _pick(list(entry), path)
        return _item(entry.get(src), entry.get(lab) if lab else None, base)
    raise InputError(f"{where}: expected a path or an object, got {type(entry).__name__}")


def _parquet(path: Path, base: Path) -> Iterator[Item]:
    from .table import _pa

    _, pq = _pa()
    try:
        f = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise InputError(f"not a Parquet file ({e})", source=str(path)) from None
    src, lab = _pick(f.schema_arrow.names, path)
    cols = [src] + ([lab] if lab else [])
    for batch in f.iter_batches(batch_size=4096, columns=cols):
        d = batch.to_pydict()
        for i, v in enumerate(d[src]):
            yield from _some(_item(v, d[lab][i] if lab else None, base))


__all__ = ["LABEL_KEYS", "SOURCE_KEYS", "InputSpec", "Item"]
