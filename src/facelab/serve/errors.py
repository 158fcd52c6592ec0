"""HTTP errors: every failure is ``{"error": {"code", "message", "request_id"}}`` with a fitting status.

Bad input always gets a 4xx whose ``code`` is the :class:`facelab.errors.FacelabError`
code (``corrupt_image``, ``no_face``, ``unknown_person``...) or one of the
server's own (``unauthorized``, ``forbidden``, ``request_too_large``,
``invalid_request``...).  5xx means the server cannot work right now
(``not_ready``, ``timeout``, ``store_error``, ``model_error``) or a bug
(``internal_error``, logged with its request ID).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from .. import errors as E
from .logs import request_id


class ApiError(Exception):
    """An error the server answers with directly."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


#: facelab error type -> HTTP status (first match wins: subclasses before their bases).
STATUS: list[tuple[type[Exception], int]] = [
    (E.ImageTooLargeError, 413),
    (E.UnsupportedImageError, 415),
    (E.URLNotAllowedError, 403),
    (E.URLError, 422),
    (E.UnknownPersonError, 404),
    (E.DuplicateFaceError, 409),
    (E.EmptyGalleryError, 409),
    (E.InputError, 400),
    (E.NoFaceError, 422),
    (E.ModelMismatchError, 409),
    (E.UnknownBackendError, 400),
    (E.StoreReadOnlyError, 409),
    (E.StoreError, 503),
    (E.ModelError, 503),
]


def status_of(e: E.FacelabError) -> int:
    for cls, status in STATUS:
        if isinstance(e, cls):
            return status
    return 500


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id.get()}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def from_facelab(e: E.FacelabError) -> JSONResponse:
    """The response for a facelab error; the message never contains server paths for input errors."""
    status = status_of(e)
    message = e.reason if isinstance(e, E.InputError | E.NoFaceError) else str(e)
    if status >= 500:
        message = f"{e.code}: the server cannot do this now ({e.reason})"
    return error_response(status, e.code, message)


#: Error schema for the OpenAPI document.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}},
        }
    },
}

__all__ = ["ERROR_SCHEMA", "STATUS", "ApiError", "error_body", "error_response", "from_facelab", "status_of"]
