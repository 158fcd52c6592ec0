"""Drop-in replacements for other face libraries' Python APIs and command lines.

* :mod:`facelab.compat.face_recognition`: the ``face_recognition`` package
  (1.3.0): same functions, same numbers, faster.
"""

from __future__ import annotations

import importlib
import sys

_FACE_RECOGNITION_MODULES = ("", ".api", ".face_recognition_cli", ".face_detection_cli")


def install_face_recognition() -> None:
    """Make ``import face_recognition`` (and its submodules) load :mod:`facelab.compat.face_recognition`.

    For code you cannot edit (a third-party library that imports
    ``face_recognition`` itself).  Call it before that code is imported.  An
    already imported real ``face_recognition`` is replaced in ``sys.modules``.
    """
    for suffix in _FACE_RECOGNITION_MODULES:
        sys.modules["face_recognition" + suffix] = importlib.import_module("facelab.compat.face_recognition" + suffix)


__all__ = ["install_face_recognition"]
