"""Fetch images over http(s) with a timeout, a size cap and clear errors.

Redirects are followed here, hop by hop (at most :data:`MAX_REDIRECTS`), and every
hop's host is resolved once and connected to by the address that was resolved.
With ``public_only=True`` (what the server uses) each of those addresses must be a
public unicast one (:func:`is_public_address`): loopback, private, link-local,
shared, reserved, multicast and unspecified addresses are refused, in every notation
(``127.0.0.1``, ``2130706433``, ``0x7f.1``, ``[::1]``, ``[::ffff:127.0.0.1]``...),
since the check is made on the address the resolver returns, and the connection goes
to exactly that address (a DNS answer that changes after the check is never used).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable

from ..errors import HTTPStatusError, URLContentTypeError, URLError, URLNotAllowedError, URLTimeoutError

USER_AGENT = "facelab (+https://example.invalid/facelab)"
#: most redirects followed for one URL
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

AddressPolicy = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], bool]


def is_url(s: str) -> bool:
    return "://" in s[:16] and s.split("://", 1)[0].lower() in ("http", "https", "ftp", "file", "s3", "gs", "rtsp", "data")


def is_public_address(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local, shared (CGNAT),
    reserved, multicast, unspecified, and IPv6 forms that embed such an IPv4 address (mapped, 6to4, Teredo, NAT64)."""
    ip = ipaddress.ip_address(str(ip).split("%")[0]) if not isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else ip
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(e is not None and not is_public_address(e) for e in embedded):
            return False
    bad = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    return ip.is_global and not bad


def resolve(host: str, port: int, *, url: str, allowed: AddressPolicy | None = None) -> str:
    """The address to connect to for ``host`` (resolved once); with ``allowed``, every address the host has must pass it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise URLError(f"cannot connect (cannot resolve host {host!r})", source=url) from None
    addrs = [str(i[4][0]).split("%")[0] for i in infos]
    if not addrs:
        raise URLError(f"cannot connect (no address for host {host!r})", source=url)
    if allowed is not None:
        for a in addrs:
            if not allowed(ipaddress.ip_address(a)):
                raise URLNotAllowedError(f"{host} is a local, private or otherwise non-public address ({a}); only public URLs are fetched", source=url)
    return addrs[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a checked address; the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address; SNI and the certificate check use the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch_url(
    url: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = 64 * 1024 * 1024,
    retries: int = 0,
    backoff: float = 0.5,
    public_only: bool = False,
    allowed: AddressPolicy | None = None,
) -> bytes:
    """GET ``url`` and return its body; only http(s) is accepted, redirects are followed (each hop checked).

    ``public_only`` refuses every hop whose host has a non-public address
    (:func:`is_public_address`) with :class:`URLNotAllowedError`; ``allowed`` replaces
    that rule by another (``address -> bool``).
    Raises :class:`URLTimeoutError`, :class:`HTTPStatusError` (with ``status``),
    :class:`URLContentTypeError` (a declared content type that is not an image)
    or :class:`URLError`.  Connection errors, timeouts and 5xx answers are tried
    ``retries`` more times with exponential backoff.
    """
    policy = allowed if allowed is not None else (is_public_address if public_only else None)
    _split(url, url)
    attempt = 0
    while True:
        try:
            return _fetch(url, timeout, max_bytes, policy)
        except (URLTimeoutError, HTTPStatusError, URLError) as e:
            transient = isinstance(e, URLTimeoutError) or (isinstance(e, HTTPStatusError) and e.status >= 500) or type(e) is URLError and "connection" in str(e).lower()
            if attempt >= retries or not transient:
                raise
            time.sleep(backoff * (2**attempt))
            attempt += 1


def _split(url: str, source: str) -> urllib.parse.SplitResult:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise URLError("not a valid URL", source=source) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise URLError(f"unsupported URL scheme {parts.scheme!r} (only http and https)", source=source)
    if not parts.hostname:
        raise URLError("URL has no host", source=source)
    return parts


def _fetch(url: str, timeout: float, max_bytes: int, policy: AddressPolicy | None) -> bytes:
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        parts = _split(current, url)
        https = parts.scheme.lower() == "https"
        port = parts.port or (443 if https else 80)
        address = resolve(parts.hostname, port, url=url, allowed=policy)
        conn = (_PinnedHTTPS if https else _PinnedHTTP)(parts.hostname, port, address, timeout)
        try:
            path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
            resp = conn.getresponse()
            if resp.status in _REDIRECTS:
                location = resp.getheader("Location")
                if not location:
                    raise HTTPStatusError(f"HTTP {resp.status} redirect without a Location", source=url, status=resp.status)
                current = urllib.parse.urljoin(current, location.strip())
                continue
            if resp.status >= 400:
                raise HTTPStatusError(f"HTTP {resp.status} {resp.reason}", source=url, status=resp.status)
            return _read_body(resp, url, timeout, max_bytes)
        except (socket.timeout, TimeoutError):
            raise URLTimeoutError(f"no answer within {timeout:g} s", source=url) from None
        except ssl.SSLError as e:
            raise URLError(f"cannot connect (TLS: {e.reason or e})", source=url) from None
        except (ConnectionError, OSError, http.client.HTTPException) as e:
            raise URLError(f"cannot connect ({e})", source=url) from None
        finally:
            conn.close()
    raise URLError(f"more than {MAX_REDIRECTS} redirects", source=url)


def _read_body(resp: http.client.HTTPResponse, url: str, timeout: float, max_bytes: int) -> bytes:
    ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if ctype and not (ctype.startswith("image/") or ctype in ("application/octet-stream", "binary/octet-stream")):
        raise URLContentTypeError(f"server sent {ctype!r}, not an image", source=url)
    length = resp.getheader("Content-Length")
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
