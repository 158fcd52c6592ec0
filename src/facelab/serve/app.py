"""The FastAPI application: thin routes over the Python API.

>>> from facelab.serve import Settings, create_app
>>> app = create_app(Settings(data_dir="/srv/facelab"))      # uvicorn.run(app)

Recognition endpoints take one image as a multipart upload (field ``image``), a
JSON body ``{"image": {"base64": ...}}`` or ``{"image": {"url": ...}}``, or a
raw ``image/*`` body, and answer :class:`facelab.types.ImageResult` JSON.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, some of them local aliases

import asyncio
import importlib.resources
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import anyio
import numpy as np
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import FacelabError
from ..types import Box
from .engine import Engine, image_data_url, result_dict
from .errors import ApiError, error_body, error_response, from_facelab
from .inputs import (
    JSON_MODELS,
    EnrollBody,
    ImageBody,
    RenameBody,
    VerifyBody,
    decode,
    from_ref,
    media_type,
    openapi_body,
    parse_json,
    read_images,
    read_multipart,
)
from .keys import ApiKey, KeyStore
from .logs import log, new_request_id, request_id, setup_logging
from .schemas import SCHEMAS, error_responses, json_response
from .settings import Settings

API_KEY_HEADER = "X-API-Key"

#: Status code of a failed enrolment, by the result's error code.
_ENROLL_STATUS = {"no_face": 422, "duplicate_face": 409, "image_too_large": 413, "unsupported_image": 415}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}

#: The web page's Content-Security-Policy: nothing but this server (no CDN, no inline script).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


# --- ASGI middleware ----------------------------------------------------------------


class RequestContext:
    """Request ID (``X-Request-ID`` in and out), one JSON access-log line per request, a JSON 500 for crashes."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        rid = new_request_id(headers.get(b"x-request-id", b"").decode("latin-1"))
        token = request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        t0 = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode()), (b"x-content-type-options", b"nosniff")]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logging.getLogger("facelab.serve").exception("unhandled error")
            if not status["sent"]:
                await JSONResponse(
                    error_body("internal_error", f"internal error (request {rid}); the server log has the details"), status_code=500
                )(scope, receive, send_wrapper)
        finally:
            state = scope.get("state", {})
            log(
                logging.INFO,
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status["code"],
                ms=round((time.perf_counter() - t0) * 1000, 1),
                client=(scope.get("client") or ("-",))[0],
                key=state.get("key_id"),
            )
            request_id.reset(token)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before the app sees them (reads at most that much)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = error_response(413, "request_too_large", f"request body over the cap of {self.max_bytes / 2**20:.1f} MiB")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await too_big(scope, receive, send)
        chunks, total, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                return await too_big(scope, receive, send)
            chunks.append(body)
            more = msg.get("more_body", False)
        buffered = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return buffered
            return await receive()

        await self.app(scope, replay, send)


