"""The rows a batch job writes, and the Parquet output folder that holds them.

One row per face; an image without a face, or one that could not be processed,
gets one row saying so (``face`` is null, ``n_faces`` 0 or null, ``error`` set).

The output is a folder of Parquet files (readable as one table by
``pyarrow.parquet.read_table(OUT)``, ``pandas.read_parquet(OUT)``, Spark, DuckDB...):

* ``part-<run>-<n>.parquet``: the rows of one chunk of images, written
  atomically (temporary file, fsync, rename) as soon as the chunk is done, so a
  killed run loses only the chunks in flight;
* ``data-<n>.parquet``: parts merged at the end of a complete run (they record
  the parts they replace, so a run killed while merging never duplicates rows);
* ``_facelab_batch.json``: the task and settings, checked when a run resumes.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..types import Attribute, Box, Candidate, Embedding, Face, Identity, ImageResult, Landmarks

META_FILE = "_facelab_batch.json"
#: Parquet key-value metadata of a merged file: the part files it replaces (JSON list).
MERGED_KEY = b"facelab.merged_parts"
ROWS_PER_FILE = 200_000


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the install
        from ..errors import ModelError

        raise ModelError("batch output needs pyarrow: pip install 'facelab[batch]'") from None
    return pa, pq


def schema():
    """The Arrow schema of batch rows (see the module docstring)."""
    pa, _ = _pa()
    f32 = pa.float32()
    return pa.schema(
        [
            ("source", pa.string()),
            ("label", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("n_faces", pa.int32()),
            ("face", pa.int32()),
            ("box", pa.struct([("left", f32), ("top", f32), ("right", f32), ("bottom", f32)])),
            ("score", f32),
            ("detector", pa.string()),
            ("rotation", f32),
            ("landmarks", pa.list_(pa.list_(f32))),
            ("landmarks_model", pa.string()),
            ("embedding", pa.list_(f32)),
            ("model", pa.string()),
            ("attributes", pa.string()),
            ("identity", pa.string()),
            ("distance", f32),
            ("candidates", pa.list_(pa.struct([("name", pa.string()), ("distance", f32)]))),
            ("quality", f32),
            ("error", pa.string()),
            ("error_code", pa.string()),
        ]
    )


COLUMNS = [
    "source", "label", "width", "height", "n_faces", "face", "box", "score", "detector", "rotation", "landmarks", "landmarks_model",
    "embedding", "model", "attributes", "identity", "distance", "candidates", "quality", "error", "error_code",
]  # fmt: skip


def rows_of(result: ImageResult, label: str | None = None) -> list[dict[str, Any]]:
    """The rows of one image: one per face, or one saying there is none (or why it failed)."""
    base: dict[str, Any] = {c: None for c in COLUMNS}
    base.update(source=result.source, label=label, width=result.width or None, height=result.height or None)
    if not result.ok:
        base.update(error=result.error, error_code=result.error_code)
        return [base]
    base["n_faces"] = len(result.faces)
    if not result.faces:
        return [base]
    rows = []
    for i, f in enumerate(result.faces):
        r = dict(base, face=i, box=f.box.to_dict(), score=f.score, detector=f.detector, rotation=f.rotation)
        if f.landmarks is not None:
            r["landmarks"] = f.landmarks.points[:, :2].tolist()
            r["landmarks_model"] = f"{f.landmarks.model}:{f.landmarks.scheme}"
        if f.embedding is not None:
            r["embedding"] = f.embedding.vector.tolist()
            r["model"] = f.embedding.model
        if f.attributes:
            r["attributes"] = json.dumps({k: a.to_dict() for k, a in f.attributes.items()}, sort_keys=True)
        if f.identity is not None:
            r["identity"], r["distance"] = f.identity.name, f.identity.distance
            r["candidates"] = [{"name": c.name, "distance": c.distance} for c in f.identity.candidates]
        if f.quality is not None:
            r["quality"] = f.quality.score
        rows.append(r)
    return rows


def face_of(row: dict[str, Any]) -> Face | None:
    """The :class:`~facelab.types.Face` of a row (``None`` for a no-face or error row); pandas' NaN counts as missing."""
    row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    if row.get("face") is None or row.get("box") is None:
        return None
    f = Face(Box.from_dict(row["box"]), float(row["score"]), row["detector"], float(row.get("rotation") or 0.0))
    if row.get("landmarks") is not None:
        model, _, scheme = (row.get("landmarks_model") or "?:?").rpartition(":")
        f.landmarks = Landmarks(np.array([np.asarray(p, np.float32) for p in row["landmarks"]]), model, scheme)
    if row.get("embedding") is not None:
        f.embedding = Embedding(np.asarray(row["embedding"], np.float32), row["model"])
    if row.get("attributes"):
        f.attributes = {k: Attribute.from_dict(a) for k, a in json.loads(row["attributes"]).items()}
    if row.get("identity") is not None:
        cands = [Candidate(c["name"], float(c["distance"])) for c in (row.get("candidates") if row.get("candidates") is not None else [])]
        f.identity = Identity(row["identity"], float(row["distance"]), float("nan"), cands)
    return f


# --- the output folder -------------------------------------------------------------------------


