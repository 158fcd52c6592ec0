"""facelab's own attribute models: ONNX files with a ``facelab`` metadata entry of ``"kind": "attributes"``.

Written by ``facelab train attributes`` (and shipped in ``facelab/assets/``).
The metadata says which tasks the outputs are (one output per task, named
after it: class probabilities, or years for ``age``) and what the input is:

* ``"input": "chip"`` (default): face crops described by ``"chip"``
  (:class:`~facelab.attributes.data.ChipSpec`: size, grey/RGB, padding and
  shift around the detected box), float ``[0, 1]``, NCHW;
* ``"input": "embedding:dlib"``: the face's 128-d dlib embedding (reused when
  the pipeline already computed it);
* ``"input": "chip:dlib"``: the 150-px chip dlib's ResNet embeds (5-point
  alignment, 0.25 padding), float ``[0, 1]``, NCHW: a fine-tuned ResNet's input
  (:mod:`facelab.train.attribute_finetune`).  With ``"prefix"`` metadata the
  file holds only the network above a frozen prefix of the installed dlib
  ResNet (``network``, ``sha256``, ``layers``, ``means``, ``mirror``): that
  prefix is converted from the installed file (once, cached) and runs first on
  the dlib-normalised chips (and their mirror images when ``mirror``).

Chip models may list test-time warps in ``"tta"`` (``[dx, dy, scale, angle]``
each, pixels and degrees; see :func:`tta_warps`): the outputs are then the
mean over the warped chips (``facelab train ensemble --tta-*`` writes it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, ModelNotFoundError
from ..models import ort_session
from ..types import Attribute, Face
from .base import ATTRIBUTE_MODELS, AttributeModel, probs_attribute
from .data import ChipSpec, face_chip

KIND = "attributes"


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``facelab`` metadata of an attribute ONNX file; :class:`ModelError` if it has none or another kind."""
    p = Path(path)
    if not p.is_file():
        raise ModelNotFoundError(f"attribute model file not found: {p}")
    try:
        import onnx

        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:
        raise ModelError(f"{p} is not an ONNX model ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    props = {m.key: m.value for m in model.metadata_props}
    if "facelab" not in props:
        raise ModelError(f"{p} has no facelab metadata: not a model written by 'facelab train attributes'")
    try:
        meta = json.loads(props["facelab"])
    except json.JSONDecodeError:
        raise ModelError(f"{p}: its facelab metadata is not valid JSON") from None
    if meta.get("kind") != KIND:
        raise ModelError(f"{p} is a {meta.get('kind')!r} model, not an attributes model")
    if not isinstance(meta.get("tasks"), dict) or not meta["tasks"]:
        raise ModelError(f"{p}: its facelab metadata lists no tasks")
    return meta


@ATTRIBUTE_MODELS.register("onnx", help="an attributes model from 'facelab train attributes': pass its .onnx path")
class OnnxAttributeModel(AttributeModel):
    """Runs a facelab attributes ONNX file (see the module docstring)."""

    def __init__(self, *, path: str = "", name: str | None = None, threads: int | None = None, verify: tuple[str, str, str] | None = None):
        super().__init__()
        self.path = path
        self.threads = threads
        self.name = name or (f"onnx:{os.path.basename(path)}" if path else "onnx")
        self._verify = verify
        if path and os.path.isfile(path):
            self.meta = read_metadata(path)
            self.tasks = tuple(self.meta["tasks"])

    def load(self) -> None:
        if not self.path:
            raise ModelNotFoundError("the onnx attribute model needs a file: pass its path (a model from 'facelab train attributes')")
        if self._verify is not None:
            from ..models import verify_file

            sha, what, fix = self._verify
            verify_file(self.path, sha, what=what, fix=fix)
        self.meta = read_metadata(self.path)
        self.tasks = tuple(self.meta["tasks"])
        self.classes: dict[str, list[str]] = {t: list(c) for t, c in self.meta["tasks"].items()}
        self.input = self.meta.get("input", "chip")
        self.spec = ChipSpec.from_dict(self.meta.get("chip", {}))
        self.tta: list[list[float]] | None = self.meta.get("tta") if self.input == "chip" else None
        self._prefix = self._load_prefix(self.meta.get("prefix")) if self.input == "chip:dlib" else None
        self._sess = ort_session(self.path, self.threads, what="attribute model")
        self._outputs = [o.name for o in self._sess.get_outputs()]
        missing = [t for t in self.tasks if t not in self._outputs]
        if missing:
            raise ModelError(f"{self.path}: no output for task(s) {', '.join(missing)}")

    def _load_prefix(self, prefix: dict[str, Any] | None):
        """The session of the installed network's frozen layers this model continues (None: the file is whole)."""
        if not prefix:
            return None
        from .._dlibdnn import converted_onnx_path, create_session
        from ..models import MODEL_FILES, model_path

        key = prefix.get("network", "")
        if key not in MODEL_FILES:
            raise ModelError(f"{self.path} continues a network facelab does not know ({key!r})")
        if MODEL_FILES[key].sha256 != prefix.get("sha256"):
            raise ModelError(f"{self.path} was trained on another version of {prefix.get('file', key)} than the one facelab pins; "
                             f"retrain it with this facelab ('facelab train attributes --input chip:dlib')")
        src = model_path(key)  # verified against the pinned SHA-256; a missing package names what to install
        return create_session(converted_onnx_path(src, stop=int(prefix["layers"])), self.threads)

    def _prefix_features(self, x: np.ndarray) -> np.ndarray:
        """[0, 1] chips (N, 3, 150, 150) -> the prefix activations the file takes (chips, then their mirror images)."""
        pre = self.meta["prefix"]
        means = np.asarray(pre["means"], np.float32).reshape(1, 3, 1, 1)
        z = (x * np.float32(255.0) - means) / np.float32(256.0)  # dlib's input normalisation
        if pre.get("mirror", True):
            z = np.concatenate([z, z[..., ::-1]])
        return self._prefix.run(None, {"input": np.ascontiguousarray(z, np.float32)})[0]

    # -- inputs ------------------------------------------------------------------
    def inputs(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """The network input of each face: chips (N, C, S, S) in [0, 1], or embeddings (N, D)."""
        if self.input == "chip":
            chips = np.stack([face_chip(image, f, self.spec) for f in faces])
            return chips_to_input(chips)
        if self.input == "embedding:dlib":
            from ..embed import get_embedder

            need = [f for f in faces if f.embedding is None or f.embedding.model != "dlib"]
            vecs = {id(f): f.embedding.vector for f in faces if f not in need}
            if need:
                for f, e in zip(need, get_embedder("dlib").embed(image, need)):
                    vecs[id(f)] = e.vector
            return np.stack([vecs[id(f)] for f in faces]).astype(np.float32)
        if self.input == "chip:dlib":
            from ..embed import get_embedder

            return chips_to_input(np.stack(get_embedder("dlib").chips(image, faces)))
        raise ModelError(f"{self.path}: unknown input kind {self.input!r}")

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs per task for a prepared input batch (averaged over the metadata's ``tta`` warps, if any)."""
        self.prepare()
        tta, n = self.tta, len(x)
        if self._prefix is not None:
            x = self._prefix_features(x)
        if tta:
            x = np.concatenate([warp_chips(x, *v) for v in tta])
        res = self._sess.run(self._outputs, {self._sess.get_inputs()[0].name: x})
        if tta:
            res = [r.reshape(len(tta), n, *r.shape[1:]).mean(axis=0) for r in res]
        return dict(zip(self._outputs, res))

    def _predict(self, image: np.ndarray, faces: list[Face], tasks: list[str]) -> list[dict[str, Attribute]]:
        out = self.run(self.inputs(image, faces))
        return outputs_to_attributes(out, self.classes, tasks, self.name)


def epoch_model_path(path: str | os.PathLike[str], epoch: int) -> Path:
    """Where ``facelab train attributes --keep`` writes the weights of ``epoch``: ``<stem>.epochs/epoch_NNN.onnx``."""
    p = Path(path)
    return p.with_name(p.stem + ".epochs") / f"epoch_{int(epoch):03d}.onnx"


def kept_epochs(path: str | os.PathLike[str]) -> list[int]:
    """The epochs whose weights were kept beside an attributes model (``--keep all|best:K``)."""
    d = epoch_model_path(path, 0).parent
    if not d.is_dir():
        return []
    return sorted(int(f.stem.split("_")[1]) for f in d.glob("epoch_*.onnx") if f.stem.split("_")[1].isdigit())


def select_epoch(path: str | os.PathLike[str], epoch: int | None) -> str:
    """The model file of ``epoch`` (``path`` itself when None); a clear error listing the kept epochs otherwise."""
    if epoch is None:
        return str(path)
    p = epoch_model_path(path, epoch)
    if not p.is_file():
        have = kept_epochs(path)
        listed = ", ".join(map(str, have)) if have else "none (train with --keep all or --keep best:K)"
        raise ModelNotFoundError(f"no weights of epoch {epoch} kept beside {path}; kept epochs: {listed}")
    return str(p)


def warp_chips(x: np.ndarray, dx: float, dy: float, scale: float, angle: float) -> np.ndarray:
    """Chips (N, C, S, S) shifted by (dx, dy) px, scaled and rotated (degrees) about their centre; edges replicated."""
    import cv2

    if (dx, dy, scale, angle) == (0, 0, 1, 0):
        return x
    s = x.shape[-1]
    m = cv2.getRotationMatrix2D(((s - 1) / 2, (s - 1) / 2), angle, scale)
    m[:, 2] += (dx, dy)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[i, c] = cv2.warpAffine(x[i, c], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def tta_warps(shift: float = 0.0, scale: float = 0.0, rotate: float = 0.0) -> list[list[float]]:
    """The identity plus, for each non-zero amount, the two opposite warps: shifts in x and y, zoom, rotation."""
    v = [[0.0, 0.0, 1.0, 0.0]]
    if shift:
        v += [[shift, 0.0, 1.0, 0.0], [-shift, 0.0, 1.0, 0.0], [0.0, shift, 1.0, 0.0], [0.0, -shift, 1.0, 0.0]]
    if scale:
        v += [[0.0, 0.0, 1.0 + scale, 0.0], [0.0, 0.0, 1.0 - scale, 0.0]]
    if rotate:
        v += [[0.0, 0.0, 1.0, rotate], [0.0, 0.0, 1.0, -rotate]]
    return v


def chips_to_input(chips: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, C) -> float32 (N, C, S, S) in [0, 1]."""
    return np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def outputs_to_attributes(out: dict[str, np.ndarray], classes: dict[str, list[str]], tasks: list[str], model: str) -> list[dict[str, Attribute]]:
    n = len(next(iter(out.values())))
    res: list[dict[str, Attribute]] = [{} for _ in range(n)]
    for t in tasks:
        if t not in out:
            continue
        for i in range(n):
            if classes.get(t):
                res[i][t] = probs_attribute(out[t][i], classes[t], model)
            else:
                res[i][t] = Attribute(float(np.asarray(out[t][i]).reshape(-1)[0]), model)
    return res


def _resolve(spec: str):
    if spec.lower().endswith(".onnx") or os.path.isfile(spec):
        return "onnx", {"path": spec}
    return None


ATTRIBUTE_MODELS.add_resolver(_resolve)