# --- the app --------------------------------------------------------------------------


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The web page and the offline API-docs assets, read once into memory (requests never open files)."""
    out: dict[str, tuple[bytes, str]] = {}
    root = importlib.resources.files("facelab.serve") / "static"
    for item in root.iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1]
        if item.is_file() and suffix in STATIC_TYPES:
            out[item.name] = (item.read_bytes(), STATIC_TYPES[suffix])
    try:  # Swagger UI shipped in a wheel, so /docs works offline
        docs = importlib.resources.files("fastapi_offline") / "static"
        for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
            out["docs/" + name] = ((docs / name).read_bytes(), STATIC_TYPES["." + name.rsplit(".", 1)[-1]])
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    return out


def _parse_box(text: str | None) -> Box | None:
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(abs(v) < 1e6 for v in vals) or vals[2] <= vals[0] or vals[3] <= vals[1]:
        raise ApiError(
            422, "invalid_request", f"box must be 'left,top,right,bottom' with right > left and bottom > top, not {text[:100]!r}"
        )
    return Box(*vals)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: from ``$FACELAB_SERVE_SETTINGS``).  Models load in the background at start-up."""
    settings = settings or Settings.from_env()
    settings.ensure_data_dir()
    setup_logging(settings.log_level)
    engine = Engine(settings)
    keys = KeyStore(settings.keys_file)
    static = _static_files()
    runtime: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime["limiter"] = anyio.CapacityLimiter(settings.threads)

        async def load() -> None:
            t0 = time.perf_counter()
            try:
                await anyio.to_thread.run_sync(engine.prepare)
                log(
                    logging.INFO,
                    "ready",
                    seconds=round(time.perf_counter() - t0, 2),
                    gallery=engine.gallery.store.kind,
                    people=len(engine.gallery.people()),
                )
            except FacelabError as e:
                engine.error = str(e)
                log(logging.ERROR, "cannot start", error=str(e))
            except Exception as e:  # a bug: keep serving health checks, say why not ready
                engine.error = f"{type(e).__name__}: {e}"
                logging.getLogger("facelab.serve").exception("cannot start")

        if settings.auth and not len(keys):
            log(
                logging.WARNING,
                "no API keys yet: create one with `facelab keys create --role admin --data-dir DIR`",
                data_dir=str(settings.data_dir),
            )
        task = asyncio.create_task(load())
        if settings.block_startup:
            await task
        try:
            yield
        finally:
            if not task.done():
                task.cancel()
            engine.close()

    app = FastAPI(
        title="facelab",
        version=__version__,
        description=(
            "Offline face analysis as a service: detection, landmarks, embeddings, verification, attributes, "
            "identification against a gallery. Send `X-API-Key: <key>` (keys: `facelab keys create --role read|admin`). "
            'Errors are `{"error": {"code", "message", "request_id"}}`.'
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings, app.state.engine, app.state.keys = settings, engine, keys

    # middleware: the last added runs first
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[API_KEY_HEADER, "Authorization", "Content-Type", "X-Request-ID"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)

    # --- errors -------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(FacelabError)
    async def _facelab_error(request: Request, e: FacelabError):
        return from_facelab(e)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        code = _HTTP_CODES.get(e.status_code, "http_error")
        msg = e.detail if isinstance(e.detail, str) else code
        if e.status_code == 400 and request.url.path.startswith("/v1/"):
            code = "invalid_request"  # multipart parsing errors
        return error_response(e.status_code, code, msg, getattr(e, "headers", None))

    # --- auth and work ----------------------------------------------------------------------

    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="An API key from `facelab keys create`.")

    def require(role: str) -> Callable[..., ApiKey | None]:
        def dep(request: Request, api_key: Annotated[str | None, Depends(key_header)] = None) -> ApiKey | None:
            if not settings.auth:
                return None
            if api_key is None:
                auth = request.headers.get("authorization", "")
                api_key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            if not api_key:
                hint = "" if len(keys) else " (this server has no keys yet: `facelab keys create --role admin`)"
                raise ApiError(401, "unauthorized", f"send an API key in the {API_KEY_HEADER} header{hint}", {"WWW-Authenticate": "ApiKey"})
            rec = keys.verify(api_key)
            if rec is None:
                raise ApiError(401, "unauthorized", "unknown or revoked API key", {"WWW-Authenticate": "ApiKey"})
            request.scope.setdefault("state", {})["key_id"] = rec.id
            if not rec.allows(role):
                raise ApiError(403, "forbidden", f"this {rec.role!r} key may not do this: it needs an {role!r} key")
            return rec

        return dep

    Read = Annotated[ApiKey | None, Depends(require("read"))]
    Admin = Annotated[ApiKey | None, Depends(require("admin"))]

    async def run(fn: Callable[[], Any]) -> Any:
        """``fn`` in a worker thread (at most ``settings.threads`` at once), within the request timeout."""
        if not engine.ready:
            why = f": {engine.error}" if engine.error else " (loading models)"
            raise ApiError(503, "not_ready", f"the server is not ready{why}", {"Retry-After": "5"})
        try:
            with anyio.fail_after(settings.request_timeout):
                return await anyio.to_thread.run_sync(fn, limiter=runtime["limiter"], abandon_on_cancel=True)
        except TimeoutError:
            raise ApiError(
                503,
                "timeout",
                f"the request took longer than {settings.request_timeout:g} s (server busy, or a very large image)",
                {"Retry-After": "5"},
            ) from None

    def image_body(raw: bool = True) -> dict[str, Any]:
        return openapi_body(ImageBody, {"image": "the image file"}, raw=raw)

    DetectorQ = Annotated[
        str | None,
        Query(description=f"Face detector, one of: {', '.join(settings.detectors)} (default {settings.detector}).", max_length=40),
    ]
    AnnotateQ = Annotated[
        bool, Query(description="Add `annotated_image`: a JPEG data URL of the image with boxes, landmarks and labels drawn.")
    ]
    EmbeddingsQ = Annotated[bool, Query(description="Include the embedding vectors in the faces.")]
    TopKQ = Annotated[int, Query(ge=1, le=20, description="Candidates per face.")]
    NameP = Annotated[str, Path(description="The person's name.", min_length=1, max_length=200)]
    recog = {"tags": ["recognition"], "responses": {200: json_response("ImageResult"), **error_responses(413, 415, 422)}}

    async def one_image(
        request: Request, faces_of: Callable[[Any], list], *, embeddings: bool = True, annotate: bool = False
    ) -> dict[str, Any]:
        """Read the request's image, then (in a worker thread) decode it, find its faces and make the ImageResult JSON."""
        raw = (await read_images(request, settings, ("image",)))["image"]

        def compute() -> dict[str, Any]:
            img = decode(raw, settings)
            return result_dict(raw.label, img, faces_of(img), embeddings=embeddings, annotate=annotate)

        return await run(compute)

    # --- recognition -------------------------------------------------------------------------

    @app.post("/v1/detect", summary="Find faces: boxes, scores, rotation", openapi_extra=image_body(), **recog)
    async def detect_route(request: Request, _: Read, detector: DetectorQ = None, annotate: AnnotateQ = False) -> Any:
        return await one_image(request, lambda img: engine.faces(img, engine.pipeline(detector), identify=False), annotate=annotate)

    @app.post("/v1/landmarks", summary="Faces with landmarks (68 or 5 points)", openapi_extra=image_body(), **recog)
    async def landmarks_route(
        request: Request,
        _: Read,
        model: Annotated[Literal["dlib68", "dlib5", "cnn68", "simple15"], Query(description="Landmark model.")] = "dlib68",
        detector: DetectorQ = None,
        annotate: AnnotateQ = False,
    ) -> Any:
        return await one_image(
            request, lambda img: engine.faces(img, engine.pipeline(detector, landmarks=model), identify=False), annotate=annotate
        )

    @app.post("/v1/embed", summary="Face embeddings (made as the gallery makes them)", openapi_extra=image_body(), **recog)
    async def embed_route(request: Request, _: Read, detector: DetectorQ = None) -> Any:
        return await one_image(request, lambda img: engine.faces(img, engine.pipeline(detector, embed=True), identify=False))

    @app.post(
        "/v1/analyze",
        summary="Everything per face: landmarks, attributes, and names when the gallery has people",
        openapi_extra=image_body(),
        **recog,
    )
    async def analyze_route(
        request: Request,
        _: Read,
        actions: Annotated[
            str, Query(description="Attributes: any of age,gender,emotion,ethnicity, or all; empty for none.", max_length=100)
        ] = "",
        identify: Annotated[
            Literal["auto", "on", "off"],
            Query(description="auto: name faces when the gallery has people; on: an empty gallery is an error."),
        ] = "auto",
        landmarks: Annotated[bool, Query(description="Compute 68-point landmarks.")] = True,
        top_k: TopKQ = 3,
        detector: DetectorQ = None,
        annotate: AnnotateQ = False,
        embeddings: EmbeddingsQ = False,
        quality: Annotated[bool, Query(description="Add each face's quality (sharpness, exposure, size, pose, learned score).")] = False,
    ) -> Any:
        from ..attributes import parse_actions

        acts = parse_actions(actions)
        ident = {"auto": None, "on": True, "off": False}[identify]

        def faces_of(img):
            pipe = engine.pipeline(detector, landmarks=landmarks, embed=ident is not False or embeddings, actions=acts)
            faces = engine.faces(img, pipe, identify=ident, top_k=top_k)
            if quality and faces:
                from ..quality import assess_faces

                assess_faces(img, faces)
            return faces

        return await one_image(request, faces_of, embeddings=embeddings, annotate=annotate)

    @app.post(
        "/v1/anonymize",
        summary="Cover every face (blur, pixelate, solid, mask); optionally keep or cover only the gallery's people",
        openapi_extra=image_body(),
        tags=["recognition"],
        responses={200: json_response("Anonymized"), **error_responses(413, 415, 422)},
    )
    async def anonymize_route(
        request: Request,
        _: Read,
        method: Annotated[Literal["blur", "pixelate", "solid", "mask"], Query(description="How faces are covered.")] = "blur",
        margin: Annotated[float | None, Query(ge=0.0, le=2.0, description="Margin around each face box, a share of its size (default 0.3).")] = None,
        known: Annotated[
            Literal["cover", "keep", "only"],
            Query(description="cover: every face; keep: leave the gallery's people visible; only: cover only them."),
        ] = "cover",
        format: Annotated[Literal["png", "jpeg"], Query(description="Format of the returned image.")] = "png",
    ) -> Any:
        from ..anonymize import DEFAULT_MARGIN, anonymize

        raw = (await read_images(request, settings, ("image",)))["image"]
        if known != "cover" and len(engine.gallery) == 0:
            raise ApiError(422, "empty_gallery", f"known={known} needs people in the gallery; it has none")

        def compute() -> dict[str, Any]:
            img = decode(raw, settings)
            res = anonymize(
                img, method=method, margin=DEFAULT_MARGIN if margin is None else margin, gallery=engine.gallery if known != "cover" else None,
                keep_known=known == "keep", only_known=known == "only",
            )
            d = res.to_dict()
            d["source"] = raw.label
            d["image"] = image_data_url(res.image, format)
            return d

        return await run(compute)

    @app.post("/v1/identify", summary="Who is each face? (name, or 'unknown')", openapi_extra=image_body(), **recog)
    async def identify_route(
        request: Request, _: Read, top_k: TopKQ = 3, annotate: AnnotateQ = False, embeddings: EmbeddingsQ = False
    ) -> Any:
        return await one_image(request, lambda img: engine.identify(img, top_k), embeddings=embeddings, annotate=annotate)

    @app.post(
        "/v1/verify",
        summary="Are the (largest) faces of two images the same person?",
        tags=["recognition"],
        openapi_extra=openapi_body(VerifyBody, {"image1": "first image", "image2": "second image"}),
        responses={200: json_response("Verification"), **error_responses(413, 415, 422)},
    )
    async def verify_route(
        request: Request,
        _: Read,
        threshold: Annotated[
            float | None,
            Query(gt=0, le=10, description="Distance at or below which the faces match (default: the model's calibrated one)."),
        ] = None,
        embeddings: EmbeddingsQ = False,
    ) -> Any:
        raws = await read_images(request, settings, ("image1", "image2"))

        def compute():
            a, b = decode(raws["image1"], settings), decode(raws["image2"], settings)
            v = engine.verify(a, b, threshold)
            if not embeddings:
                for f in (v.face1, v.face2):
                    if f is not None:
                        f.embedding = None
            return v.to_dict()

        return await run(compute)

    # --- gallery ------------------------------------------------------------------------------

    gal = {"tags": ["gallery"]}

    @app.get(
        "/v1/gallery",
        summary="The gallery: store, model, threshold, and everyone enrolled",
        responses={200: json_response("Gallery"), **error_responses()},
        **gal,
    )
    async def gallery_route(_: Read) -> Any:
        def compute():
            info = engine.gallery.info()
            for k in ("url", "index_file"):  # server paths stay on the server
                info.pop(k, None)
            return {"info": info, "people": [p.to_dict() for p in engine.gallery.people()]}

        return await run(compute)

    @app.post(
        "/v1/gallery/people",
        summary="Enrol a person from one or more images (admin)",
        openapi_extra=openapi_body(
            EnrollBody, {"image": "an image of the person (repeat the field for more)"}, {"name": "the person's name"}
        ),
        responses={200: json_response("EnrollResponse"), **error_responses(409, 413, 415, 422)},
        **gal,
    )
    async def enroll_route(
        request: Request,
        _: Admin,
        box: Annotated[
            str | None,
            Query(
                description="Enrol the face in this box ('left,top,right,bottom', e.g. from /v1/analyze) instead of the largest.",
                max_length=100,
            ),
        ] = None,
    ) -> Any:
        face_box = _parse_box(box)
        mt = media_type(request)
        if mt == "multipart/form-data":
            files, values = await read_multipart(request, settings, ("image",), ("name",))
            raws, name = files["image"], values.get("name", "")
        elif mt == "application/json":
            body = parse_json(await request.body(), EnrollBody)
            raws, name = [from_ref(r, settings, f"images[{i}]") for i, r in enumerate(body.images)], body.name
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"send multipart/form-data (fields name, image) or application/json, not {mt or 'no content type'!r}",
            )
        if not name.strip():
            raise ApiError(422, "invalid_request", "give the person's name (field 'name')")
        if not raws:
            raise ApiError(422, "invalid_request", "give at least one image (field 'image')")
        if len(raws) > settings.max_images:
            raise ApiError(413, "too_many_images", f"{len(raws)} images: at most {settings.max_images} per request")

        def compute():
            images = [decode(r, settings) for r in raws]  # every image must decode before anything is enrolled
            results = engine.enroll(name, images, [r.label for r in raws], face_box)
            ok = [r for r in results if r.ok]
            if not ok:
                bad = results[0]
                raise ApiError(
                    _ENROLL_STATUS.get(bad.error_code or "", 400),
                    bad.error_code or "not_enrolled",
                    f"{bad.source}: {bad.note or bad.status}",
                )
            return {"person": engine.gallery.person(ok[0].person).to_dict(), "results": [r.to_dict() for r in results]}

        return await run(compute)

    @app.get(
        "/v1/gallery/people/{name:path}",
        summary="One person and their stored embeddings (without vectors)",
        responses={200: json_response("PersonDetail"), **error_responses(404)},
        **gal,
    )
    async def person_route(name: NameP, _: Read) -> Any:
        return await run(
            lambda: {"person": engine.gallery.person(name).to_dict(), "embeddings": [e.to_dict() for e in engine.gallery.embeddings(name)]}
        )

    @app.patch(
        "/v1/gallery/people/{name:path}",
        summary="Rename a person (admin)",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RenameBody"}}}}
        },
        responses={200: json_response("Person"), **error_responses(404, 409, 415)},
        **gal,
    )
    async def rename_route(request: Request, name: NameP, _: Admin) -> Any:
        if media_type(request) != "application/json":
            raise ApiError(415, "unsupported_media_type", 'send application/json: {"name": "new name"}')
        new = parse_json(await request.body(), RenameBody).name

        def compute():
            engine.gallery.rename(name, new)
            return engine.gallery.person(new.strip()).to_dict()

        return await run(compute)

    @app.delete(
        "/v1/gallery/people/{name:path}",
        summary="Remove a person and their embeddings (admin)",
        responses={200: json_response("Removed"), **error_responses(404)},
        **gal,
    )
    async def remove_route(name: NameP, _: Admin) -> Any:
        return await run(lambda: {"name": name, "removed_embeddings": engine.gallery.remove(name)})

    @app.delete(
        "/v1/gallery/embeddings/{embedding_id}",
        summary="Remove one stored embedding (admin)",
        responses={200: json_response("Removed"), **error_responses(404)},
        **gal,
    )
    async def remove_embedding_route(embedding_id: Annotated[int, Path(ge=1, le=2**62)], _: Admin) -> Any:
        def compute():
            store = engine.gallery.store
            pid = store.person_ids_of(np.array([embedding_id])).get(embedding_id)
            if pid is None:
                raise ApiError(404, "not_found", f"no stored embedding with id {embedding_id}")
            name = store.person_names().get(pid, "")
            store.remove_embedding(embedding_id)
            return {"name": name, "removed_embeddings": 1}

        return await run(compute)

    # --- service -------------------------------------------------------------------------------

    svc = {"tags": ["service"]}

    @app.get("/v1/health", summary="Liveness: the process answers", **svc)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/ready", summary="Readiness: models loaded and gallery open", responses={503: json_response("Error", "not ready")}, **svc)
    async def ready() -> Any:
        if not engine.ready:
            why = engine.error or "loading models"
            return error_response(503, "not_ready", f"not ready: {why}", {"Retry-After": "5"})
        return {"ready": True, "version": __version__}

    @app.get("/v1/info", summary="What this server offers and its limits (no key needed)", **svc)
    async def info() -> dict[str, Any]:
        from ..attributes import ACTIONS

        return {
            "version": __version__,
            "auth": settings.auth,
            "roles": {"read": "recognition and reading the gallery", "admin": "also enrol, rename and delete"},
            "detectors": list(settings.detectors),
            "actions": list(ACTIONS),
            "url_images": settings.allow_urls,
            "limits": {
                "max_body_bytes": settings.max_body_bytes,
                "max_pixels": settings.max_pixels,
                "request_timeout_s": settings.request_timeout,
                "max_images": settings.max_images,
            },
        }

    @app.get("/v1/whoami", summary="The role of the key sent", responses=error_responses(), **svc)
    async def whoami(key: Read) -> dict[str, Any]:
        return key.public() if key is not None else {"id": None, "name": "no auth", "role": "admin"}

    # --- web page and docs ----------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        body, mt = static["index.html"]
        return Response(body, media_type=mt, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    @app.get("/static/{name:path}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in static:
            raise ApiError(404, "not_found", "no such file")
        body, mt = static[name]
        return Response(body, media_type=mt, headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        if "docs/swagger-ui-bundle.js" not in static:
            return HTMLResponse(
                '<p>Swagger UI is not installed (pip install "facelab[server]"); '
                'the API is described in <a href="/openapi.json">/openapi.json</a>.</p>'
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="facelab API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/favicon.png",
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in JSON_MODELS:
                s = model.model_json_schema(ref_template="#/components/schemas/{model}")
                comps.update(s.pop("$defs", {}))
                comps[model.__name__] = s
            comps.update(SCHEMAS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory facelab.serve.app:app_from_env`` (settings in ``$FACELAB_SERVE_SETTINGS``)."""
    return create_app(Settings.from_env())


__all__ = ["API_KEY_HEADER", "BodyLimit", "RequestContext", "app_from_env", "create_app"]
