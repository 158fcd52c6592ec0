"""The iBUG-68 point layout: mirror pairs, evaluation regions, and the 15-point simple view.

Left/right are as seen in the image (the convention of :mod:`facelab.types`):
points 36-41 are the eye on the image's left, 42-47 the other one.
"""

from __future__ import annotations

import numpy as np

from ..types import Landmarks


def _mirror_pairs() -> list[tuple[int, int]]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw 0..16, 8 is the chin
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows 17..21 <-> 26..22
    pairs += [(31, 35), (32, 34)]  # nostrils (27..30 and 33 are on the midline)
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips (51, 57 midline)
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips (62, 66 midline)
    return pairs


#: Index permutation for a horizontally flipped image: new point ``i`` is old point ``FLIP_68[i]``.
FLIP_68: np.ndarray = np.arange(68)
for _a, _b in _mirror_pairs():
    FLIP_68[_a], FLIP_68[_b] = _b, _a
FLIP_68.setflags(write=False)

#: Regions scored by landmark evaluation (the usual five of 300-W style reports).
EVAL_REGIONS: dict[str, list[int]] = {
    "jaw": list(range(0, 17)),
    "brows": list(range(17, 27)),
    "nose": list(range(27, 36)),
    "eyes": list(range(36, 48)),
    "mouth": list(range(48, 68)),
}

#: Outer eye corners: the inter-ocular distance of 300-W (Sagonas et al., 2016) is between them.
OUTER_EYE_CORNERS = (36, 45)

#: The 15-point view: per eye its outer corner, inner corner and centre; five nose points; four mouth points.
#: Each entry is a list of 68-point indices whose mean gives the point.
SIMPLE_15: list[list[int]] = [
    [36], [39], list(range(36, 42)),  # 0-2 image-left eye: outer, inner, centre
    [42], [45], list(range(42, 48)),  # 3-5 image-right eye: inner, outer, centre
    [27], [30], [31], [33], [35],  # 6-10 nose: bridge top, tip, left nostril, base centre, right nostril
    [48], [51], [54], [57],  # 11-14 mouth: left corner, top, right corner, bottom
]


def flip_points(points: np.ndarray, width: int) -> np.ndarray:
    """68 points of an image mirrored left-right (``width`` px wide): x mirrored and left/right indices swapped.

    Pixel centres are at integer coordinates, so x becomes ``width - 1 - x``.
    """
    pts = np.array(points, dtype=np.float32, copy=True)
    if len(pts) != 68:
        raise ValueError(f"flip_points needs the 68-point layout, got {len(pts)} points")
    pts[:, 0] = (width - 1) - pts[:, 0]
    return pts[FLIP_68]


def inter_ocular(points: np.ndarray) -> np.ndarray | float:
    """Distance between the outer eye corners of one (68, 2) or many (N, 68, 2) shapes."""
    p = np.asarray(points, dtype=np.float64)
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(p[..., a, :2] - p[..., b, :2], axis=-1)


#: Outer eye corners of the 15-point view (:data:`SIMPLE_15`): its inter-ocular distance.
OUTER_EYE_CORNERS_15 = (0, 4)


def normalizing_distance(points: np.ndarray) -> np.ndarray | float:
    """The distance an NME divides by, for one (K, 2) or many (N, K, 2) shapes of any point set.

    68 points: the outer eye corners (36, 45); 15 points (the :data:`SIMPLE_15` layout): its outer
    eye corners (0, 4); any other set: the square root of the area of the points' bounding box.
    """
    p = np.asarray(points, dtype=np.float64)
    k = p.shape[-2]
    if k in (68, 15):
        a, b = OUTER_EYE_CORNERS if k == 68 else OUTER_EYE_CORNERS_15
        return np.linalg.norm(p[..., a, :2] - p[..., b, :2], axis=-1)
    span = p[..., :2].max(axis=-2) - p[..., :2].min(axis=-2)
    return np.sqrt(span[..., 0] * span[..., 1])


def simple_view(lm: Landmarks) -> Landmarks:
    """The 15-point eyes/nose/mouth view of 68 landmarks (scheme ``"15"``, drawn with the fixed colours)."""
    if lm.scheme != "68":
        raise ValueError(f"the 15-point view is made from 68 landmarks, not scheme {lm.scheme!r}")
    p = lm.points[:, :2].astype(np.float64)
    pts = np.stack([p[idx].mean(axis=0) for idx in SIMPLE_15])
    return Landmarks(pts.astype(np.float32), f"{lm.model}:simple15", "15")


__all__ = ["EVAL_REGIONS", "FLIP_68", "OUTER_EYE_CORNERS", "OUTER_EYE_CORNERS_15", "SIMPLE_15", "flip_points", "inter_ocular", "normalizing_distance", "simple_view"]
