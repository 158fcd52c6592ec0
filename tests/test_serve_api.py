"""REST API tests on real photos: every endpoint, both roles, every error path (FastAPI TestClient).

The sample photos are in the repository (samples/, MIT), so these tests need no shared data.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import facelab

pytest.importorskip("fastapi", reason="the server tests need the server extra: pip install -e '.[test]'")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def upload(data: bytes, name: str = "photo.jpg", field: str = "image") -> dict:
    return {field: (name, data, "image/jpeg")}


def err(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"] and body["error"]["request_id"]
    return body["error"]


@pytest.fixture(scope="module")
def enrolled(api, serve_env, photos):
    """Barack Obama enrolled from obama.jpg, Joe Biden from his box in obama_and_biden.jpg (admin key)."""
    r = api.post("/v1/gallery/people", data={"name": "Barack Obama"}, files=upload(photos["obama"], "obama.jpg"), headers=serve_env.h())
    assert r.status_code == 200, r.text
    biden = facelab.largest_face(photos["biden"])
    b = min(facelab.embed(photos["obama_and_biden"], min_face=80), key=lambda f: facelab.distance(f, biden)).box
    r = api.post(
        f"/v1/gallery/people?box={b.left},{b.top},{b.right},{b.bottom}",
        json={"name": "Joe Biden", "images": [{"base64": b64(photos["obama_and_biden"])}]},
        headers=serve_env.h(),
    )
    assert r.status_code == 200, r.text
    return {"biden_box": b}


# --- service endpoints and the page ---------------------------------------------------------


def test_health_ready_info_need_no_key(api):
    assert api.get("/v1/health").json() == {"status": "ok"}
    assert api.get("/v1/ready").json()["ready"] is True
    info = api.get("/v1/info").json()
    assert info["auth"] is True and info["limits"]["max_pixels"] == 25_000_000
    assert set(info["actions"]) == {"age", "gender", "emotion", "ethnicity"}


def test_request_id_is_echoed_and_logged_as_json(api, serve_env, capsys):
    r = api.get("/v1/whoami", headers={**serve_env.h("read"), "X-Request-ID": "abc-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
    assert r.json()["role"] == "read"
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    access = [d for d in lines if d.get("msg") == "request" and d["request_id"] == "abc-123"]
    assert access and access[0]["status"] == 200 and access[0]["path"] == "/v1/whoami" and access[0]["key"]
    # an unsafe client ID is replaced by a fresh one
    r = api.get("/v1/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert len(r.headers["x-request-id"]) == 32


def test_page_and_docs_are_self_contained(api):
    r = api.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    files = ["/", "/static/app.js", "/static/app.css"]
    for path in files:
        text = api.get(path).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path  # nothing from elsewhere
    js = api.get("/static/app.js")
    assert js.status_code == 200 and "/v1/analyze" in js.text
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/static/docs/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert api.get("/static/docs/swagger-ui-bundle.js").status_code == 200
    err(api.get("/static/../pyproject.toml"), 404, "not_found")
    err(api.get("/static/%2e%2e/serve/app.py"), 404, "not_found")
    schema = api.get("/openapi.json").json()
    assert {"/v1/detect", "/v1/analyze", "/v1/identify", "/v1/verify", "/v1/gallery/people"} <= set(schema["paths"])


# --- keys and roles ---------------------------------------------------------------------------


def test_missing_wrong_and_bearer_keys(api, serve_env, photos):
    err(api.get("/v1/gallery"), 401, "unauthorized")
    err(api.get("/v1/gallery", headers={"X-API-Key": "flk_00000000_nope"}), 401, "unauthorized")
    err(api.get("/v1/gallery", headers={"X-API-Key": serve_env.read + "x"}), 401, "unauthorized")
    assert api.get("/v1/gallery", headers={"Authorization": f"Bearer {serve_env.read}"}).status_code == 200
    # recognition is refused without a key before any work is done
    err(api.post("/v1/detect", files=upload(photos["obama"])), 401, "unauthorized")


def test_read_role_cannot_change_the_gallery(api, serve_env, photos, enrolled):
    h = serve_env.h("read")
    assert api.post("/v1/identify", files=upload(photos["obama2"]), headers=h).status_code == 200
    assert api.get("/v1/gallery", headers=h).status_code == 200
    err(api.post("/v1/gallery/people", data={"name": "Mallory"}, files=upload(photos["obama2"]), headers=h), 403, "forbidden")
    err(api.delete("/v1/gallery/people/Barack Obama", headers=h), 403, "forbidden")
    err(api.patch("/v1/gallery/people/Barack Obama", json={"name": "X"}, headers=h), 403, "forbidden")
    err(api.delete("/v1/gallery/embeddings/1", headers=h), 403, "forbidden")
    assert "Barack Obama" in [p["name"] for p in api.get("/v1/gallery", headers=h).json()["people"]]


def test_keys_cli_creates_hashed_keys_and_revocation_is_immediate(api, serve_env):
    from typer.testing import CliRunner

    from facelab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["keys", "create", "--role", "read", "--name", "cli", "--data-dir", str(serve_env.data_dir), "--json"])
    assert res.exit_code == 0, res.output
    made = json.loads(res.stdout)
    key = made["key"]
    text = (serve_env.data_dir / "keys.json").read_text()
    assert key not in text and key.split("_", 2)[2] not in text  # only the hash is stored
    assert stat.S_IMODE(os.stat(serve_env.data_dir / "keys.json").st_mode) == 0o600
    assert api.get("/v1/whoami", headers={"X-API-Key": key}).json()["id"] == made["id"]  # picked up while running
    assert runner.invoke(app, ["keys", "revoke", made["id"], "--data-dir", str(serve_env.data_dir)]).exit_code == 0
    err(api.get("/v1/whoami", headers={"X-API-Key": key}), 401, "unauthorized")
    bad = runner.invoke(app, ["keys", "create", "--role", "root", "--data-dir", str(serve_env.data_dir)])
    assert bad.exit_code == 2 and "unknown role" in bad.output


# --- recognition endpoints: same results as the Python API ------------------------------------


def test_detect_matches_the_python_api_in_every_input_form(api, serve_env, photos):
    want = [f.to_dict() for f in facelab.detect(photos["obama_and_biden"], min_face=80)]
    assert len(want) >= 2
    h = serve_env.h("read")
    multipart = api.post("/v1/detect", files=upload(photos["obama_and_biden"], "ob.jpg"), headers=h).json()
    as_json = api.post("/v1/detect", json={"image": {"base64": b64(photos["obama_and_biden"])}}, headers=h).json()
    data_url = api.post(
        "/v1/detect", json={"image": {"base64": "data:image/jpeg;base64," + b64(photos["obama_and_biden"])}}, headers=h
    ).json()
    raw = api.post("/v1/detect", content=photos["obama_and_biden"], headers={**h, "Content-Type": "image/jpeg"}).json()
    for res in (multipart, as_json, data_url, raw):
        assert res["faces"] == want
        assert (res["width"], res["height"]) == (900, 643)
    assert multipart["source"] == "upload:ob.jpg"


def test_landmarks_68_and_5(api, serve_env, photos):
    h = serve_env.h("read")
    r = api.post("/v1/landmarks", files=upload(photos["obama"]), headers=h).json()
    want = facelab.landmarks(photos["obama"], min_face=80)[0].landmarks.to_dict()
    assert r["faces"][0]["landmarks"] == want and len(want["points"]) == 68
    r5 = api.post("/v1/landmarks?model=dlib5", files=upload(photos["obama"]), headers=h).json()
    assert len(r5["faces"][0]["landmarks"]["points"]) == 5
    err(api.post("/v1/landmarks?model=/etc/passwd", files=upload(photos["obama"]), headers=h), 422, "invalid_request")


def test_embed_is_the_gallery_embedding(api, serve_env, photos):
    r = api.post("/v1/embed", files=upload(photos["obama"]), headers=serve_env.h("read")).json()
    vec = np.array(r["faces"][0]["embedding"]["vector"])
    # galleries embed with flip averaging (the default): the vectors are comparable with the enrolled ones
    want = facelab.embed(photos["obama"], model="dlib", flip=True, min_face=80)[0].embedding.vector
    assert vec.shape == (128,) and np.abs(vec - want).max() < 1e-5


def test_analyze_attributes_landmarks_and_annotated_image(api, serve_env, photos):
    r = api.post("/v1/analyze?actions=all&annotate=true&identify=off", files=upload(photos["obama"]), headers=serve_env.h("read"))
    assert r.status_code == 200, r.text
    res = r.json()
    f = res["faces"][0]
    assert set(f["attributes"]) == {"age", "gender", "emotion", "ethnicity"}
    assert f["attributes"]["gender"]["value"] == "male"  # Obama; p(male) measured 0.97
    assert 25 <= f["attributes"]["age"]["value"] <= 70  # measured 47
    assert len(f["landmarks"]["points"]) == 68 and "embedding" not in f and "identity" not in f
    head, _, data = res["annotated_image"].partition(",")
    assert head == "data:image/jpeg;base64"
    img = Image.open(io.BytesIO(base64.b64decode(data)))
    assert img.size == (720, 900)
    err(api.post("/v1/analyze?actions=age,height", files=upload(photos["obama"]), headers=serve_env.h("read")), 400, "bad_input")


def test_identify_and_analyze_name_enrolled_people(api, serve_env, photos, enrolled):
    h = serve_env.h("read")
    r = api.post("/v1/identify?top_k=2", files=upload(photos["obama2"]), headers=h).json()
    assert [f["identity"]["name"] for f in r["faces"]] == ["Barack Obama"]
    assert r["faces"][0]["identity"]["distance"] < r["faces"][0]["identity"]["threshold"]  # measured 0.39 vs 0.495
    r = api.post("/v1/identify", files=upload(photos["biden"]), headers=h).json()
    assert r["faces"][0]["identity"]["name"] == "Joe Biden"  # enrolled from his box in the group photo
    r = api.post("/v1/identify", files=upload(photos["alex-lacamoire"]), headers=h).json()
    assert r["faces"] and all(f["identity"]["name"] == "unknown" for f in r["faces"])
    # analyze names faces when the gallery has people (identify=auto)
    r = api.post("/v1/analyze?actions=gender", files=upload(photos["obama2"]), headers=h).json()
    assert r["faces"][0]["identity"]["name"] == "Barack Obama" and r["faces"][0]["attributes"]["gender"]["value"] == "male"
    # the same answer as the Python API on the same gallery
    g = facelab.gallery.Gallery(serve_env.data_dir / "gallery.db", min_face=80)
    assert g.identify(photos["obama2"])[0].identity.distance == pytest.approx(r["faces"][0]["identity"]["distance"], abs=1e-4)
    g.close()


def test_verify_matches_the_python_api(api, serve_env, photos):
    h = serve_env.h("read")
    same = api.post(
        "/v1/verify", files={**upload(photos["obama"], field="image1"), **upload(photos["obama2"], field="image2")}, headers=h
    ).json()
    want = facelab.verify(photos["obama"], photos["obama2"])
    assert same["same"] is True and same["distance"] == pytest.approx(want.distance, abs=1e-4)  # measured 0.338
    diff = api.post(
        "/v1/verify", json={"image1": {"base64": b64(photos["obama"])}, "image2": {"base64": b64(photos["biden"])}}, headers=h
    ).json()
    assert diff["same"] is False and diff["distance"] > 0.6  # measured 0.87
    strict = api.post(
        "/v1/verify?threshold=0.2", files={**upload(photos["obama"], field="image1"), **upload(photos["obama2"], field="image2")}, headers=h
    ).json()
    assert strict["same"] is False and strict["threshold"] == 0.2
    err(api.post("/v1/verify", files=upload(photos["obama"], field="image1"), headers=h), 422, "invalid_request")


def test_no_face_is_an_empty_list_for_analysis_and_422_for_verify(api, serve_env):
    blank = io.BytesIO()
    Image.new("RGB", (200, 150), (120, 130, 140)).save(blank, "PNG")
    h = serve_env.h("read")
    r = api.post("/v1/detect", files={"image": ("blank.png", blank.getvalue(), "image/png")}, headers=h)
    assert r.status_code == 200 and r.json()["faces"] == []
    files = {"image1": ("a.png", blank.getvalue(), "image/png"), "image2": ("b.png", blank.getvalue(), "image/png")}
    err(api.post("/v1/verify", files=files, headers=h), 422, "no_face")


def test_concurrent_requests_give_the_same_answers(api, serve_env, photos):
    """Several requests computing at once in the worker threads share the models safely."""
    h = serve_env.h("read")
    want = api.post("/v1/landmarks", files=upload(photos["obama_and_biden"]), headers=h).json()["faces"]
    with ThreadPoolExecutor(4) as ex:
        got = list(
            ex.map(lambda _: api.post("/v1/landmarks", files=upload(photos["obama_and_biden"]), headers=h).json()["faces"], range(4))
        )
    assert all(g == want for g in got)


# --- gallery -----------------------------------------------------------------------------------


def test_enroll_is_idempotent_and_refuses_conflicts_and_faceless_images(api, serve_env, photos, enrolled):
    h = serve_env.h()
    again = api.post("/v1/gallery/people", data={"name": "Barack Obama"}, files=upload(photos["obama"]), headers=h).json()
    assert again["results"][0]["status"] == "duplicate" and again["person"]["count"] == 1
    err(api.post("/v1/gallery/people", data={"name": "Someone Else"}, files=upload(photos["obama"]), headers=h), 409, "duplicate_face")
    blank = io.BytesIO()
    Image.new("RGB", (120, 120), (200, 10, 10)).save(blank, "PNG")
    err(
        api.post("/v1/gallery/people", data={"name": "Nobody"}, files={"image": ("b.png", blank.getvalue(), "image/png")}, headers=h),
        422,
        "no_face",
    )
    err(api.post("/v1/gallery/people", data={"name": "unknown"}, files=upload(photos["obama2"]), headers=h), 400, "bad_input")
    err(api.post("/v1/gallery/people", data={"name": "  "}, files=upload(photos["obama2"]), headers=h), 422, "invalid_request")
    err(api.post("/v1/gallery/people", files=upload(photos["obama2"]), headers=h), 422, "invalid_request")
    err(api.post("/v1/gallery/people?box=10,10,5,5", data={"name": "X"}, files=upload(photos["obama2"]), headers=h), 422, "invalid_request")
    err(
        api.post("/v1/gallery/people?box=5000,5000,5100,5100", data={"name": "X"}, files=upload(photos["obama2"]), headers=h),
        400,
        "bad_input",
    )
    names = [p["name"] for p in api.get("/v1/gallery", headers=h).json()["people"]]
    assert names == ["Barack Obama", "Joe Biden"]  # nothing half-enrolled


def test_gallery_read_rename_and_delete(api, serve_env, photos, enrolled):
    h = serve_env.h()
    r = api.post("/v1/gallery/people", data={"name": "Obama Twin"}, files=upload(photos["obama2"], "o2.jpg"), headers=h).json()
    assert r["results"][0]["status"] == "added" and r["person"] == {**r["person"], "name": "Obama Twin", "count": 1}
    g = api.get("/v1/gallery", headers=h).json()
    assert g["info"]["people"] == 3 and "url" not in g["info"]  # server paths stay on the server
    person = api.get("/v1/gallery/people/Obama Twin", headers=h).json()
    assert person["person"]["count"] == 1 and "vector" not in person["embeddings"][0]
    err(api.patch("/v1/gallery/people/Obama Twin", json={"name": "Joe Biden"}, headers=h), 400, "bad_input")  # taken
    err(
        api.patch("/v1/gallery/people/Obama Twin", content=b"name=x", headers={**h, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert api.patch("/v1/gallery/people/Obama Twin", json={"name": "Obama/Twin"}, headers=h).json()["name"] == "Obama/Twin"
    assert api.get("/v1/gallery/people/Obama%2FTwin", headers=h).status_code == 200  # names may hold slashes
    emb_id = api.get("/v1/gallery/people/Obama%2FTwin", headers=h).json()["embeddings"][0]["id"]
    assert api.delete(f"/v1/gallery/embeddings/{emb_id}", headers=h).json() == {"name": "Obama/Twin", "removed_embeddings": 1}
    err(api.get("/v1/gallery/people/Obama%2FTwin", headers=h), 404, "unknown_person")  # the last photo took the person with it
    err(api.delete(f"/v1/gallery/embeddings/{emb_id}", headers=h), 404, "not_found")
    err(api.delete("/v1/gallery/people/Nobody Here", headers=h), 404, "unknown_person")
    # enrol and delete a person; the identification index follows at once
    api.post("/v1/gallery/people", data={"name": "Temp"}, files=upload(photos["obama2"]), headers=h)
    assert api.delete("/v1/gallery/people/Temp", headers=h).json() == {"name": "Temp", "removed_embeddings": 1}
    names = [f["identity"]["name"] for f in api.post("/v1/identify", files=upload(photos["obama2"]), headers=h).json()["faces"]]
    assert names == ["Barack Obama"]


def test_server_on_a_postgresql_gallery(pg_url, tmp_path, photos):
    from facelab.serve import Settings

    from serve_fixtures import start_client

    client = start_client(Settings(data_dir=tmp_path, db=pg_url, auth=False, min_face=80, preload_actions=()))
    try:
        assert client.post("/v1/gallery/people", data={"name": "Barack Obama"}, files=upload(photos["obama"])).status_code == 200
        r = client.post("/v1/identify", files=upload(photos["obama2"])).json()
        assert r["faces"][0]["identity"]["name"] == "Barack Obama"
        assert client.get("/v1/gallery").json()["info"]["store"] == "postgresql"
    finally:
        client.__exit__(None, None, None)


# --- errors: every bad request is a 4xx with a stable code ---------------------------------------


def test_bad_images(api, serve_env, photos):
    h = serve_env.h("read")
    err(api.post("/v1/detect", files=upload(photos["obama"][: len(photos["obama"]) // 3]), headers=h), 400, "corrupt_image")
    err(api.post("/v1/detect", files=upload(b""), headers=h), 400, "empty_image")
    err(api.post("/v1/detect", files=upload(b"just some text, not an image"), headers=h), 415, "unsupported_image")
    err(api.post("/v1/detect", json={"image": {"base64": "!!! not base64 !!!"}}, headers=h), 400, "bad_base64")
    err(api.post("/v1/detect", json={"image": {"base64": "data:image/png,rawtext"}}, headers=h), 400, "bad_base64")


def test_bad_requests(api, serve_env, photos):
    h = serve_env.h("read")
    err(api.post("/v1/detect", content=b"hello", headers={**h, "Content-Type": "text/plain"}), 415, "unsupported_media_type")
    err(api.post("/v1/detect", content=b"{not json", headers={**h, "Content-Type": "application/json"}), 422, "invalid_request")
    err(api.post("/v1/detect", json={"image": {}}, headers=h), 422, "invalid_request")
    err(
        api.post("/v1/detect", json={"image": {"base64": b64(photos["obama"]), "url": "http://x.test/a.jpg"}}, headers=h),
        422,
        "invalid_request",
    )
    err(api.post("/v1/detect", json={"picture": {"base64": "AAAA"}}, headers=h), 422, "invalid_request")
    err(api.post("/v1/detect", files=upload(photos["obama"], field="photo"), headers=h), 422, "invalid_request")
    two = [("image", ("a.jpg", photos["obama"], "image/jpeg")), ("image", ("b.jpg", photos["obama2"], "image/jpeg"))]
    err(api.post("/v1/detect", files=two, headers=h), 422, "invalid_request")
    extra = [("image", ("a.jpg", photos["obama"], "image/jpeg")), ("extra", ("x.jpg", b"1", "image/jpeg"))]
    err(api.post("/v1/detect", files=extra, headers=h), 422, "invalid_request")
    err(api.post("/v1/detect?detector=haar", files=upload(photos["obama"]), headers=h), 400, "bad_input")
    err(api.post("/v1/identify?top_k=0", files=upload(photos["obama"]), headers=h), 422, "invalid_request")
    err(api.get("/v1/nothing-here", headers=h), 404, "not_found")
    err(api.get("/v1/detect", headers=h), 405, "method_not_allowed")


def test_paths_and_urls_never_reach_the_filesystem(api, serve_env):
    h = serve_env.h("read")
    for url in ("/etc/passwd", "file:///etc/passwd", "ftp://example.test/a.jpg", "http://"):
        err(api.post("/v1/detect", json={"image": {"url": url}}, headers=h), 422, "bad_url")
    # loopback and private addresses are refused (SSRF) unless the server allows them
    err(api.post("/v1/detect", json={"image": {"url": "http://127.0.0.1:9/x.jpg"}}, headers=h), 403, "url_not_allowed")
    err(api.post("/v1/detect", json={"image": {"url": "http://localhost/x.jpg"}}, headers=h), 403, "url_not_allowed")
    engine = api.app.state.engine
    assert str(serve_env.data_dir) in engine.gallery.store.display  # the gallery is in the data folder


class _Photos(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []  # every path asked for, to show what the server never fetched

    def log_message(self, *a):
        pass

    def do_GET(self):
        type(self).requested.append(self.path)
        super().do_GET()


@pytest.fixture(scope="module")
def photo_server():
    """A loopback HTTP server over samples/ (the only network the URL tests use)."""
    from serve_fixtures import SAMPLES

    handler = lambda *a, **kw: _Photos(*a, directory=str(SAMPLES), **kw)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_image_urls(api_open, photo_server, photos):
    r = api_open.post("/v1/detect", json={"image": {"url": f"{photo_server}/photos/obama2.jpg"}})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == f"{photo_server}/photos/obama2.jpg"
    assert r.json()["faces"] == [f.to_dict() for f in facelab.detect(photos["obama2"], min_face=80)]
    err(api_open.post("/v1/detect", json={"image": {"url": f"{photo_server}/photos/missing.jpg"}}), 422, "url_http_error")
    err(api_open.post("/v1/detect", json={"image": {"url": f"{photo_server}/README.md"}}), 422, "url_not_an_image")
    err(api_open.post("/v1/detect", json={"image": {"url": "http://127.0.0.1:9/closed.jpg"}}), 422, "bad_url")


def test_loopback_is_refused_in_every_notation(api, serve_env, photo_server):
    """SSRF: the photo server listens on 127.0.0.1; no spelling of that address reaches it (redirects: tests/test_url_guard.py)."""
    h = serve_env.h("read")
    port = photo_server.rsplit(":", 1)[1]
    _Photos.requested.clear()
    for host in ("127.0.0.1", "localhost", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]"):
        err(api.post("/v1/detect", json={"image": {"url": f"http://{host}:{port}/photos/obama2.jpg"}}, headers=h), 403, "url_not_allowed")
    assert _Photos.requested == []


def test_limits(api_open, photos):
    # body cap (1.5 MB here): refused before any decoding
    err(api_open.post("/v1/detect", content=b"\xff" * 1_600_000, headers={"Content-Type": "image/jpeg"}), 413, "request_too_large")
    err(api_open.post("/v1/detect", files=upload(b"\xff" * 1_600_000)), 413, "request_too_large")
    # pixel cap (2 MP here): a 2000x1500 PNG is small on the wire but 3 MP
    big = io.BytesIO()
    Image.new("RGB", (2000, 1500), (90, 90, 90)).save(big, "PNG")
    assert len(big.getvalue()) < 1_500_000
    e = err(api_open.post("/v1/detect", files={"image": ("big.png", big.getvalue(), "image/png")}), 413, "image_too_large")
    assert "3.0 MP" in e["message"]
    # too many images in one enrolment (at most 10)
    small = io.BytesIO()
    Image.new("RGB", (40, 40), (90, 90, 90)).save(small, "PNG")
    files = [("image", (f"{i}.png", small.getvalue(), "image/png")) for i in range(11)]
    err(api_open.post("/v1/gallery/people", data={"name": "Many"}, files=files), 413, "too_many_images")


def test_empty_gallery_and_no_auth_server(api_open, photos):
    assert api_open.get("/v1/whoami").json()["role"] == "admin"  # --no-auth: no key needed
    err(api_open.post("/v1/identify", files=upload(photos["obama2"])), 409, "empty_gallery")
    err(api_open.post("/v1/analyze?identify=on", files=upload(photos["obama2"])), 409, "empty_gallery")
    r = api_open.post("/v1/analyze", files=upload(photos["obama2"])).json()  # identify=auto: just no names
    assert r["faces"] and "identity" not in r["faces"][0]


def test_cors_is_off_by_default_and_on_for_listed_origins(api, api_open):
    assert "access-control-allow-origin" not in api.get("/v1/health", headers={"Origin": "http://app.example"}).headers
    pre = api.options("/v1/detect", headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    r = api_open.get("/v1/health", headers={"Origin": "http://app.example"})
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    assert "access-control-allow-origin" not in api_open.get("/v1/health", headers={"Origin": "http://evil.example"}).headers


def test_request_timeout_is_a_503_with_retry_after(tmp_path, photos):
    from facelab.serve import Settings

    from serve_fixtures import start_client

    client = start_client(Settings(data_dir=tmp_path, auth=False, min_face=40, request_timeout=0.001, preload_actions=()))
    try:
        e = err(client.post("/v1/landmarks", files=upload(photos["obama_and_biden"])), 503, "timeout")
        assert "0.001 s" in e["message"]
        assert client.get("/v1/health").status_code == 200  # the server goes on
    finally:
        client.__exit__(None, None, None)


def test_not_ready_server_says_why(tmp_path):
    """A gallery that cannot be opened: health answers, readiness and work are 503 not_ready with the reason."""
    from fastapi.testclient import TestClient

    from facelab.serve import Settings, create_app

    with TestClient(create_app(Settings(data_dir=tmp_path, db=str(tmp_path / "missing" / "g.db"), auth=False))) as client:
        import time

        for _ in range(100):
            r = client.get("/v1/ready")
            if "loading" not in r.json()["error"]["message"]:
                break
            time.sleep(0.05)
        e = err(r, 503, "not_ready")
        assert "does not exist" in e["message"]
        assert client.get("/v1/health").status_code == 200
        err(client.post("/v1/detect", content=b"x", headers={"Content-Type": "image/jpeg"}), 503, "not_ready")
