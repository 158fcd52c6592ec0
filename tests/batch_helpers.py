"""A job for the runner's crash tests: it kills its own worker process on a 7x7 image.

A stand-in for a crash in native code (a segfault in a decoder, the OOM killer):
the process dies without a Python exception.  Other images go through the real
HOG detector.  Imported by spawned workers (tests/ is on their sys.path).
"""

from __future__ import annotations

import os


class CrashOnTiny:
    def __call__(self, image):
        if image.shape[:2] == (7, 7):
            os._exit(3)
        from facelab.detect import detect

        return detect(image, "hog", rotate=False)
