"""Run any model facelab trained, chosen by the file's ``kind`` (``facelab predict --model FILE PATH...``).

Each kind of model file registers a job builder in :data:`PREDICTORS`:
``fn(model_file: Path, opts: PredictOptions) -> job``, where ``job(image) -> list[Face]``
is picklable (for :func:`facelab.runner.run_many`'s worker processes) and has
``prepare()``.  :func:`predict_job` picks the builder; :func:`predict` runs it
over images.  :func:`model_kind` reads the kind from the file's
metadata: ``.npz`` files with a JSON ``meta`` entry (identity classifiers,
:class:`facelab.train.identities.IdentityModel`) or ``.onnx`` files with a
``facelab`` metadata entry (attribute models, :mod:`facelab.attributes.onnx_model`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..detect import DEFAULT_DETECTOR, Rotate
from ..errors import InputError
from ..types import ImageResult


@dataclass
class PredictOptions:
    """How to find the faces a model is run on."""

    detector: str = DEFAULT_DETECTOR
    rotate: Rotate = "auto"
    min_face: int = 40
    top_k: int = 3  # identities: candidates listed per face
    whole_image: bool = False  # attributes: each image is one face crop (no detection)


def model_kind(path: str | Path) -> str:
    """The ``kind`` recorded in a facelab model file (``identities``, ...)."""
    if str(path).lower().endswith(".onnx"):
        from ..attributes.onnx_model import read_metadata
        from ..errors import ModelError

        try:
            kind = read_metadata(path).get("kind")
        except ModelError as e:
            raise InputError(str(e.reason), source=str(path)) from None
        return str(kind)
    from .identities import read_model_meta

    kind = read_model_meta(path).get("kind")
    if not kind:
        raise InputError("model file has no 'kind' in its metadata", source=str(path))
    return str(kind)


def identities_job(model_file: Path, opts: PredictOptions) -> Any:
    """Name every face with an identities model (``facelab train identities``)."""
    from ..pipeline import FaceAnalysis, IdentifyJob
    from .identities import IdentityModel

    model = IdentityModel.load(model_file)
    emb = model.meta.get("embedding", {})
    pipe = FaceAnalysis(
        detector=opts.detector, landmarks=None, embedder=emb.get("embedder", model.model), rotate=opts.rotate,
        flip=bool(emb.get("flip", False)), detector_options={"min_face": opts.min_face},
    )
    return IdentifyJob(pipe, _TopK(model, opts.top_k))


@dataclass
class _TopK:
    """An identities model with the number of candidates to list (picklable for workers)."""

    model: Any
    top_k: int = 3

    def identify_faces(self, faces):
        return self.model.identify_faces(faces, top_k=self.top_k)


def attributes_job(model_file: Path, opts: PredictOptions) -> Any:
    """Every face's attributes with a model from ``facelab train attributes``."""
    from ..attributes import PredictJob, get_attribute_model

    get_attribute_model(str(model_file)).prepare()  # a bad model file fails once, here
    return PredictJob(str(model_file), opts.whole_image, opts.detector)


#: model kind -> job builder (see the module docstring)
PREDICTORS: dict[str, Callable[[Path, PredictOptions], Any]] = {"identities": identities_job, "attributes": attributes_job}


def predict_job(model_file: str | Path, opts: PredictOptions | None = None) -> Any:
    """The job running the model file on an image (``job(image) -> list[Face]``), chosen by the file's kind."""
    model_file = Path(model_file)
    if not model_file.exists():
        raise InputError("no such model file", source=str(model_file))
    kind = model_kind(model_file)
    fn = PREDICTORS.get(kind)
    if fn is None:
        raise InputError(f"no predictor for models of kind {kind!r} (known: {', '.join(sorted(PREDICTORS))})", source=str(model_file))
    return fn(model_file, opts or PredictOptions())


def predict(model_file: str | Path, sources: Sequence[Any], opts: PredictOptions | None = None, *, workers: int = 1) -> list[ImageResult]:
    """Run a model file on images (paths, URLs, bytes, arrays): one :class:`~facelab.types.ImageResult` each; errors become its ``error``."""
    from ..runner import run_many

    return list(run_many(predict_job(model_file, opts), list(sources), workers=workers))


__all__ = ["PREDICTORS", "PredictOptions", "attributes_job", "identities_job", "model_kind", "predict", "predict_job"]
