"""Loading images from anywhere: files, folders, http(s) URLs, bytes, arrays.

Every loader returns an RGB ``uint8`` array of shape ``(height, width, 3)``,
turned upright by its EXIF orientation.  Every failure raises a specific
:class:`facelab.errors.InputError` subclass whose message names the source and
the reason.
"""

from .image import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    as_image,
    decode_image,
    describe_source,
    load_image,
    to_rgb_array,
)
from .paths import facelab_home, iter_image_paths, looks_like_image
from .url import fetch_url, is_url

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "as_image",
    "decode_image",
    "describe_source",
    "facelab_home",
    "fetch_url",
    "is_url",
    "iter_image_paths",
    "load_image",
    "looks_like_image",
    "to_rgb_array",
]
