"""The attribute tasks and their label vocabularies.

Classification tasks with a fixed vocabulary (``emotion``, ``gender``,
``ethnicity``) accept a few spellings of each class (``"Female"``, ``"f"``,
``1`` for UTKFace's codes...).  ``age`` is a number of years (regression).
``age_group`` is a classification task whose classes are the distinct values
found in the training manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InputError

#: FER2013's seven classes, in the order of its integer codes.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
GENDERS: tuple[str, ...] = ("male", "female")  # UTKFace codes: 0 male, 1 female
#: UTKFace's five groups (codes 0-4): coarse categories assigned by annotators, not by the people pictured (docs/attributes.md).
ETHNICITIES: tuple[str, ...] = ("white", "black", "asian", "indian", "others")

TASKS: tuple[str, ...] = ("age", "gender", "emotion", "ethnicity", "age_group")
FIXED_CLASSES: dict[str, tuple[str, ...]] = {"emotion": EMOTIONS, "gender": GENDERS, "ethnicity": ETHNICITIES}

_ALIASES: dict[str, dict[str, str]] = {
    "emotion": {
        "anger": "angry", "mad": "angry", "disgusted": "disgust", "fearful": "fear", "scared": "fear", "afraid": "fear",
        "happiness": "happy", "joy": "happy", "sadness": "sad", "surprised": "surprise", "calm": "neutral",
    },
    "gender": {"m": "male", "man": "male", "men": "male", "boy": "male", "f": "female", "woman": "female", "women": "female", "girl": "female"},
    "ethnicity": {"other": "others", "caucasian": "white", "african": "black", "east asian": "asian", "south asian": "indian"},
}

#: Age bands used to break results down (children and the elderly are where models fail most).
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("0-12", 0, 13), ("13-19", 13, 20), ("20-39", 20, 40), ("40-59", 40, 60), ("60+", 60, 1e9),
)


def age_band(age: float) -> str:
    for name, lo, hi in AGE_BANDS:
        if lo <= age < hi:
            return name
    return AGE_BANDS[-1][0]


class LabelError(InputError):
    """A manifest item has a label facelab cannot use."""

    code = "bad_label"


def normalize_label(task: str, value: Any, *, item: str, classes: Sequence[str] | None = None) -> str | float:
    """The canonical label of ``value`` for ``task``; :class:`LabelError` naming ``item`` otherwise.

    Integer codes of the fixed vocabularies are accepted (FER2013 / UTKFace order).
    """
    if task == "age":
        if isinstance(value, bool):
            raise LabelError(f"age must be a number of years, not {value!r}", source=item)
        try:
            age = float(value)
        except (TypeError, ValueError):
            raise LabelError(f"age must be a number of years, not {value!r}", source=item) from None
        if not (0 <= age <= 130):
            raise LabelError(f"age {age:g} is outside 0-130", source=item)
        return age
    vocab = FIXED_CLASSES.get(task) if classes is None else tuple(classes)
    if isinstance(value, bool) or value is None:
        raise LabelError(f"{task} label {value!r} is not a class name", source=item)
    if vocab is not None and isinstance(value, int):
        if 0 <= value < len(vocab):
            return vocab[value]
        raise LabelError(f"unknown {task} code {value} (0-{len(vocab) - 1}: {', '.join(vocab)})", source=item)
    if not isinstance(value, (str, int, float)):
        raise LabelError(f"{task} label {value!r} is not a class name", source=item)
    s = str(value).strip()
    if vocab is None:  # an open vocabulary (age_group in training): any non-empty string
        if not s:
            raise LabelError(f"empty {task} label", source=item)
        return s
    low = s.lower()
    low = _ALIASES.get(task, {}).get(low, low)
    for c in vocab:
        if c.lower() == low:
            return c
    if low.isdigit() and int(low) < len(vocab):
        return vocab[int(low)]
    raise LabelError(f"unknown {task} label {value!r} (expected one of: {', '.join(vocab)})", source=item)
