"""Batch jobs over folders, globs and manifests of images, on this machine or on a Ray cluster.

>>> from facelab.batch import run_batch, read_rows
>>> run_batch("analyze", "archive/", "archive.parquet", engine="ray")   # resumable
>>> rows = read_rows("archive.parquet").to_pandas()                      # one row per face

* :mod:`.inputs`: folders, glob patterns, CSV/JSON/Parquet/text manifests of paths or URLs;
* :mod:`.engine`: the driver (chunks, resume, progress, gallery output) and the ``local`` engine;
* :mod:`.ray_engine`: the ``ray`` engine (one actor per CPU, each with its own models);
* :mod:`.table`: the row schema and the Parquet output folder;
* :mod:`.cluster`: grouping unknown faces into people, contact sheets, naming and enrolling clusters.
"""

from .engine import BatchOptions, BatchSummary, run_batch
from .inputs import InputSpec, Item
from .table import COLUMNS, OutputFolder, face_of, read_rows, rows_of

__all__ = ["COLUMNS", "BatchOptions", "BatchSummary", "InputSpec", "Item", "OutputFolder", "face_of", "read_rows", "rows_of", "run_batch"]
