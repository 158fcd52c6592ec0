"""The fixed train / validation split of the ``face-boxes`` photos (``../shared/data/face-boxes``).

facelab's fine-tuned detector (``blazeface_ft``) never saw the validation
photos; its model card, its tests and ``benchmarks/detect_boxes.py`` all
score on this same list.  The 88 stems (30% of 292, 402 boxes, 238 with a
short side >= 20 px) are the first 88 in SHA-1 order of the stem names::

    sorted(stems, key=lambda s: hashlib.sha1(s.encode()).hexdigest())[:88]
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..types import Box

_VAL_NUMBERS = (
    "13 17 27 38 43 44 48 57 75 81 105 113 126 131 139 142 146 148 152 163 172 186 210 213 216 222 232 235 243 246 249 284 288 290 "
    "293 312 318 333 342 370 389 408 423 425 428 429 434 441 446 448 456 491 494 508 514 517 544 545 565 574 600 609 621 622 635 642 "
    "643 659 665 670 675 681 690 691 712 722 738 762 766 768 771 772 803 805 808 811 825 845"
)
#: Stems of the held-out validation photos.
VALIDATION_STEMS: frozenset[str] = frozenset(f"maksssksksss{n}" for n in _VAL_NUMBERS.split())

SPLITS = ("val", "train", "all")


def stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def split(dataset: Sequence[tuple[str, list[Box]]], which: str) -> list[tuple[str, list[Box]]]:
    """The ``"val"``, ``"train"`` or ``"all"`` part of a :func:`facelab.evaluate.voc_dataset`."""
    if which not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {which!r}")
    if which == "all":
        return list(dataset)
    want_val = which == "val"
    return [(p, b) for p, b in dataset if (stem(p) in VALIDATION_STEMS) == want_val]


def is_face_boxes(dataset: Sequence[tuple[str, list[Box]]]) -> bool:
    """Does this dataset hold the validation photos (so scores must use the held-out part)?"""
    return sum(stem(p) in VALIDATION_STEMS for p, _ in dataset) >= len(VALIDATION_STEMS) // 2
