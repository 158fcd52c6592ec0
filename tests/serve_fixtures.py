"""Fixtures of the server tests (imported by conftest.py): running apps, API keys, sample photos.

* ``serve_env``: a data folder with an ``admin`` and a ``read`` key;
* ``api``: a TestClient of the app on it (API keys required, default limits, models loaded);
* ``api_open``: a second app without keys, with small limits, URL fetching from loopback
  allowed and CORS on for one origin (its gallery stays empty);
* ``live_server``: the ``api`` settings served by uvicorn on a loopback port (for the browser).

The apps share the process's models, so only the first one pays for loading them.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"

__all__ = ["api", "api_open", "live_server", "photos", "serve_env", "start_client", "wait_ready"]


def _server_deps() -> None:
    for mod in ("fastapi", "httpx", "multipart", "uvicorn"):
        pytest.importorskip(mod, reason=f"the server tests need {mod}: pip install -e '.[test]'")


@dataclass
class ServeEnv:
    data_dir: Path
    admin: str
    read: str

    def h(self, role: str = "admin") -> dict[str, str]:
        return {"X-API-Key": self.admin if role == "admin" else self.read}


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """The sample photos shipped in the repository (MIT, from face_recognition), as file bytes."""
    return {p.stem: p.read_bytes() for p in (SAMPLES / "known").glob("*.jpg")} | {
        p.stem: p.read_bytes() for p in (SAMPLES / "photos").glob("*.jpg")
    }


@pytest.fixture(scope="session")
def serve_env(tmp_path_factory) -> ServeEnv:
    _server_deps()
    from facelab.serve.keys import KeyStore

    d = tmp_path_factory.mktemp("serve-data")
    ks = KeyStore(d / "keys.json")
    return ServeEnv(d, ks.create("admin", "tests admin")[0], ks.create("read", "tests read")[0])


def wait_ready(client, timeout: float = 180.0) -> None:
    t0 = time.monotonic()
    while True:
        r = client.get("/v1/ready")
        if r.status_code == 200:
            return
        body = r.json()
        if "loading" not in body["error"]["message"] or time.monotonic() - t0 > timeout:
            raise RuntimeError(f"server not ready: {body}")
        time.sleep(0.1)


def start_client(settings):
    from fastapi.testclient import TestClient

    from facelab.serve import create_app

    client = TestClient(create_app(settings))
    client.__enter__()
    wait_ready(client)
    return client


@pytest.fixture(scope="session")
def api(serve_env):
    from facelab.serve import Settings

    # min_face 80: HOG scans the samples at its native scale (4x fewer pixels than 40)
    client = start_client(Settings(data_dir=serve_env.data_dir, min_face=80))
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def api_open(tmp_path_factory):
    _server_deps()
    from facelab.serve import Settings

    s = Settings(
        data_dir=tmp_path_factory.mktemp("serve-open"),
        auth=False,
        min_face=80,
        max_body_bytes=1_500_000,
        max_pixels=2_000_000,
        allow_private_urls=True,
        url_timeout=5.0,
        cors_origins=("http://app.example",),
        preload_actions=(),
    )
    client = start_client(s)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def live_server(serve_env):
    """The app served by uvicorn on 127.0.0.1 (in a thread of this process); yields its base URL."""
    _server_deps()
    import httpx
    import uvicorn

    from facelab.serve import Settings, create_app

    data = serve_env.data_dir.parent / (serve_env.data_dir.name + "-live")
    data.mkdir(exist_ok=True)
    (data / "keys.json").write_bytes((serve_env.data_dir / "keys.json").read_bytes())  # same keys, own gallery
    sock = socket.socket()  # bound here and handed to uvicorn: the port is ours from the start (no bind-close-rebind race)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(Settings(data_dir=data, min_face=80)), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while True:
        try:
            if httpx.get(url + "/v1/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() - t0 > 180 or not thread.is_alive():
            raise RuntimeError("the live server did not become ready")
        time.sleep(0.2)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
