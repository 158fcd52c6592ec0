"""Keypoint-aware face augmentation (albumentations), with a landmark-driven pose warp.

Every transform moves the landmarks with the image:

* geometry: rotation, scale, shift (``A.Affine``); horizontal flip
  (``A.HorizontalFlip``) followed by the left/right index swap of the 68-point
  layout (:data:`facelab.landmarks.points.FLIP_68`), since a mirrored left eye
  is a right eye;
* photometry: brightness/contrast, blur, noise; occlusion (``A.CoarseDropout``,
  points stay where they are: an occluded eye is still there);
* pose: :func:`pose_warp` turns the face a little left or right (a cylinder
  model of the face moves the 68 points, a thin-plate spline warps the image
  so that the points land where they were moved).

>>> aug = Augmenter(preset("default"), seed=0)
>>> image2, points2 = aug(image, points)
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..landmarks.points import FLIP_68


@dataclass(frozen=True)
class AugmentConfig:
    """What to vary and by how much (0 or 0.0 turns a transform off)."""

    rotate: float = 15.0  # degrees, uniform in [-rotate, rotate]
    scale: float = 0.10  # uniform in [1 - scale, 1 + scale]
    shift: float = 0.05  # fraction of the image side
    flip: float = 0.5  # probability
    brightness: float = 0.25  # brightness and contrast limits
    contrast: float = 0.25
    blur: float = 0.2  # probability of a Gaussian or motion blur
    noise: float = 0.2  # probability of Gaussian noise
    occlusion: float = 0.2  # probability of 1-2 random blocks
    pose: float = 0.3  # probability of a landmark-driven yaw warp
    pose_degrees: float = 20.0  # largest yaw of the warp

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    "light": AugmentConfig(rotate=8, scale=0.05, shift=0.03, flip=0.5, brightness=0.15, contrast=0.15, blur=0.1, noise=0.1, occlusion=0.0, pose=0.0),
    "default": AugmentConfig(),
    "strong": AugmentConfig(rotate=30, scale=0.15, shift=0.08, flip=0.5, brightness=0.35, contrast=0.35, blur=0.3, noise=0.3, occlusion=0.4, pose=0.5, pose_degrees=30),
}


def preset(name: str, **overrides: float) -> AugmentConfig:
    """A named configuration (``none``, ``light``, ``default``, ``strong``) with optional overrides."""
    if name not in PRESETS:
        raise InputError(f"unknown augmentation preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides) if overrides else PRESETS[name]


class Augmenter:
    """Apply an :class:`AugmentConfig` to (image, points) pairs; ``seed`` makes the stream reproducible.

    ``points`` are (N, 2) pixel coordinates; the 68-point layout is needed for
    the flip swap and the pose warp (other layouts: flip and pose are skipped).
    ``geometry=False`` leaves rotation/scale/shift to the caller (the landmark
    trainer folds them into its face crop instead).
    """

    def __init__(self, config: AugmentConfig = AugmentConfig(), *, seed: int | None = None, geometry: bool = True):
        import albumentations as A

        self.config = c = config
        self.rng = np.random.default_rng(seed)
        kp = A.KeypointParams(format="xy", remove_invisible=False)
        s = None if seed is None else int(seed)
        geo = []
        if geometry and (c.rotate or c.scale or c.shift):
            geo.append(
                A.Affine(
                    scale=(1 - c.scale, 1 + c.scale), translate_percent=(-c.shift, c.shift), rotate=(-c.rotate, c.rotate),
                    border_mode=cv2.BORDER_REPLICATE, p=1.0,
                )
            )
        photo: list[Any] = []
        if c.brightness or c.contrast:
            photo.append(A.RandomBrightnessContrast(brightness_limit=c.brightness, contrast_limit=c.contrast, p=0.8))
        if c.blur:
            photo.append(A.OneOf([A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.5)), A.MotionBlur(blur_limit=(3, 7))], p=c.blur))
        if c.noise:
            photo.append(A.GaussNoise(std_range=(0.02, 0.08), p=c.noise))
        if c.occlusion:
            photo.append(A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.3), hole_width_range=(0.1, 0.3), fill="random_uniform", p=c.occlusion))
        self._geo = A.Compose(geo, keypoint_params=kp, seed=s) if geo else None
        # photometric transforms and occlusion leave the points where they are: image only
        self._photo = A.Compose(photo, seed=None if s is None else s + 1) if photo else None
        self._flip = A.Compose([A.HorizontalFlip(p=1.0)], keypoint_params=kp, seed=s)

    def __call__(self, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        pts = np.asarray(points, np.float32)[:, :2]
        if len(pts) == 68 and c.pose and self.rng.random() < c.pose:
            image, pts = pose_warp(image, pts, float(self.rng.uniform(-c.pose_degrees, c.pose_degrees)))
        if self._geo is not None:
            image, pts = _run(self._geo, image, pts)
        if c.flip and len(pts) == 68 and self.rng.random() < c.flip:
            image, pts = hflip(image, pts, self._flip)
        if self._photo is not None:
            image = self._photo(image=image)["image"]
        return image, pts


def _run(compose: Any, image: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = compose(image=image, keypoints=pts)
    return out["image"], np.asarray(out["keypoints"], np.float32).reshape(-1, 2)


def hflip(image: np.ndarray, points: np.ndarray, compose: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an image and its 68 points: x mirrored by albumentations, then left/right indices swapped."""
    if compose is None:
        import albumentations as A

        compose = A.Compose([A.HorizontalFlip(p=1.0)], keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))
    out, pts = _run(compose, image, np.asarray(points, np.float32)[:, :2])
    if len(pts) == 68:
        pts = pts[FLIP_68]
    return out, pts


