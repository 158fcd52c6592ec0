"""facelab: offline face detection, landmarks, alignment, embeddings and verification.

>>> import facelab
>>> faces = facelab.detect("group.jpg")
>>> facelab.verify("obama.jpg", "obama2.jpg").same
True
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import align, analyze, detect, distance, embed, landmarks, largest_face, save_crops, verify
from .draw import draw_faces, save_image
from .errors import (
    FacelabError,
    InputError,
    ModelChecksumError,
    ModelError,
    ModelNotFoundError,
    NoFaceError,
)
from .io import iter_image_paths, load_image
from .pipeline import FaceAnalysis
from .types import Attribute, Box, Candidate, Embedding, Face, Identity, ImageResult, Landmarks, Verification, to_json

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
    "ModelChecksumError",
    "ModelError",
    "ModelNotFoundError",
    "NoFaceError",
    "Verification",
    "__version__",
    "align",
    "save_crops",
    "analyze",
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
