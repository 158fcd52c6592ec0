"""Fixtures of the gallery / identities tests (imported by conftest.py).

* ``facelab_home``: a session temp ``$FACELAB_HOME`` (gallery default, embedding cache) shared with
  CLI subprocesses, so images embedded once in the session are not embedded again.
  ``FACELAB_TEST_CACHE=<dir>`` keeps the embedding cache across sessions (for development).
* ``orl_set``, ``yale_set``, ``lfw_set``: embeddings of ORL (400), Yale (164) and LFW View 1 people
  with >= 5 photos (81 people, 472 images), computed once per session.
* ``pg_url``: a PostgreSQL 16 + pgvector server from the ``pgserver`` wheel, started once per session
  in a temp folder; ``store_url`` is parametrized over ``sqlite`` and ``postgresql`` (a fresh
  database each time), so the same tests run on both stores.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

__all__ = ["facelab_home", "lfw_set", "orl_set", "pg_server", "pg_url", "store_url", "yale_set"]

@pytest.fixture(scope="session")
def facelab_home():
    keep = os.environ.get("FACELAB_TEST_CACHE")
    home = Path(tempfile.mkdtemp(prefix="facelab-home-"))
    if keep:
        (home / "cache").mkdir(parents=True, exist_ok=True)
        src = Path(keep) / "embeddings.db"
        if src.exists():
            shutil.copy(src, home / "cache" / "embeddings.db")
    old = os.environ.get("FACELAB_HOME")
    os.environ["FACELAB_HOME"] = str(home)
    yield home
    if keep and (home / "cache" / "embeddings.db").exists():
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(home / "cache" / "embeddings.db", Path(keep) / "embeddings.db")
    if old is None:
        os.environ.pop("FACELAB_HOME", None)
    else:
        os.environ["FACELAB_HOME"] = old
    shutil.rmtree(home, ignore_errors=True)


def _embedded(name: str):
    from conftest import DATA, data_path

    from facelab.train.dataset import REFERENCE_SETS, reference_set

    data_path(*REFERENCE_SETS[name]["folder"])  # skips when the data is absent
    return reference_set(name, DATA)


@pytest.fixture(scope="session")
def orl_set(facelab_home):
    return _embedded("orl")


@pytest.fixture(scope="session")
def yale_set(facelab_home):
    return _embedded("yale")


@pytest.fixture(scope="session")
def lfw_set(facelab_home):
    return _embedded("lfw")


@pytest.fixture(scope="session")
def pg_server():
    try:
        import pgserver
    except ImportError:
        pytest.skip("pgserver is not installed (pip install -e '.[test]'): PostgreSQL store tests need it")
    tmp = tempfile.mkdtemp(prefix="facelab-pg-")
    srv = pgserver.get_server(tmp, cleanup_mode="stop")
    yield srv
    srv.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)


def _pg_database(srv) -> tuple[str, str]:
    import psycopg

    base = srv.get_uri()  # postgresql://postgres:@/postgres?host=/tmp/...
    db = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {db}")
    return db, base.replace("/postgres?", f"/{db}?", 1)


def _pg_drop(srv, db: str) -> None:
    import psycopg

    with psycopg.connect(srv.get_uri(), autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty PostgreSQL database (dropped afterwards)."""
    db, url = _pg_database(pg_server)
    yield url
    _pg_drop(pg_server, db)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A new, empty gallery URL on each store."""
    if request.param == "sqlite":
        yield "sqlite://" + str(tmp_path / "gallery.db")
    else:
        srv = request.getfixturevalue("pg_server")
        db, url = _pg_database(srv)
        yield url
        _pg_drop(srv, db)


def with_option(url: str, opt: str) -> str:
    """``url`` with a facelab URL option (``timeout=0.3``, ``mode=ro``) added."""
    return url + ("&" if "?" in url else "?") + opt
