"""Images in requests: multipart uploads, base64 in JSON, http(s) URLs, or a raw ``image/*`` body.

Every image is decoded by :func:`facelab.io.load_image` with the server's caps
(bytes, pixels, URL timeout).  A client never names a file: text is only ever
decoded as base64 or fetched as an http(s) URL, so no request reads the disk.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from ..io import decode_image, fetch_url, load_image
from .errors import ApiError
from .settings import Settings


class ImageRef(BaseModel):
    """One image in a JSON body: exactly one of ``base64`` (plain or a ``data:`` URL) and ``url`` (http or https)."""

    model_config = ConfigDict(extra="forbid")
    base64: str | None = Field(None, description="The encoded image file (JPEG, PNG, WebP...) in base64, or a data: URL.")
    url: str | None = Field(None, description="An http(s) URL the server fetches (if the server allows URLs).")


class ImageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: ImageRef


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image1: ImageRef
    image2: ImageRef


class EnrollBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., description="The person's name.")
    images: list[ImageRef] = Field(..., min_length=1, description="Images of this person; the largest face of each is enrolled.")


class RenameBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., description="The new name.")


JSON_MODELS: list[type[BaseModel]] = [ImageRef, ImageBody, VerifyBody, EnrollBody, RenameBody]


@dataclass
class RawImage:
    """An image as received (bytes or a URL) and a label for results and messages."""

    label: str
    data: bytes | None = None
    url: str | None = None


def _validation_message(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


def parse_json(raw: bytes, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as e:
        raise ApiError(422, "invalid_request", _validation_message(e)) from None


def from_ref(ref: ImageRef, settings: Settings, what: str) -> RawImage:
    if (ref.base64 is None) == (ref.url is None):
        raise ApiError(422, "invalid_request", f"{what}: give exactly one of 'base64' and 'url'")
    if ref.base64 is not None:
        return RawImage(f"{what} (base64)", data=decode_base64(ref.base64, settings, what))
    return RawImage(ref.url or "", url=check_url(ref.url or "", settings))


def decode_base64(text: str, settings: Settings, what: str) -> bytes:
    s = text.strip()
    if s.startswith("data:"):
        head, sep, s = s.partition(",")
        if not sep or ";base64" not in head:
            raise ApiError(400, "bad_base64", f"{what}: a data: URL must be base64-encoded (data:image/jpeg;base64,...)")
    if len(s) * 3 // 4 > settings.max_body_bytes:
        raise ApiError(413, "image_too_large", f"{what}: over the cap of {settings.max_body_bytes / 2**20:.0f} MiB")
    try:
        data = base64.b64decode("".join(s.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "bad_base64", f"{what}: not valid base64") from None
    if not data:
        raise ApiError(400, "empty_image", f"{what}: empty image (0 bytes)")
    return data


def check_url(url: str, settings: Settings) -> str:
    """Refuse what the server must not fetch: URLs when disabled, other schemes, no host."""
    if not settings.allow_urls:
        raise ApiError(403, "urls_disabled", "this server does not fetch image URLs: upload the image or send it as base64")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ApiError(422, "bad_url", f"not a valid URL: {url[:200]!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ApiError(422, "bad_url", f"only http(s) URLs with a host are fetched, not {url[:200]!r}")
    return url


async def read_multipart(
    request: Request, settings: Settings, files: tuple[str, ...], text: tuple[str, ...] = ()
) -> tuple[dict[str, list[RawImage]], dict[str, str]]:
    """File fields (each may repeat) and text fields of a multipart form."""
    form = await request.form(max_files=settings.max_images + 2, max_fields=len(text) + len(files) + 8, max_part_size=64 * 1024)
    images: dict[str, list[RawImage]] = {f: [] for f in files}
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if key in files:
            if not isinstance(value, UploadFile):
                raise ApiError(422, "invalid_request", f"form field {key!r} must be a file upload")
            images[key].append(RawImage(f"upload:{(value.filename or key)[:200]}", data=await value.read()))
        elif key in text:
            if isinstance(value, UploadFile):
                raise ApiError(422, "invalid_request", f"form field {key!r} must be text, not a file")
            values[key] = value
        else:
            raise ApiError(422, "invalid_request", f"unexpected form field {key!r} (expected: {', '.join(files + text)})")
    await form.close()
    return images, values


def media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


async def read_images(request: Request, settings: Settings, fields: tuple[str, ...]) -> dict[str, RawImage]:
    """One image per field name, from a multipart form, a JSON body (``ImageBody`` / ``VerifyBody``) or a raw image body."""
    mt = media_type(request)
    if mt == "multipart/form-data":
        got, _ = await read_multipart(request, settings, fields)
        out = {}
        for f in fields:
            if len(got[f]) != 1:
                raise ApiError(
                    422, "invalid_request", f"send exactly one file in the form field {f!r}" + (f" (got {len(got[f])})" if got[f] else "")
                )
            out[f] = got[f][0]
        return out
    if mt == "application/json":
        model = ImageBody if fields == ("image",) else VerifyBody
        body = parse_json(await request.body(), model)
        return {f: from_ref(getattr(body, f), settings, f) for f in fields}
    if len(fields) == 1 and (mt.startswith("image/") or mt == "application/octet-stream"):
        return {fields[0]: RawImage("body", data=await request.body())}
    raise ApiError(
        415,
        "unsupported_media_type",
        f"send multipart/form-data (field{'s' if len(fields) > 1 else ''} {', '.join(fields)}), application/json"
        + (" or an image/* body" if len(fields) == 1 else "")
        + f", not {mt or 'no content type'!r}",
    )


def decode(raw: RawImage, settings: Settings) -> np.ndarray:
    """Decode (fetching URLs) with the server's caps; blocking, run in a worker thread."""
    if raw.data is not None:
        return load_image(raw.data, max_pixels=settings.max_pixels, max_bytes=settings.max_body_bytes)
    url = raw.url or ""
    # public_only: every hop (redirects too) must resolve to public addresses, and is connected to by the address checked
    data = fetch_url(url, timeout=settings.url_timeout, max_bytes=settings.max_body_bytes, public_only=not settings.allow_private_urls)
    return decode_image(data, source=url, max_pixels=settings.max_pixels, max_bytes=settings.max_body_bytes)


def openapi_body(
    json_model: type[BaseModel], files: dict[str, str], text: dict[str, str] | None = None, raw: bool = False
) -> dict[str, Any]:
    """``openapi_extra`` describing a body accepted as JSON, multipart (and a raw image)."""
    props: dict[str, Any] = {k: {"type": "string", "format": "binary", "description": v} for k, v in files.items()}
    props.update({k: {"type": "string", "description": v} for k, v in (text or {}).items()})
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{json_model.__name__}"}},
        "multipart/form-data": {"schema": {"type": "object", "required": list(files) + list(text or {}), "properties": props}},
    }
    if raw:
        content["image/jpeg"] = {"schema": {"type": "string", "format": "binary"}}
        content["image/png"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}}


__all__ = [
    "JSON_MODELS",
    "EnrollBody",
    "ImageBody",
    "ImageRef",
    "RawImage",
    "RenameBody",
    "VerifyBody",
    "check_url",
    "decode",
    "decode_base64",
    "from_ref",
    "media_type",
    "openapi_body",
    "parse_json",
    "read_images",
    "read_multipart",
]
