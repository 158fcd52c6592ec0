"""``facelab serve`` (the REST API and web page) and ``facelab keys create|list|revoke``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DEFAULT_DETECTOR, DEFAULT_MIN_FACE, DetectorOpt, JsonOpt, MinFaceOpt, err, fail, guard, print_json

DataDirOpt = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Server data folder: API keys and the default gallery (default $FACELAB_HOME/server).")
]

keys_app = typer.Typer(help="API keys of the server: create (shown once), list, revoke.", no_args_is_help=True)


def _settings(data_dir: Path | None, **kw):
    from ..serve.settings import Settings

    return Settings(**({"data_dir": data_dir} if data_dir is not None else {}), **kw)


@guard
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    db: Annotated[
        Optional[str], typer.Option("--db", help="Gallery: a path, sqlite:///path or postgresql://... (default DATA_DIR/gallery.db).")
    ] = None,
    data_dir: DataDirOpt = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes (each loads the models once).")] = 1,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Requests computed at once per worker (the rest queue).")] = 2,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without API keys (only for a trusted machine or network).")] = False,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.01, help="Cap on a request body (all its images).")] = 20.0,
    max_pixels: Annotated[int, typer.Option("--max-pixels", min=1, help="Cap on a decoded image's pixels.")] = 25_000_000,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds a request may compute (queueing included) before 503.")
    ] = 30.0,
    cors_origin: Annotated[
        Optional[list[str]], typer.Option("--cors-origin", help="Allow browser calls from this origin (repeat; CORS is off by default).")
    ] = None,
    no_urls: Annotated[bool, typer.Option("--no-urls", help="Refuse images given as URLs.")] = False,
    allow_private_urls: Annotated[
        bool, typer.Option("--allow-private-urls", help="Also fetch URLs on local/private addresses (SSRF risk).")
    ] = False,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Run the REST API and the web page (http://HOST:PORT/, API docs at /docs)."""
    try:
        import uvicorn
    except ImportError:
        fail('the server needs its extra: pip install "facelab[server]"')
    from ..serve.settings import SETTINGS_ENV

    s = _settings(
        data_dir,
        db=db,
        auth=not no_auth,
        threads=threads,
        max_body_bytes=int(max_upload_mb * 2**20),
        max_pixels=max_pixels,
        request_timeout=timeout,
        cors_origins=tuple(cors_origin or ()),
        allow_urls=not no_urls,
        allow_private_urls=allow_private_urls,
        detector=detector,
        min_face=min_face,
        log_level=log_level,
    )
    s.ensure_data_dir()
    from ..serve.keys import KeyStore

    if s.auth and not len(KeyStore(s.keys_file)):
        err(f"no API keys yet: create one with `facelab keys create --role admin --data-dir {s.data_dir}` (requests get 401 until then)")
    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        err(f"warning: --no-auth on {host}: anyone who reaches this address can enrol and delete people")
    os.environ[SETTINGS_ENV] = s.to_json()
    typer.echo(f"facelab serving on http://{host}:{port}/ (API docs: /docs; data: {s.data_dir})", err=True)
    uvicorn.run(
        "facelab.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level=log_level,
        timeout_keep_alive=5,
    )


@guard
def keys_create(
    role: Annotated[str, typer.Option("--role", help="read (recognition) or admin (also enrol/rename/delete).")],
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print it (only now: it is stored hashed)."""
    from ..serve.keys import KeyStore

    s = _settings(data_dir)
    key, rec = KeyStore(s.keys_file).create(role, name)
    if as_json:
        print_json({"key": key, **rec.public()})
    else:
        typer.echo(key)
        err(f"{rec.role} key {rec.id} ({rec.name}) saved hashed in {s.keys_file}; this is the only time it is shown")


@guard
def keys_list(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List the API keys (ids, names, roles; never the keys)."""
    from ..serve.keys import KeyStore

    keys = KeyStore(_settings(data_dir).keys_file).list()
    if as_json:
        print_json([k.public() for k in keys])
        return
    if not keys:
        typer.echo("no API keys")
    for k in keys:
        typer.echo(f"{k.id}  {k.role:5s}  {k.created}  {k.name}")


@guard
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (facelab keys list).")], data_dir: DataDirOpt = None) -> None:
    """Delete an API key: requests with it get 401 at once (the server re-reads the keys file)."""
    from ..serve.keys import KeyStore

    rec = KeyStore(_settings(data_dir).keys_file).revoke(key_id)
    typer.echo(f"revoked {rec.role} key {rec.id} ({rec.name})")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    keys_app.command("create")(keys_create)
    keys_app.command("list")(keys_list)
    keys_app.command("revoke")(keys_revoke)
    app.add_typer(keys_app, name="keys")
