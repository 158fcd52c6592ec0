"""A drop-in for the ``face_recognition`` package (1.3.0), on facelab's models and speed.

Change one line and keep the rest of the code::

    import facelab.compat.face_recognition as face_recognition

    image = face_recognition.load_image_file("obama.jpg")
    locations = face_recognition.face_locations(image)             # [(top, right, bottom, left)]
    encodings = face_recognition.face_encodings(image, locations)  # [128-d float64 arrays]

The submodules mirror the original's: :mod:`.api`, :mod:`.face_recognition_cli`
and :mod:`.face_detection_cli` (``click`` commands, also ``facelab compat
face_recognition`` / ``facelab compat face_detection``).  Third-party code that
does ``import face_recognition`` itself can be pointed here with
:func:`facelab.compat.install_face_recognition`.
"""

from __future__ import annotations

__author__ = "facelab (API of face_recognition by Adam Geitgey, MIT)"
#: the face_recognition release whose API this package reproduces
__version__ = "1.3.0"

from . import api
from .api import (
    batch_face_locations,
    compare_faces,
    face_distance,
    face_encodings,
    face_landmarks,
    face_locations,
    load_image_file,
)

__all__ = [
    "api",
    "batch_face_locations",
    "compare_faces",
    "face_distance",
    "face_encodings",
    "face_landmarks",
    "face_locations",
    "load_image_file",
]
