"""Fetch images over http(s) with a timeout, a size cap and clear errors."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from ..errors import HTTPStatusError, URLContentTypeError, URLError, URLTimeoutError

USER_AGENT = "facelab (+https://example.invalid/facelab)"


def is_url(s: str) -> bool:
    return "://" in s[:16] and s.split("://", 1)[0].lower() in ("http", "https", "ftp", "file", "s3", "gs", "rtsp", "data")


def fetch_url(url: str, *, timeout: float = 10.0, max_bytes: int = 64 * 1024 * 1024, retries: int = 0, backoff: float = 0.5) -> bytes:
    """GET ``url`` and return its body; only http(s) is accepted.

    Raises :class:`URLTimeoutError`, :class:`HTTPStatusError` (with ``status``),
    :class:`URLContentTypeError` (a declared content type that is not an image)
    or :class:`URLError`.  Connection errors, timeouts and 5xx answers are tried
    ``retries`` more times with exponential backoff.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise URLError(f"unsupported URL scheme {parts.scheme!r} (only http and https)", source=url)
    if not parts.netloc:
        raise URLError("URL has no host", source=url)
    attempt = 0
    while True:
        try:
            return _fetch_once(url, timeout, max_bytes)
        except (URLTimeoutError, HTTPStatusError, URLError) as e:
            transient = isinstance(e, URLTimeoutError) or (isinstance(e, HTTPStatusError) and e.status >= 500) or type(e) is URLError and "connection" in str(e).lower()
            if attempt >= retries or not transient:
                raise
            time.sleep(backoff * (2**attempt))
            attempt += 1


def _fetch_once(url: str, timeout: float, max_bytes: int) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype and not (ctype.startswith("image/") or ctype in ("application/octet-stream", "binary/octet-stream")):
                raise URLContentTypeError(f"server sent {ctype!r}, not an image", source=url)
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise URLError(f"image is {int(length) / 2**20:.1f} MiB, over the cap of {max_bytes / 2**20:.0f} MiB", source=url)
            chunks, total = [], 0
            deadline = time.monotonic() + timeout * 3
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise URLError(f"download exceeds the cap of {max_bytes / 2**20:.0f} MiB", source=url)
                if time.monotonic() > deadline:
                    raise URLTimeoutError(f"download took longer than {timeout * 3:g} s", source=url)
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as e:
        raise HTTPStatusError(f"HTTP {e.code} {e.reason}", source=url, status=e.code) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, (socket.timeout, TimeoutError)):
            raise URLTimeoutError(f"no answer within {timeout:g} s", source=url) from None
        raise URLError(f"cannot connect ({e.reason})", source=url) from None
    except (socket.timeout, TimeoutError):
        raise URLTimeoutError(f"no answer within {timeout:g} s", source=url) from None
    except (ConnectionError, OSError) as e:
        if isinstance(e, URLError):
            raise
        raise URLError(f"connection failed ({e})", source=url) from None
