"""The embedder interface: aligned face chips in, fixed-length descriptors out."""

from __future__ import annotations

import numpy as np

from ..align import align
from ..registry import LazyModel, Registry
from ..types import Embedding, Face

EMBEDDERS: Registry[Embedder] = Registry("embedder")


class Embedder(LazyModel):
    """A face embedder.  Subclasses implement :meth:`load` and :meth:`_forward`.

    ``metric`` is ``"euclidean"`` or ``"cosine"`` (1 - cosine similarity);
    ``threshold`` is the default verification threshold on that distance.
    """

    name = "embedder"
    dim = 0
    metric = "euclidean"
    threshold = 0.6
    align_method = "dlib"
    chip_size = 150
    padding = 0.25
    batch_size = 32

    def chips(self, image: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        return [align(image, f, self.chip_size, self.padding, self.align_method) for f in faces]

    def embed_chips(self, chips: list[np.ndarray] | np.ndarray, *, flip: bool = False) -> np.ndarray:
        """Descriptors ``(N, dim)`` of aligned chips; ``flip`` averages each chip with its mirror image."""
        self.prepare()
        chips = [np.ascontiguousarray(c) for c in chips]
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        batch = chips + [np.ascontiguousarray(c[:, ::-1]) for c in chips] if flip else chips
        out = np.concatenate([self._forward(batch[i : i + self.batch_size]) for i in range(0, len(batch), self.batch_size)])
        if flip:
            out = (out[: len(chips)] + out[len(chips) :]) / 2.0
        if self.metric == "cosine":
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def embed(self, image: np.ndarray, faces: list[Face], *, flip: bool = True) -> list[Embedding]:
        """Embeddings of ``faces`` (aligned first); ``flip`` averaging is facelab's default everywhere."""
        vecs = self.embed_chips(self.chips(image, faces), flip=flip)
        return [Embedding(v, self.name) for v in vecs]

    def _forward(self, chips: list[np.ndarray]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError
