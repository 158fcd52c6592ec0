"""BlazeFace full-range in PyTorch, built from the ``.tflite`` file's own graph and weights.

Needs ``torch`` (the ``train`` extra); facelab's runtime never imports this
module.  It exists to fine-tune the network (:mod:`facelab.train.blazeface`)
and export the result to ONNX.

:func:`read_tflite_graph` lists the operators of the MediaPipe model (conv,
depthwise conv, ReLU, add, max-pool, channel pad, bilinear 2x resize, reshape)
with their tensors' shapes and the fp16 weights read from the file;
:class:`BlazeFaceNet` runs the same graph with torch layers.  The network is
fully convolutional: it takes any NCHW input whose sides are multiples of 32
(not only 192x192) and returns, per 4x4-pixel cell of the input, 16 box /
keypoint regressors (pixels, relative to the cell centre) and one score logit.
Input values are RGB scaled to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: Operators the full-range graph uses (after the weights' DEQUANTIZE nodes are folded).
_SUPPORTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "RELU", "ADD", "MAX_POOL_2D", "PAD", "RESIZE_BILINEAR", "RESHAPE"}


@dataclass
class GraphOp:
    kind: str
    inputs: list[int]  # activation tensor ids
    output: int
    in_shape: tuple[int, ...]  # NHWC of the first input at 192x192
    out_shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_tflite_graph(path: str | Path) -> tuple[int, list[GraphOp], list[int]]:
    """``(input tensor id, ops, [regressor id, classifier id])`` of a BlazeFace ``.tflite`` file."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    it.allocate_tensors()
    shapes = {t["index"]: tuple(int(v) for v in t["shape"]) for t in it.get_tensor_details()}
    consts: dict[int, np.ndarray] = {}
    ops: list[GraphOp] = []
    for o in it._get_ops_details():
        name, ins, outs = o["op_name"], [int(i) for i in o["inputs"]], [int(i) for i in o["outputs"]]
        if name == "DEQUANTIZE":
            consts[outs[0]] = it.get_tensor(ins[0]).astype(np.float32)
            continue
        if name not in _SUPPORTED:
            raise ValueError(f"{path}: operator {name} is not part of BlazeFace full-range")
        op = GraphOp(name, [], outs[0], shapes[ins[0]], shapes[outs[0]])
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            op.inputs = [ins[0]]
            op.weight, op.bias = consts[ins[1]], consts[ins[2]]
        elif name == "ADD":
            op.inputs = ins
        elif name == "PAD":
            op.inputs = [ins[0]]
            op.extra["pad"] = it.get_tensor(ins[1]).tolist()
        else:
            op.inputs = [ins[0]]
        ops.append(op)
    inp = int(it.get_input_details()[0]["index"])
    outs = [int(d["index"]) for d in it.get_output_details()]
    return inp, ops, outs


class BlazeFaceNet(nn.Module):
    """The BlazeFace full-range graph as a torch module (NCHW float input in [-1, 1]).

    ``forward`` returns ``(regressors (N, H/4*W/4, 16), logits (N, H/4*W/4))``,
    cells in row-major order.
    """

    def __init__(self, spec: tuple[int, list[GraphOp], list[int]]):
        super().__init__()
        self.input_id, ops, self.output_ids = spec
        self.layers = nn.ModuleList()
        self.plan: list[tuple[str, list[str], str, dict[str, Any]]] = []
        for k, op in enumerate(ops):
            ins = [str(i) for i in op.inputs]
            out = str(op.output)
            extra: dict[str, Any] = {}
            if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w = torch.from_numpy(op.weight.copy())
                stride = op.in_shape[1] // op.out_shape[1]
                if op.kind == "CONV_2D":  # tflite (O, kh, kw, I) -> torch (O, I, kh, kw)
                    w = w.permute(0, 3, 1, 2)
                    conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=stride, bias=True)
                else:  # (1, kh, kw, C) -> (C, 1, kh, kw)
                    w = w.permute(3, 0, 1, 2)
                    conv = nn.Conv2d(w.shape[0], w.shape[0], tuple(w.shape[2:]), stride=stride, groups=w.shape[0], bias=True)
                with torch.no_grad():
                    conv.weight.copy_(w)
                    conv.bias.copy_(torch.from_numpy(op.bias.copy()))
                extra["layer"] = len(self.layers)
                extra["same_pad"] = _same_padding(int(w.shape[-1]), stride)
                self.layers.append(conv)
            elif op.kind == "PAD":
                extra["channels"] = int(op.extra["pad"][3][1])
            self.plan.append((op.kind, ins, out, extra))
        self.head_ids = [str(o) for o in self.output_ids]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        env: dict[str, torch.Tensor] = {str(self.input_id): x}
        for kind, ins, out, extra in self.plan:
            a = env[ins[0]]
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                pad = extra["same_pad"]
                if any(pad):
                    a = F.pad(a, pad)
                y = self.layers[extra["layer"]](a)
            elif kind == "RELU":
                y = F.relu(a)
            elif kind == "ADD":
                y = a + env[ins[1]]
            elif kind == "MAX_POOL_2D":
                y = F.max_pool2d(a, 2, 2)
            elif kind == "PAD":
                y = F.pad(a, (0, 0, 0, 0, 0, extra["channels"]))
            elif kind == "RESIZE_BILINEAR":
                # 2x bilinear with half-pixel centres (matches the tflite op to ~1e-5)
                y = F.interpolate(a, scale_factor=2.0, mode="bilinear", align_corners=False)
            elif kind == "RESHAPE":
                y = a  # flattening happens below
            else:  # pragma: no cover - rejected in read_tflite_graph
                raise RuntimeError(kind)
            env[out] = y
        reg, cls = (env[h] for h in self.head_ids)
        n = x.shape[0]
        reg = reg.permute(0, 2, 3, 1).reshape(n, -1, 16)
        cls = cls.permute(0, 2, 3, 1).reshape(n, -1)
        return reg, cls


def _same_padding(k: int, stride: int) -> tuple[int, int, int, int]:
    """TF "SAME" padding (left, right, top, bottom) for even input sizes."""
    if k == 1:
        return (0, 0, 0, 0)
    total = max(k - stride, 0)
    return (total // 2, total - total // 2, total // 2, total - total // 2)


def load_pretrained(path: str | Path) -> BlazeFaceNet:
    """The network with MediaPipe's weights from ``face_detection_full_range.tflite``."""
    return BlazeFaceNet(read_tflite_graph(path))
