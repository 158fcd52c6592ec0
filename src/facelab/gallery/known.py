"""A small in-memory gallery (``facelab analyze --known``): embeddings with names, exact nearest-neighbour search."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..embed import distances, metric_of
from ..types import Candidate, Embedding, Face, Identity
from .search import rank_people


@dataclass
class KnownFaces:
    model: str
    threshold: float
    names: list[str] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)

    def add(self, name: str, embedding: Embedding) -> None:
        if embedding.model != self.model:
            from ..errors import ModelMismatchError

            raise ModelMismatchError(f"gallery holds {self.model!r} embeddings, got one of {embedding.model!r}")
        self.names.append(name)
        self.vectors.append(embedding.vector)

    def __len__(self) -> int:
        return len(self.names)

    def identify(self, embedding: Embedding, top_k: int = 3) -> Identity:
        """Nearest-neighbour identity: per person the closest of their embeddings."""
        if not self.names:
            return Identity(Identity.UNKNOWN, float("inf"), self.threshold)
        d = distances(embedding.vector[None], np.stack(self.vectors), metric_of(self.model))[0]
        ranked = rank_people(np.array(self.names), d, max(1, top_k))
        cands = [Candidate(str(n), v) for n, v in ranked[:top_k]]
        name, dist = ranked[0]
        return Identity(name if dist <= self.threshold else Identity.UNKNOWN, dist, self.threshold, cands)

    def identify_faces(self, faces: list[Face], top_k: int = 3) -> list[Face]:
        for f in faces:
            if f.embedding is not None:
                f.identity = self.identify(f.embedding, top_k)
        return faces


def known_people_from_folder(folder: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(name, image path) pairs: ``folder/<name>.jpg`` files and ``folder/<name>/*.jpg`` sub-folders."""
    from ..io import iter_image_paths

    root = Path(folder)
    out = []
    for p in iter_image_paths(root):
        rel = Path(p).relative_to(root)
        name = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        out.append((name, p))
    return out


__all__ = ["KnownFaces", "known_people_from_folder"]
