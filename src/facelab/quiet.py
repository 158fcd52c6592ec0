"""Hushing what third-party libraries print on their own (the command line asks for it unless ``-v``).

:func:`hush_third_party` turns Python warnings off (here and, through ``PYTHONWARNINGS``, in
worker processes), sets OpenCV's and TensorFlow's native logs to errors only, and sets
``FACELAB_QUIET=1``, under which :func:`native_stderr_hushed` hides what native code writes to
the stderr file descriptor while facelab loads such a library's model (TFLite's "Created
TensorFlow Lite XNNPACK delegate" line).  Library users see everything unless they call it.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

QUIET_ENV = "FACELAB_QUIET"


def hush_third_party() -> None:
    """Silence third-party warnings and logs in this process and the processes it starts."""
    os.environ[QUIET_ENV] = "1"
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.simplefilter("ignore")
    if "cv2" in sys.modules:  # already imported: its log level was read at import
        try:
            sys.modules["cv2"].utils.logging.setLogLevel(sys.modules["cv2"].utils.logging.LOG_LEVEL_ERROR)
        except AttributeError:
            pass


def unhush_third_party() -> None:
    """Undo :func:`hush_third_party` (``facelab -v``; also when an earlier call in this process hushed)."""
    if os.environ.pop(QUIET_ENV, None) is not None and os.environ.get("PYTHONWARNINGS") == "ignore":
        os.environ.pop("PYTHONWARNINGS")
    warnings.resetwarnings()


@contextmanager
def native_stderr_hushed() -> Iterator[None]:
    """With ``FACELAB_QUIET=1``: native writes to file descriptor 2 go nowhere inside the block."""
    if os.environ.get(QUIET_ENV) != "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no real stderr (embedded): nothing to hide
        yield
        return
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


__all__ = ["QUIET_ENV", "hush_third_party", "native_stderr_hushed", "unhush_third_party"]
