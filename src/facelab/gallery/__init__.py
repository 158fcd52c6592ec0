"""Galleries of known people, and identification against them.

* :class:`Gallery` (:mod:`.gallery`): the persistent gallery: SQLite file or
  PostgreSQL + pgvector (:mod:`.store`), exact or FAISS/pgvector HNSW search
  (:mod:`.search`), calibrated open-set threshold (:mod:`.calibration`).
* :class:`KnownFaces` (:mod:`.known`): a small in-memory gallery (``facelab analyze --known``):
  embeddings with names, exact nearest-neighbour search.

A face is ``unknown`` when its best match is farther than the threshold.
"""

from __future__ import annotations

from .backends import open_store
from .calibration import default_threshold
from .gallery import EnrollResult, Gallery, open_gallery
from .known import KnownFaces, known_people_from_folder
from .store import PersonRecord, default_db

__all__ = ["EnrollResult", "Gallery", "KnownFaces", "PersonRecord", "default_db", "default_threshold", "known_people_from_folder", "open_gallery", "open_store"]
