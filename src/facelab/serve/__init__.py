"""facelab as a service: a REST API (FastAPI) with a web page, API keys, limits and structured logs.

>>> from facelab.serve import Settings, create_app
>>> app = create_app(Settings(data_dir="/srv/facelab", db="postgresql://..."))

Start it with ``facelab serve --host 127.0.0.1 --port 8000`` (``pip install "facelab[server]"``);
create keys with ``facelab keys create --role read|admin``.  See ``docs/serve.md``.
"""

from __future__ import annotations

from .settings import Settings


def create_app(settings: Settings | None = None):
    """The FastAPI app (see :func:`facelab.serve.app.create_app`); imported lazily so ``facelab`` works without the server extra."""
    from .app import create_app as _create

    return _create(settings)


__all__ = ["Settings", "create_app"]
