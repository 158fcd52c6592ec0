"""Open-set thresholds: above this distance a face is ``unknown``.

Identification against a gallery is open-set: most faces a camera sees belong
to no one enrolled.  The threshold trades the two errors: a stranger taken
for someone (false accept) against an enrolled person called ``unknown``
(false reject).  The defaults below are calibrated on data, per embedding
model and matching mode, by ``benchmarks/identify_openset.py``:

1. LFW View 1 images (Huang et al. 2007): the 81 people with >= 5 photos.
   Half of them are enrolled (their first 3 photos), the others are never
   enrolled.  Probes: the remaining photos of the enrolled people (genuine)
   and every photo of the others (impostors).
2. For each probe, the distance to the best-matching person (nearest
   embedding, or centroid) and whether that person is right.
3. The threshold maximises open-set accuracy (right name, or ``unknown`` for
   a stranger) over the probes of 5 random enrolled/stranger splits, and is
   reported on 5 other splits.

The right threshold shrinks as the gallery grows (more people, more chances
that a stranger falls close to one of them): recalibrate for large
galleries with ``benchmarks/identify_openset.py`` on your own data.

Override per call (``Gallery(threshold=...)``, ``facelab identify --threshold``).
For models without a calibrated value the embedder's verification threshold is used.
"""

from __future__ import annotations

#: (model, match) -> threshold; see the module docstring and docs/gallery.md for the measurements.
#: benchmarks/identify_openset.py (LFW, 40 people enrolled with 3 photos, 10 splits): nearest 0.495 gives
#: open-set accuracy 0.977 on the held-out splits (known named 0.950, strangers unknown 0.991), centroid
#: 0.477 gives 0.984; dlib's verification threshold 0.6 would give only 0.761 / 0.663 (too many strangers
#: fall within 0.6 of *someone* among 40 people).  ORL gives 0.463 / 0.459, Yale 0.428 / 0.404.
THRESHOLDS: dict[tuple[str, str], float] = {
    ("dlib", "nearest"): 0.495,
    ("dlib", "centroid"): 0.477,
}


def default_threshold(model: str, match: str = "nearest") -> float:
    """The calibrated open-set threshold of ``model`` for ``match``, else the embedder's verification threshold."""
    t = THRESHOLDS.get((model, match))
    if t is not None:
        return t
    from ..embed import get_embedder

    try:
        return float(get_embedder(model).threshold)
    except Exception:
        return 0.6 if not model.startswith("onnx:") else 0.5


__all__ = ["THRESHOLDS", "default_threshold"]
