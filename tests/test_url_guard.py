"""URL fetching never reaches a non-public address: redirects (each hop checked, a cap on hops),
DNS answers that change after the check, IPv6 and IPv4-mapped forms, alternate notations.

Real local HTTP servers: a *target* on 127.0.0.1 that records every request it gets, and a
*front* server on 127.0.0.2 (another loopback address) that the tests declare public through
``fetch_url(allowed=...)``, so its redirects can be followed; every other address goes
through the server's rule, :func:`facelab.io.url.is_public_address`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from facelab.errors import URLError, URLNotAllowedError
from facelab.io import url as url_mod
from facelab.io.url import MAX_REDIRECTS, fetch_url, is_public_address

FRONT_IP = "127.0.0.2"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082")


def front_is_public(ip) -> bool:
    return ip == ipaddress.ip_address(FRONT_IP) or is_public_address(ip)


class _Target(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)


class _Front(BaseHTTPRequestHandler):
    """``/to?u=URL`` redirects to URL; ``/loop/N`` redirects to ``/loop/N+1``; ``/img`` is an image; records Host headers."""

    hosts: list[str] = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        from urllib.parse import parse_qs, urlsplit

        type(self).hosts.append(self.headers.get("Host", ""))
        parts = urlsplit(self.path)
        if parts.path == "/to":
            self._redirect(parse_qs(parts.query)["u"][0])
        elif parts.path.startswith("/loop/"):
            self._redirect(f"/loop/{int(parts.path.rsplit('/', 1)[1]) + 1}")
        elif parts.path == "/img":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)
        else:
            self.send_response(404)
            self.end_headers()

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _serve(handler, host: str, port: int = 0) -> ThreadingHTTPServer:
    srv = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def servers():
    """(target port, front port): the front listens on 127.0.0.2 at the target's port number too (for the DNS test)."""
    for _ in range(20):
        target = _serve(_Target, "127.0.0.1")
        port = target.server_address[1]
        try:
            front = _serve(_Front, FRONT_IP, port)
            break
        except OSError:  # that port number is taken on 127.0.0.2: try another
            target.shutdown()
            target.server_close()
    else:
        pytest.skip("cannot listen on 127.0.0.2 beside 127.0.0.1 with one port number")
    yield port
    for s in (target, front):
        s.shutdown()
        s.server_close()


@pytest.fixture()
def hits(servers):
    _Target.hits.clear()
    _Front.hosts.clear()
    return _Target.hits


def test_the_front_server_is_fetched_and_its_redirects_followed(servers, hits):
    port = servers
    assert fetch_url(f"http://{FRONT_IP}:{port}/img", allowed=front_is_public) == PNG
    assert fetch_url(f"http://{FRONT_IP}:{port}/to?u=/img", allowed=front_is_public) == PNG
    assert hits == []
    # the rule is what refuses below: without it the target is reachable
    assert fetch_url(f"http://127.0.0.1:{port}/open") == PNG
    assert hits == ["/open"]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]", "0.0.0.0"],
)
def test_non_public_hosts_are_refused_directly_and_behind_a_redirect(servers, hits, host):
    port = servers
    target = f"http://{host}:{port}/secret"
    with pytest.raises((URLNotAllowedError, URLError)) as e:
        fetch_url(target, public_only=True)
    assert e.type is URLNotAllowedError or "cannot connect" in str(e.value)  # [::1] may have no IPv6 here: never a hit
    with pytest.raises(URLError):
        fetch_url(f"http://{FRONT_IP}:{port}/to?u={target}", allowed=front_is_public)
    assert hits == []


def test_redirect_hops_are_capped(servers, hits):
    port = servers
    with pytest.raises(URLError, match=f"more than {MAX_REDIRECTS} redirects"):
        fetch_url(f"http://{FRONT_IP}:{port}/loop/0", allowed=front_is_public)


def test_dns_is_resolved_once_and_the_checked_address_is_connected(servers, hits, monkeypatch):
    """A host whose DNS answer turns private after the check (rebinding): the connection goes to the checked address."""
    port = servers
    answers = iter([FRONT_IP] + ["127.0.0.1"] * 10)
    real = socket.getaddrinfo

    def rebinding(host, *a, **kw):
        if host == "rebind.example":
            ip = next(answers)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, *a, **kw)

    monkeypatch.setattr(url_mod.socket, "getaddrinfo", rebinding)
    assert fetch_url(f"http://rebind.example:{port}/img", allowed=front_is_public) == PNG
    assert hits == []
    assert _Front.hosts == [f"rebind.example:{port}"]  # the Host header still names the URL's host


@pytest.mark.parametrize(
    "ip, public",
    [
        ("8.8.8.8", True), ("2606:4700:4700::1111", True),
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False),
        ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False), ("240.0.0.1", False), ("255.255.255.255", False),
        ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
        ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("64:ff9b::a00:1", False), ("2002:7f00:1::", False),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo whose client is 127.0.0.1
    ],
)  # fmt: skip
def test_public_address_rule(ip, public):
    assert is_public_address(ip) is public