# --- pose ---------------------------------------------------------------------------

# how far each point stands out of the face's cylinder (fraction of its radius): the nose most
_DEPTH = np.zeros(68, np.float32)
_DEPTH[27:31] = [0.15, 0.25, 0.35, 0.45]
_DEPTH[31:36] = [0.25, 0.3, 0.35, 0.3, 0.25]
_DEPTH[48:68] = 0.1


def yaw_points(points: np.ndarray, degrees: float) -> np.ndarray:
    """68 points moved as if the head turned by ``degrees`` about its vertical axis (cylinder model)."""
    p = np.asarray(points, np.float32)[:, :2].copy()
    xmid = float(p[27:31, 0].mean())
    r = max(1e-3, float(p[0:17, 0].max() - p[0:17, 0].min()) / 2.0)
    t = math.radians(degrees)
    u = np.clip((p[:, 0] - xmid) / r, -0.999, 0.999)
    phi = np.arcsin(u)
    # the turn fades towards the silhouette (phi -> ±90°): phi + t cos(phi) is monotonic, so points never fold over
    new = np.sin(phi + t * np.cos(phi))
    p[:, 0] = xmid + r * (new + _DEPTH * math.sin(t))
    return p


def pose_warp(image: np.ndarray, points: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` so its 68 landmarks move to :func:`yaw_points` (thin-plate spline; the border stays put)."""
    src = np.asarray(points, np.float32)[:, :2]
    dst = yaw_points(src, degrees)
    h, w = image.shape[:2]
    # fixed anchors on the border and a ring around the face keep the background still
    bx = np.linspace(0, w - 1, 5)
    by = np.linspace(0, h - 1, 5)
    border = np.array([(x, y) for x in bx for y in (0, h - 1)] + [(x, y) for y in by[1:-1] for x in (0, w - 1)], np.float32)
    cx, cy = src.mean(axis=0)
    rad = 0.9 * max(float(np.ptp(src[:, 0])), float(np.ptp(src[:, 1])))
    ang = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    ring = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1).astype(np.float32)
    ring = ring[(ring[:, 0] > 0) & (ring[:, 0] < w - 1) & (ring[:, 1] > 0) & (ring[:, 1] < h - 1)]
    ctrl_dst = np.concatenate([dst, border, ring])
    ctrl_src = np.concatenate([src, border, ring])
    # backward map: for every output pixel, where to sample in the input (TPS fitted dst -> src)
    # evaluate on a coarse grid placed so that cv2.resize's pixel-centre convention lands it on every pixel exactly
    step = 4
    nx, ny = -(-w // step), -(-h // step)
    gx, gy = np.meshgrid((np.arange(nx, dtype=np.float32) + 0.5) * step - 0.5, (np.arange(ny, dtype=np.float32) + 0.5) * step - 0.5)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    mapped = _tps(ctrl_dst, ctrl_src, grid).reshape(ny, nx, 2).astype(np.float32)
    full_x = cv2.resize(mapped[..., 0], (nx * step, ny * step), interpolation=cv2.INTER_LINEAR)[:h, :w]
    full_y = cv2.resize(mapped[..., 1], (nx * step, ny * step), interpolation=cv2.INTER_LINEAR)[:h, :w]
    out = cv2.remap(image, full_x.astype(np.float32), full_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, dst


def _tps(ctrl: np.ndarray, values: np.ndarray, query: np.ndarray, reg: float = 1e-3) -> np.ndarray:
    """Thin-plate spline through ``ctrl -> values`` (2-D), evaluated at ``query``."""
    c = ctrl.astype(np.float64)
    n = len(c)

    def kern(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = (a[:, None, 0] - b[None, :, 0]) ** 2 + (a[:, None, 1] - b[None, :, 1]) ** 2
        return 0.5 * d2 * np.log(np.maximum(d2, 1e-12))  # r^2 log r, 0 at r = 0

    k = kern(c, c) + reg * np.eye(n)
    p = np.hstack([np.ones((n, 1)), c])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    b = np.zeros((n + 3, 2))
    b[:n] = values
    coef = np.linalg.solve(a, b)
    q = query.astype(np.float64)
    return kern(q, c) @ coef[:n] + np.hstack([np.ones((len(q), 1)), q]) @ coef[n:]


# --- preview ------------------------------------------------------------------------


def preview_grid(
    image: np.ndarray, points: np.ndarray, config: AugmentConfig, path: str | os.PathLike[str], *, n: int = 16, seed: int = 0, tile: int = 192
) -> str:
    """A PNG grid: the original (top-left) and ``n - 1`` augmentations, landmarks drawn in the fixed colours."""
    aug = Augmenter(config, seed=seed)
    tiles = [_draw(image, points, tile)]
    for _ in range(n - 1):
        im, pts = aug(image, points)
        tiles.append(_draw(im, pts, tile))
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.full((rows * tile, cols * tile, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = t
    from ..draw import save_image

    return save_image(grid, path)


def _draw(image: np.ndarray, points: np.ndarray, tile: int) -> np.ndarray:
    from ..draw import landmark_colors
    from ..types import Landmarks

    h, w = image.shape[:2]
    s = tile / max(h, w)
    im = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if im.ndim == 2:
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2RGB)
    canvas = np.full((tile, tile, 3), 255, np.uint8)
    canvas[: im.shape[0], : im.shape[1]] = im
    pts = np.asarray(points, np.float32)[:, :2] * s
    lm = Landmarks(pts, "aug", "68" if len(pts) == 68 else "")
    for (x, y), col in zip(np.round(pts).astype(int), landmark_colors(lm)):
        cv2.circle(canvas, (int(x), int(y)), 2, tuple(int(v) for v in col), -1, cv2.LINE_AA)
    return canvas


__all__ = ["AugmentConfig", "Augmenter", "PRESETS", "hflip", "pose_warp", "preset", "preview_grid", "yaw_points"]
