"""``facelab predict --model FILE PATH...``: run any model facelab trained, chosen by the file's ``kind``.

Each kind of model file registers a predictor in :data:`PREDICTORS`:
``fn(model_file: Path, paths: list[str], opts: PredictOptions) -> None``,
which processes the images (``facelab.cli.run_images``), prints results and
exits with the CLI's codes.  :func:`model_kind` reads the kind from the file's
metadata: ``.npz`` files with a JSON ``meta`` entry (identity classifiers,
:class:`facelab.train.identities.IdentityModel`) or ``.onnx`` files with a
``facelab`` metadata entry (attribute models, :mod:`facelab.attributes.onnx_model`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..detect import DEFAULT_DETECTOR
from ..errors import InputError


@dataclass
class PredictOptions:
    """The shared options of ``facelab predict`` (detection and output)."""

    detector: str = DEFAULT_DETECTOR
    rotate: Any = "auto"  # facelab.cli.RotateMode
    min_face: int = 40
    as_json: bool = False
    out: Path | None = None
    workers: int = 1
    quiet: bool = False
    top_k: int = 3
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


def predict_identities(model_file: Path, paths: list[str], opts: PredictOptions) -> None:
    """Name every face with an identities model (``facelab train identities``)."""
    from ..cli import IdentifyJob, _pipeline, _summary_table, run_images
    from ..types import Face
    from .identities import IdentityModel

    model = IdentityModel.load(model_file)
    emb = model.meta.get("embedding", {})
    pipe = _pipeline(opts.detector, opts.rotate, opts.min_face, None, emb.get("embedder", model.model), bool(emb.get("flip", False)))
    job = IdentifyJob(pipe, _TopK(model, opts.top_k))

    def extra(f: Face) -> str:
        return f" {f.identity.name} ({f.identity.distance:.2f})" if f.identity is not None else ""

    run_images(paths, job, out=opts.out, workers=opts.workers, quiet=opts.quiet, as_json=opts.as_json, summarize=lambda rs: _summary_table(rs, extra))


@dataclass
class _TopK:
    """An identities model with the number of candidates to list (picklable for workers)."""

    model: Any
    top_k: int = 3

    def identify_faces(self, faces):
        return self.model.identify_faces(faces, top_k=self.top_k)


def predict_attributes(model_file: Path, paths: list[str], opts: PredictOptions) -> None:
    """Every face's attributes with a model from ``facelab train attributes``."""
    from ..attributes import PredictJob, get_attribute_model
    from ..cli import _summary_table, run_images
    from ..draw import default_label

    get_attribute_model(str(model_file)).prepare()  # a bad model file fails once, here
    job = PredictJob(str(model_file), opts.whole_image, opts.detector)

    def extra(f) -> str:
        return " " + (default_label(f) or ", ".join(f"{k} {a.value}" for k, a in f.attributes.items()))

    run_images(paths, job, out=opts.out, workers=opts.workers, quiet=opts.quiet, as_json=opts.as_json, summarize=lambda rs: _summary_table(rs, extra))


#: model kind -> predictor (see the module docstring)
PREDICTORS: dict[str, Callable[[Path, list[str], PredictOptions], None]] = {"identities": predict_identities, "attributes": predict_attributes}


def predict(model_file: Path, paths: list[str], opts: PredictOptions) -> None:
    kind = model_kind(model_file)
    fn = PREDICTORS.get(kind)
    if fn is None:
        raise InputError(f"no predictor for models of kind {kind!r} (known: {', '.join(sorted(PREDICTORS))})", source=str(model_file))
    fn(model_file, paths, opts)


__all__ = ["PREDICTORS", "PredictOptions", "model_kind", "predict", "predict_attributes", "predict_identities"]
