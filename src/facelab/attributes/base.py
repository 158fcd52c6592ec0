"""The attribute-model interface and registry."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..registry import LazyModel, Registry
from ..types import Attribute, Face

ATTRIBUTE_MODELS: Registry[AttributeModel] = Registry("attribute model")


class AttributeModel(LazyModel):
    """Predicts some of ``age``, ``gender``, ``emotion``, ``ethnicity`` for faces.

    Subclasses set :attr:`tasks`, implement :meth:`load` and :meth:`_predict`.
    """

    name = "attributes"
    tasks: tuple[str, ...] = ()

    def predict(self, image: np.ndarray, faces: Sequence[Face], tasks: Sequence[str] | None = None) -> list[dict[str, Attribute]]:
        """One ``{task: Attribute}`` per face, for ``tasks`` (default: all the model's tasks)."""
        self.prepare()
        want = [t for t in (tasks or self.tasks) if t in self.tasks]
        if not faces or not want:
            return [{} for _ in faces]
        return self._predict(image, list(faces), want)

    def _predict(self, image: np.ndarray, faces: list[Face], tasks: list[str]) -> list[dict[str, Attribute]]:  # pragma: no cover
        raise NotImplementedError


def probs_attribute(probs: np.ndarray, classes: Sequence[str], model: str) -> Attribute:
    """A classification result: the top class, its probability as confidence, every class's probability."""
    p = np.asarray(probs, dtype=np.float64)
    k = int(p.argmax())
    return Attribute(str(classes[k]), model, {str(c): float(v) for c, v in zip(classes, p)}, float(p[k]))


