"""Choose how to resize an image before scanning it."""

from __future__ import annotations

import cv2
import numpy as np


def resized(image: np.ndarray, scale: float) -> tuple[float, int, np.ndarray]:
    """``(effective_scale, dlib_upsample, image_to_scan)`` for a wanted ``scale``.

    Upsampling by about 2x or 4x uses dlib's own pyramid (``dlib_upsample`` 1 or
    2, image unchanged); downsampling resizes with area interpolation; scales
    near 1 leave the image alone.
    """
    if scale >= 3.0:
        return 1.0, 2, image
    if scale >= 1.5:
        return 1.0, 1, image
    if scale > 0.85:
        return 1.0, 0, image
    h, w = image.shape[:2]
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return nw / w, 0, img


class PyramidScan:
    """Mixin for dlib-style backends: ``raw(image, upsample, threshold)`` gives dlib rectangles.

    ``_detect`` picks the scan scale (a fixed ``upsample``, or one chosen from
    ``min_face``), runs ``raw`` and maps the boxes back to the input image.
    """

    upsample: int | None = None

    def _detect(self, image: np.ndarray):
        from ..types import Box, Face

        if self.upsample is not None:
            scale, up, img = 1.0, int(self.upsample), image
        else:
            scale, up, img = resized(image, self.scan_scale(*image.shape[:2]))
        thr = 0.0 if self.threshold is None else float(self.threshold)
        return [Face(Box(l / scale, t / scale, r / scale, b / scale), float(c), self.name) for l, t, r, b, c in self.raw(img, up, thr)]
