"""Server settings: where data lives, which models answer, and the limits every request obeys."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..detect import DEFAULT_DETECTOR
from ..errors import InputError

#: Environment variable carrying the settings (JSON) to ``uvicorn --workers N`` worker processes.
SETTINGS_ENV = "FACELAB_SERVE_SETTINGS"


def default_data_dir() -> Path:
    """``$FACELAB_HOME/server`` (``~/.facelab/server``)."""
    from ..io.paths import facelab_home

    return facelab_home() / "server"


@dataclass
class Settings:
    """Everything :func:`facelab.serve.create_app` needs.

    ``data_dir`` holds the API keys file (``keys.json``) and, unless ``db`` names
    another, the gallery (``gallery.db``).  No request path reads or writes any
    file outside it: images come from the request body or an http(s) URL, never
    from a path named by a client.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    db: str | None = None  # gallery URL: a path, sqlite:///path or postgresql://...; default data_dir/gallery.db
    auth: bool = True  # require an API key on /v1 endpoints (health, readiness and info excepted)
    max_body_bytes: int = 20 * 1024 * 1024  # whole request body (all images of a request, base64 included)
    max_pixels: int = 25_000_000  # per decoded image
    request_timeout: float = 30.0  # seconds of CPU work per request (queueing included) before 503 timeout
    threads: int = 2  # requests computing at the same time (per worker process); the rest queue
    cors_origins: tuple[str, ...] = ()  # empty: CORS off (no Access-Control-* headers)
    allow_urls: bool = True  # accept {"url": "http(s)://..."} images
    allow_private_urls: bool = False  # ... also on loopback / private / link-local addresses (SSRF guard)
    url_timeout: float = 10.0
    detector: str = DEFAULT_DETECTOR
    detectors: tuple[str, ...] = ("blazeface_ft", "blazeface", "hog", "cnn")  # what a request may ask for with ?detector=
    min_face: int = 40
    landmarks: str = "dlib68"
    max_images: int = 10  # images per enrol request
    preload_actions: tuple[str, ...] = ("age", "gender", "emotion", "ethnicity")  # attribute models loaded at start
    log_level: str = "info"
    block_startup: bool = False  # load models before accepting requests (default: serve /v1/health at once, /v1/ready when loaded)

    def __post_init__(self) -> None:
        self.data_dir = Path(os.path.expanduser(os.fspath(self.data_dir)))
        self.cors_origins = tuple(self.cors_origins)
        self.detectors = tuple(dict.fromkeys((self.detector, *self.detectors)))
        self.preload_actions = tuple(self.preload_actions)
        if self.max_body_bytes <= 0 or self.max_pixels <= 0 or self.request_timeout <= 0 or self.threads < 1 or self.max_images < 1:
            raise InputError("server limits must be positive (max_body_bytes, max_pixels, request_timeout, threads, max_images)")
        if "*" in self.cors_origins and len(self.cors_origins) > 1:
            raise InputError("CORS origin '*' cannot be combined with other origins")

    @property
    def gallery_url(self) -> str:
        return self.db or str(self.data_dir / "gallery.db")

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "keys.json"

    def ensure_data_dir(self) -> Path:
        """Create the data folder (mode 0700) if needed."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise InputError(f"cannot create the server data folder ({e.strerror or e})", source=str(self.data_dir)) from None
        return self.data_dir

    def to_json(self) -> str:
        d = asdict(self)
        d["data_dir"] = str(self.data_dir)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        d: dict[str, Any] = json.loads(text)
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})

    @classmethod
    def from_env(cls) -> Settings:
        """Settings passed by ``facelab serve`` to its worker processes (defaults when unset)."""
        text = os.environ.get(SETTINGS_ENV)
        return cls.from_json(text) if text else cls()


__all__ = ["SETTINGS_ENV", "Settings", "default_data_dir"]
