"""facelab: offline face detection, landmarks, alignment, embeddings and verification.

>>> import facelab
>>> faces = facelab.detect("group.jpg")
>>> facelab.verify("obama.jpg", "obama2.jpg").same
True
"""

from __future__ import annotations

__version__ = "0.1.0"

from .anonymize import anonymize  # the function; the package stays importable as facelab.anonymize.*
from .api import align, analyze, detect, distance, embed, landmarks, largest_face, save_crops, verify
from .draw import draw_faces, save_image
from .errors import (
    FacelabError,
    InputError,
    LicenceError,
    ModelChecksumError,
    ModelError,
    ModelNotFoundError,
    NoFaceError,
)
from .io import iter_image_paths, load_image
from .pipeline import FaceAnalysis
from .types import Attribute, Box, Candidate, Embedding, Face, Identity, ImageResult, Landmarks, Quality, Verification, to_json

__all__ = [
    "Attribute",
    "Box",
    "Candidate",
    "Embedding",
    "Face",
    "FaceAnalysis",
    "FacelabError",
    "Identity",
    "ImageResult",
    "InputError",
    "Landmarks",
    "LicenceError",
    "ModelChecksumError",
    "ModelError",
    "ModelNotFoundError",
    "NoFaceError",
    "Quality",
    "Verification",
    "__version__",
    "align",
    "save_crops",
    "analyze",
    "anonymize",
    "detect",
    "distance",
    "draw_faces",
    "embed",
    "iter_image_paths",
    "landmarks",
    "largest_face",
    "load_image",
    "save_image",
    "to_json",
    "verify",
]