@dataclass
class OutputFolder:
    """A batch output folder (see the module docstring)."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # files --------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The live data files: merged files and the parts no merged file replaces."""
        if not self.path.is_dir():
            return []
        merged = sorted(self.path.glob("data-*.parquet"))
        replaced = set()
        for m in merged:
            replaced.update(self._merged_parts(m))
        parts = sorted(p for p in self.path.glob("part-*.parquet") if p.name not in replaced)
        return merged + parts

    def _merged_parts(self, path: Path) -> list[str]:
        _, pq = _pa()
        md = pq.read_schema(path).metadata or {}
        return json.loads(md.get(MERGED_KEY, b"[]"))

    def clean(self) -> None:
        """Remove temporary files of killed runs and parts already merged."""
        if not self.path.is_dir():
            return
        for p in self.path.glob(".*.tmp"):
            p.unlink(missing_ok=True)
        live = {p.name for p in self.files()}
        for p in self.path.glob("part-*.parquet"):
            if p.name not in live:
                p.unlink(missing_ok=True)

    # settings ------------------------------------------------------------------------------

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Record ``settings`` for a new output; refuse to add to one written with other settings."""
        meta = self.path / META_FILE
        if meta.exists():
            try:
                old = json.loads(meta.read_text())
            except (OSError, ValueError) as e:
                raise InputError(f"cannot read {META_FILE} ({e}); use a new output folder", source=str(self.path)) from None
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            if diff:
                shown = ", ".join(f"{k} {old.get(k)!r} -> {settings.get(k)!r}" for k in diff[:4])
                raise InputError(f"this output was written with other settings ({shown}); use a new output folder to change them", source=str(self.path))
            return
        if self.path.exists() and not self.path.is_dir():
            raise InputError("the output exists and is not a folder (batch output is a folder of Parquet files)", source=str(self.path))
        if self.path.is_dir() and any(self.path.glob("*.parquet")):
            raise InputError(f"a folder of Parquet files without {META_FILE}: not a facelab batch output; use a new output folder", source=str(self.path))
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(meta, json.dumps(settings, indent=2, sort_keys=True).encode())

    # reading --------------------------------------------------------------------------------

    def done_sources(self) -> set[str]:
        """The sources that already have rows (a resumed run skips them)."""
        _, pq = _pa()
        done: set[str] = set()
        for f in self.files():
            done.update(pq.read_table(f, columns=["source"]).column("source").to_pylist())
        return done

    def read(self, columns: Sequence[str] | None = None):
        """Every row as one Arrow table (empty when there is none)."""
        pa, pq = _pa()
        files = self.files()
        if not files:
            return schema().empty_table() if columns is None else schema().empty_table().select(list(columns))
        return pa.concat_tables([pq.read_table(f, columns=list(columns) if columns else None, schema=schema()) for f in files])

    # writing -------------------------------------------------------------------------------

    def new_run(self) -> PartWriter:
        return PartWriter(self.path, f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}")

    def merge(self, rows_per_file: int = ROWS_PER_FILE) -> int:
        """Merge the part files into ``data-<n>.parquet`` files; returns how many files were written."""
        pa, pq = _pa()
        parts = [p for p in self.files() if p.name.startswith("part-")]
        if len(parts) < 2:
            return 0
        existing = [int(p.stem.split("-")[1]) for p in self.path.glob("data-*.parquet")]
        n = max(existing, default=-1) + 1
        written, group, rows = 0, [], 0
        for i, p in enumerate(parts):
            group.append(p)
            rows += pq.read_metadata(p).num_rows
            if rows >= rows_per_file or i == len(parts) - 1:
                table = pa.concat_tables([pq.read_table(g, schema=schema()) for g in group])
                md = {MERGED_KEY: json.dumps([g.name for g in group]).encode()}
                table = table.replace_schema_metadata({**(table.schema.metadata or {}), **md})
                _write_table(self.path / f"data-{n:05d}.parquet", table, row_group_size=10_000)
                for g in group:
                    g.unlink(missing_ok=True)
                n, written, group, rows = n + 1, written + 1, [], 0
        return written


class PartWriter:
    """Writes the rows of each finished chunk as one part file, atomically."""

    def __init__(self, folder: Path, run: str):
        self.folder, self.run, self.count = folder, run, 0

    def write(self, rows: Iterable[dict[str, Any]]) -> Path:
        pa, _ = _pa()
        table = pa.Table.from_pylist(list(rows), schema=schema())
        path = self.folder / f"part-{self.run}-{self.count:06d}.parquet"
        _write_table(path, table)
        self.count += 1
        return path


def _write_table(path: Path, table, row_group_size: int | None = None) -> None:
    _, pq = _pa()
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd")
    _fsync_replace(tmp, path)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    _fsync_replace(tmp, path)


def _fsync_replace(tmp: Path, path: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_rows(path: str | os.PathLike[str], columns: Sequence[str] | None = None):
    """The rows of a batch output folder (or of one Parquet file) as an Arrow table."""
    p = Path(path)
    if p.is_dir():
        return OutputFolder(p).read(columns)
    if not p.exists():
        raise InputError("no such file or folder", source=str(p))
    _, pq = _pa()
    try:
        return pq.read_table(p, columns=list(columns) if columns else None)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise InputError(f"not a Parquet file ({e})", source=str(p)) from None


__all__ = ["COLUMNS", "META_FILE", "OutputFolder", "PartWriter", "face_of", "read_rows", "rows_of", "schema"]
