"""Exception types raised by facelab.

Every error a user can cause (bad image, bad URL, no face, missing model) has its
own type so callers can catch exactly what they expect.  All derive from
:class:`FacelabError`.  The CLI maps :class:`InputError` to exit code 2 and
:class:`NoFaceError` to exit code 1; the REST API maps them to 4xx responses.
"""

from __future__ import annotations


class FacelabError(Exception):
    """Base class of every facelab error.

    ``code`` is a stable, machine-readable identifier (used by the REST API and
    the CLI's JSON output); the message is for humans.
    """

    code = "facelab_error"

    def __init__(self, message: str, *, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
        self.reason = message


# --- bad input -------------------------------------------------------------------


class InputError(FacelabError, ValueError):
    """The input given to facelab cannot be used (file, bytes, URL, array, JSON...)."""

    code = "bad_input"


class ImageNotFoundError(InputError, FileNotFoundError):
    code = "image_not_found"


class EmptyImageError(InputError):
    code = "empty_image"


class CorruptImageError(InputError):
    """The data looks like an image but cannot be decoded (truncated, damaged)."""

    code = "corrupt_image"


class UnsupportedImageError(InputError):
    """The data is not an image in a format facelab reads."""

    code = "unsupported_image"


class ImageTooLargeError(InputError):
    """The image has more pixels (or bytes) than the configured cap (decompression bombs)."""

    code = "image_too_large"


class URLError(InputError):
    """An http(s) URL could not be fetched as an image."""

    code = "bad_url"


class URLTimeoutError(URLError):
    code = "url_timeout"


class HTTPStatusError(URLError):
    code = "url_http_error"

    def __init__(self, message: str, *, source: str | None = None, status: int = 0):
        super().__init__(message, source=source)
        self.status = status


class URLContentTypeError(URLError):
    code = "url_not_an_image"


class URLNotAllowedError(URLError):
    """The URL (or a redirect it sent) points at a loopback, private or otherwise non-public address."""

    code = "url_not_allowed"


# --- faces -----------------------------------------------------------------------


class NoFaceError(FacelabError):
    """An operation needed a face and none was found."""

    code = "no_face"


# --- models and backends ---------------------------------------------------------


class ModelError(FacelabError):
    code = "model_error"


class ModelNotFoundError(ModelError):
    """A model file is missing: the message names the package to install or the file to pass."""

    code = "model_not_found"


class ModelChecksumError(ModelError):
    """A model file does not match the SHA-256 recorded in facelab."""

    code = "model_checksum"


class LicenceError(ModelError):
    """A model is unavailable under the licence policy in force (``FACELAB_LICENCE=commercial``)."""


class UnknownBackendError(FacelabError, ValueError):
    """A detector/landmarker/embedder/store name that is not registered."""

    code = "unknown_backend"


class ModelMismatchError(FacelabError, ValueError):
    """Two embeddings from different models were compared."""

    code = "model_mismatch"


# --- galleries (stores of enrolled people) ---------------------------------------


class UnknownPersonError(InputError, KeyError):
    """A person's name that is not in the gallery."""

    code = "unknown_person"

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class DuplicateFaceError(InputError):
    """An image (same content hash) already enrolled under another person's name."""

    code = "duplicate_face"


class NothingEvaluatedError(InputError):
    """An evaluation in which no item could be scored (every URL dead, every face missing)."""

    code = "nothing_evaluated"


class StoreError(FacelabError):
    """A gallery store cannot be opened or written (bad URL, unreachable server, damaged file)."""

    code = "store_error"


class SchemaVersionError(StoreError):
    """The gallery was written by a newer facelab (a schema version this one does not know)."""

    code = "schema_too_new"


class StoreLockedError(StoreError):
    """Another process holds a lock on the gallery longer than the timeout."""

    code = "store_locked"


class StoreReadOnlyError(StoreError):
    """The gallery is read-only (file permissions, read-only mode or server role)."""

    code = "store_read_only"


class EmptyGalleryError(InputError):
    """Identification was asked of a gallery with nobody enrolled."""

    code = "empty_gallery"


# --- video -----------------------------------------------------------------------


class VideoError(InputError):
    """A video source (file, webcam index, stream URL) cannot be opened or read, or a video output cannot be written."""

    code = "bad_video"
