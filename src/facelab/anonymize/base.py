"""Covering faces: the region (a rotated ellipse or rectangle that follows the face's roll) and the fill methods.

Every method computes the covered pixels from coarse block means (or a constant) only, so the output
holds no original pixel of a covered face: ``pixelate`` keeps one mean colour per cell of at least 1/8 of
the face, ``blur`` smooths those same cells (it looks like a blur, but there is nothing finer underneath
for a deconvolution to bring back), ``solid`` paints a colour and ``mask`` paints the face's mean colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..types import Box, Face

METHODS: tuple[str, ...] = ("blur", "pixelate", "solid", "mask")
SHAPES: tuple[str, ...] = ("ellipse", "rect")
#: cells per face side: pixelate cells are at least 1/CELLS of the face box's larger side
CELLS = 8
#: the blur's cells are coarser (1/6): with 1/8, Wiener deconvolution of Obama's blurred face in
#: samples/photos/obama_and_biden.jpg came back to dlib distance 0.58 of the original (the match threshold is 0.6)
BLUR_CELLS = 6
#: pixelate: spread of each cell's colour over its neighbours, in cells
PIXELATE_SPREAD = 1.0
#: the ellipse's axes are the (margin-grown) box's sides times this: it then holds the box's corners' neighbourhood
ELLIPSE_SCALE = 1.25


@dataclass
class CoveredFace:
    """One covered region: a rotated ellipse/rectangle centred on a face."""

    center: tuple[float, float]
    size: tuple[float, float]  # full width, height of the region in the face's own frame
    angle: float  # degrees, the face's roll (clockwise on screen, image y down)
    shape: str
    method: str
    face: Face
    name: str | None = None  # the identity, when a gallery was used

    def polygon(self, n: int = 36) -> np.ndarray:
        """The region's outline in image pixels (N x 2)."""
        cx, cy = self.center
        w, h = self.size[0] / 2.0, self.size[1] / 2.0
        if self.shape == "rect":
            pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], np.float64)
        else:
            t = np.linspace(0, 2 * math.pi, n, endpoint=False)
            pts = np.stack([w * np.cos(t), h * np.sin(t)], axis=1)
        a = math.radians(self.angle)
        c, s = math.cos(a), math.sin(a)
        return np.stack([c * pts[:, 0] - s * pts[:, 1], s * pts[:, 0] + c * pts[:, 1]], axis=1) + (cx, cy)

    def draw_mask(self, mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
        """Set the region's pixels of a uint8 mask to 255 (returns the mask); ``offset``: the mask's top-left in the image."""
        ox, oy = offset
        if self.shape == "rect":
            cv2.fillPoly(mask, [np.round((self.polygon() - (ox, oy)) * 16).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=4)
        else:
            cv2.ellipse(
                mask, (int(round((self.center[0] - ox) * 16)), int(round((self.center[1] - oy) * 16))),
                (int(round(self.size[0] * 8)), int(round(self.size[1] * 8))), self.angle, 0, 360, 255, -1, cv2.LINE_8, 4,
            )
        return mask

    def bounds(self) -> Box:
        p = self.polygon()
        return Box(float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "center": [round(float(v), 2) for v in self.center],
            "size": [round(float(v), 2) for v in self.size],
            "angle": round(float(self.angle), 2),
            "shape": self.shape,
            "method": self.method,
            "face": {"box": self.face.box.to_dict(), "score": round(float(self.face.score), 4), "rotation": round(float(self.face.rotation), 2)},
        }
        if self.name is not None:
            d["name"] = self.name
        return d


@dataclass
class Anonymized:
    """An anonymised image, the regions covered, and the faces left visible (``keep_known``/``only_known``)."""

    image: np.ndarray
    covered: list[CoveredFace] = field(default_factory=list)
    kept: list[Face] = field(default_factory=list)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON sidecar: what was covered (and what was left visible, by name)."""
        return {
            "source": self.source,
            "width": int(self.image.shape[1]),
            "height": int(self.image.shape[0]),
            "covered": [c.to_dict() for c in self.covered],
            "kept": [{"box": f.box.to_dict(), "name": f.identity.name if f.identity else None} for f in self.kept],
        }


def face_roll(face: Face) -> float:
    """The face's roll in degrees (clockwise on screen): from its eye points when it has them, else the sweep's angle."""
    pts = face.landmarks if face.landmarks is not None else face.keypoints
    if pts is not None:
        try:
            le, re = pts.eye_centers()
            return math.degrees(math.atan2(float(re[1] - le[1]), float(re[0] - le[0])))
        except (KeyError, IndexError, ValueError):
            pass
    return -float(face.rotation)


def region_of(face: Face, *, margin: float = 0.25, shape: str = "ellipse", method: str = "blur", angle: float | None = None) -> CoveredFace:
    """The region covering ``face``: its box grown by ``margin`` on each side, turned with the face's roll."""
    if shape not in SHAPES:
        raise InputError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    if margin < 0:
        raise InputError(f"margin must be >= 0, not {margin}")
    grow = 1.0 + 2.0 * float(margin)
    k = ELLIPSE_SCALE if shape == "ellipse" else 1.0
    size = (face.box.width * grow * k, face.box.height * grow * k)
    return CoveredFace(face.box.center, size, face_roll(face) if angle is None else float(angle), shape, method, face)


def _block_means(crop: np.ndarray, cell: int) -> np.ndarray:
    """Mean colour per cell x cell block (edge blocks: mean of what is there), one value per block."""
    h, w = crop.shape[:2]
    gh, gw = -(-h // cell), -(-w // cell)
    pad = np.pad(crop.astype(np.float64), ((0, gh * cell - h), (0, gw * cell - w), (0, 0)))
    ones = np.pad(np.ones((h, w), np.float64), ((0, gh * cell - h), (0, gw * cell - w)))
    s = pad.reshape(gh, cell, gw, cell, -1).sum(axis=(1, 3))
    n = ones.reshape(gh, cell, gw, cell).sum(axis=(1, 3))
    return s / n[..., None]


def cell_size(face: Face, method: str = "pixelate") -> int:
    """Cell side: at least 1/CELLS (pixelate) or 1/BLUR_CELLS (blur) of the face box's larger side, at least 2 px."""
    n = BLUR_CELLS if method == "blur" else CELLS
    return max(2, int(math.ceil(max(face.box.width, face.box.height) / n)))


def fill(crop: np.ndarray, method: str, cell: int, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """The covering pixels for a crop (same shape), computed only from block means or a constant."""
    h, w = crop.shape[:2]
    if method == "solid":
        return np.broadcast_to(np.asarray(color, np.uint8), crop.shape).copy()
    if method == "mask":
        mean = crop.reshape(-1, crop.shape[2]).mean(axis=0)
        return np.broadcast_to(np.clip(np.round(mean), 0, 255).astype(np.uint8), crop.shape).copy()
    means = _block_means(crop, cell)
    if method == "pixelate":
        # each cell's colour also takes in its neighbours' (Gaussian over the grid, sigma PIXELATE_SPREAD cells):
        # plain 1/8-face mosaics still read as faces to a CNN detector; these do not (tests/test_anonymize.py)
        means = cv2.GaussianBlur(means.astype(np.float32), (0, 0), PIXELATE_SPREAD, borderType=cv2.BORDER_REPLICATE).reshape(means.shape)
        up = np.repeat(np.repeat(means, cell, axis=0), cell, axis=1)[:h, :w]
        return np.clip(np.round(up), 0, 255).astype(np.uint8)
    if method == "blur":
        # the cells' colours mixed with their neighbours' first, as for pixelate: deconvolving the final
        # Gaussian otherwise gives back a plain 6x6 mosaic, which BlazeFace still reads as a face
        means = cv2.GaussianBlur(means.astype(np.float32), (0, 0), PIXELATE_SPREAD, borderType=cv2.BORDER_REPLICATE).reshape(means.shape)
        gh, gw = means.shape[:2]
        # cell centres -> a smooth surface through them, then a Gaussian over a cell
        up = cv2.resize(means.astype(np.float32), (gw * cell, gh * cell), interpolation=cv2.INTER_LINEAR)[:h, :w]
        up = cv2.GaussianBlur(up, (0, 0), sigmaX=cell * 0.6, borderType=cv2.BORDER_REPLICATE)
        return np.clip(np.round(up), 0, 255).astype(np.uint8)
    raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")


def _polygons_mask(shape: tuple[int, int], faces: list[Face], offset: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for f in faces:
        cv2.fillPoly(m, [np.round((f.polygon() - offset) * 16).astype(np.int32)], 255, shift=4)
    return m > 0


def cover(image: np.ndarray, regions: list[CoveredFace], *, color: tuple[int, int, int] = (0, 0, 0), keep: list[Face] = ()) -> np.ndarray:
    """A copy of ``image`` with every region filled by its method (hard edges: no original pixel blends in).

    ``keep``: faces left visible: a region's margin does not spill onto their boxes (a covered face's own
    box is always covered in full).
    """
    covered_boxes = [r.face for r in regions]
    out = np.array(image, copy=True)
    if out.ndim == 2:
        out = out[..., None]
    H, W = out.shape[:2]
    for r in regions:
        b = r.bounds()
        x0, y0 = max(0, int(math.floor(b.left)) - 1), max(0, int(math.floor(b.top)) - 1)
        x1, y1 = min(W, int(math.ceil(b.right)) + 2), min(H, int(math.ceil(b.bottom)) + 2)
        if x1 <= x0 or y1 <= y0:
            continue
        m = r.draw_mask(np.zeros((y1 - y0, x1 - x0), np.uint8), (x0, y0)) > 0
        if keep:
            m &= ~(_polygons_mask(m.shape, list(keep), (x0, y0)) & ~_polygons_mask(m.shape, covered_boxes, (x0, y0)))
        if not m.any():
            continue
        crop = out[y0:y1, x0:x1]
        filled = fill(crop, r.method, cell_size(r.face, r.method), color)
        crop[m] = filled[m]
    return out[..., 0] if image.ndim == 2 else out
