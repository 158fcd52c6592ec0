"""Fallback chains: ``detector="hog,cnn"`` tries each detector in turn until one finds a face.

Cheap detectors first, expensive ones only for the hard images: e.g. HOG at its
native scale, then HOG upsampled, then the MMOD CNN (``"hog,hog@2,cnn"``; the
``@k`` suffix upsamples the scan k-fold, i.e. finds faces k times smaller).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import Face
from .base import DETECTORS, Detector


@DETECTORS.register("cascade", help="fallback chain, e.g. detector='hog,cnn' (next one only if nothing found)")
class CascadeDetector(Detector):
    name = "cascade"

    def __init__(self, *, chain: tuple[str, ...] = ("hog", "cnn"), **kw: Any):
        super().__init__(**kw)
        self.chain = tuple(chain)
        self.options = kw

    def _member(self, spec: str) -> Detector:
        name, _, up = spec.partition("@")
        opts = dict(self.options)
        if up:
            opts["min_face"] = max(1, int(round(opts.get("min_face", self.min_face) / float(up))))
        return DETECTORS.get(name, **opts)

    def load(self) -> None:
        for spec in self.chain:
            self._member(spec)  # resolve names now: unknown ones fail early

    def members(self) -> list[Detector]:
        """The chain's detectors, in order (a whole-image search at other angles runs them in turn too)."""
        return [self._member(spec) for spec in self.chain]

    def _detect(self, image: np.ndarray) -> list[Face]:
        for member in self.members():
            faces = member.detect(image)
            if faces:
                return faces
        return []


def resolve_chain(spec: str):
    if "," in spec:
        parts = tuple(p.strip() for p in spec.split(",") if p.strip())
        for p in parts:
            DETECTORS.resolve(p.partition("@")[0])
        return "cascade", {"chain": parts}
    return None


DETECTORS.add_resolver(resolve_chain)
