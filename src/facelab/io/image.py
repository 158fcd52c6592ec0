"""Decode images into upright RGB uint8 arrays, with clear errors."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import (
    CorruptImageError,
    EmptyImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    InputError,
    UnsupportedImageError,
)
from .url import fetch_url, is_url

#: Images with more pixels than this are refused (decompression-bomb guard).
DEFAULT_MAX_PIXELS = int(os.environ.get("FACELAB_MAX_PIXELS", 64_000_000))
#: Encoded images (files, bytes, downloads) larger than this are refused.
DEFAULT_MAX_BYTES = int(os.environ.get("FACELAB_MAX_BYTES", 64 * 1024 * 1024))

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".dib", ".pgm", ".ppm", ".pbm", ".pnm", ".tif", ".tiff"}
)

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image]

_FORMATS_HELP = "JPEG, PNG, WebP, GIF, BMP, TIFF or PGM/PPM"


def describe_source(source: Any) -> str:
    """A short human name of an image source, used in messages and results."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape))} {source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size[0]}x{source.size[1]}>"
    return f"<{type(source).__name__}>"


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 10.0,
) -> np.ndarray:
    """Load ``source`` as an upright RGB uint8 array ``(H, W, 3)``.

    ``source`` may be a file path, an ``http(s)://`` URL, encoded bytes, a numpy
    array (grey, RGB or RGBA; uint8, uint16 or float in [0, 1]) or a PIL image.
    """
    name = describe_source(source)
    if isinstance(source, np.ndarray):
        return to_rgb_array(source, source=name, max_pixels=max_pixels)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, name, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), source=name, max_pixels=max_pixels, max_bytes=max_bytes)
    if isinstance(source, (str, os.PathLike)):
        s = os.fspath(source)
        if isinstance(s, str) and is_url(s):
            data = fetch_url(s, timeout=timeout, max_bytes=max_bytes)
            return decode_image(data, source=s, max_pixels=max_pixels, max_bytes=max_bytes)
        return _load_file(Path(s), max_pixels, max_bytes)
    raise InputError(f"cannot load an image from a {type(source).__name__}; pass a path, URL, bytes, numpy array or PIL image")


def as_image(source: ImageSource) -> np.ndarray:
    """``source`` itself when it already is an RGB uint8 array, else :func:`load_image` of it."""
    if isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.ndim == 3 and source.shape[2] == 3:
        return source
    return load_image(source)


def _load_file(path: Path, max_pixels: int, max_bytes: int) -> np.ndarray:
    name = str(path)
    if not path.exists():
        raise ImageNotFoundError("no such file", source=name)
    if path.is_dir():
        raise InputError("is a folder, not an image (facelab.io.iter_image_paths lists the images in a folder)", source=name)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageTooLargeError(f"file is {size / 2**20:.0f} MiB, over the cap of {max_bytes / 2**20:.0f} MiB", source=name)
        data = path.read_bytes()
    except PermissionError:
        raise InputError("permission denied", source=name) from None
    except IsADirectoryError:
        raise InputError("is a folder, not an image", source=name) from None
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror or e})", source=name) from None
    return decode_image(data, source=name, max_pixels=max_pixels, max_bytes=max_bytes)


def decode_image(
    data: bytes,
    *,
    source: str = "<bytes>",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Decode encoded image bytes into an upright RGB uint8 array."""
    if not data:
        raise EmptyImageError("empty file (0 bytes)", source=source)
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{len(data) / 2**20:.0f} MiB of data, over the cap of {max_bytes / 2**20:.0f} MiB", source=source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"image is over the cap of {max_pixels / 1e6:.0f} MP ({e})", source=source) from None
    except UnidentifiedImageError:
        raise UnsupportedImageError(f"not an image, or not in a format facelab reads ({_FORMATS_HELP})", source=source) from None
    except Exception as e:  # PIL raises assorted errors on garbage headers
        raise CorruptImageError(f"cannot read the image header ({e})", source=source) from None
    return _pil_to_rgb(im, source, max_pixels)


def _pil_to_rgb(im: Image.Image, source: str, max_pixels: int) -> np.ndarray:
    w, h = im.size
    if w <= 0 or h <= 0:
        raise EmptyImageError("image has zero width or height", source=source)
    if w * h > max_pixels:
        raise ImageTooLargeError(
            f"{w}x{h} pixels ({w * h / 1e6:.1f} MP) is over the cap of {max_pixels / 1e6:.0f} MP (pass max_pixels to allow it)",
            source=source,
        )
    fmt = im.format or "image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
            im = ImageOps.exif_transpose(im) or im
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"image is over the cap of {max_pixels / 1e6:.0f} MP ({e})", source=source) from None
    except Exception as e:  # truncated/corrupt data: OSError, SyntaxError, ValueError...
        raise CorruptImageError(f"cannot decode {fmt} data, the file is truncated or damaged ({e})", source=source) from None
    return _pil_mode_to_rgb(im, source)


def _pil_mode_to_rgb(im: Image.Image, source: str) -> np.ndarray:
    mode = im.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return to_rgb_array(np.asarray(im), source=source)
    if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La") or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"))
        return to_rgb_array(rgba, source=source)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def to_rgb_array(arr: np.ndarray, *, source: str = "<array>", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Normalise a numpy image to RGB uint8 ``(H, W, 3)``.

    Grey ``(H, W)`` or ``(H, W, 1)`` is repeated to 3 channels; RGBA is composited
    on white; uint16 is scaled by 1/257; other integer types are clipped;
    floats are taken as [0, 1] when their maximum is at most 1, else [0, 255].
    """
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise InputError(f"array of shape {a.shape} is not an image (expected HxW, HxWx3 or HxWx4)", source=source)
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise EmptyImageError("image has zero width or height", source=source)
    if h * w > max_pixels:
        raise ImageTooLargeError(f"{w}x{h} pixels is over the cap of {max_pixels / 1e6:.0f} MP", source=source)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise InputError("array contains NaN or infinite values", source=source)
        scale = 255.0 if a.size and float(a.max()) <= 1.0 else 1.0
        a = np.clip(a * scale + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.integer) and a.size and int(a.max()) > 255 and int(a.max()) <= 65535:
            a = (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)  # 16-bit data in a wider int (PIL mode "I")
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(a)
