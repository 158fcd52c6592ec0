"""facelab.anonymize on real photos: covered faces are gone (not detected, not matching, not recoverable)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from conftest import SAMPLES

import facelab
from facelab.anonymize import METHODS, Anonymized, anonymize
from facelab.embed import distance, embed
from facelab.gallery import KnownFaces
from facelab.types import Face

PHOTO = SAMPLES / "photos" / "obama_and_biden.jpg"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return facelab.load_image(PHOTO)


@pytest.fixture(scope="module")
def known() -> KnownFaces:
    kf = KnownFaces("dlib", 0.6)
    for name in ("obama", "biden"):
        f = facelab.largest_face(SAMPLES / "known" / f"{name}.jpg")
        kf.add(name, f.embedding)
    return kf


@pytest.fixture(scope="module")
def people(photo, known) -> dict[str, Face]:
    """Obama's and Biden's faces in the original photo (identified)."""
    faces = embed(photo, facelab.detect(photo))
    known.identify_faces(faces)
    got = {f.identity.name: f for f in faces if f.identity.known}
    assert set(got) == {"obama", "biden"}
    return got


def _inside(face: Face, res: Anonymized) -> bool:
    m = np.zeros(res.image.shape[:2], np.uint8)
    for r in res.covered:
        r.draw_mask(m)
    cx, cy = face.box.center
    return bool(m[int(cy), int(cx)])


def _embed_at(image: np.ndarray, face: Face) -> Face:
    f = Face(face.box, face.score, face.detector, face.rotation)
    return embed(image, [f])[0]


def test_false_boxes_of_turned_views_are_not_covered(photo, people):
    """Turned copies of the photo give 0.99-scored boxes on flags, arms and the background: unchecked they
    covered 64 % of this photo.  The orientation check keeps the faces and drops most of them."""
    from facelab.anonymize import SWEEP_MIN_LOGIT

    def share(res: Anonymized) -> float:
        m = np.zeros(photo.shape[:2], np.uint8)
        for r in res.covered:
            r.draw_mask(m)
        return float((m > 0).mean())

    unchecked, checked = anonymize(photo, min_logit=None), anonymize(photo)
    assert SWEEP_MIN_LOGIT is not None
    assert all(_inside(f, checked) for f in people.values())
    assert len(checked.covered) < len(unchecked.covered) and share(checked) < 0.25 < share(unchecked)  # measured 0.16 vs 0.64


@pytest.mark.parametrize("method", METHODS)
def test_covered_faces_are_not_detected_and_do_not_match(photo, people, method):
    res = anonymize(photo, method=method)
    assert len(res.covered) >= 2
    for name, face in people.items():
        assert _inside(face, res), f"{name}'s face is not inside a covered region"
    # no face is found where a covered one was (sweep on), and the covered place no longer matches its person
    for f in facelab.detect(res.image, rotate=True):
        assert not any(f.box.iou(p.box) > 0.3 for p in people.values()), f"a face was still detected in a covered region ({method})"
    for name, face in people.items():
        d = distance(_embed_at(res.image, face), face)
        assert d > 0.6, f"{name}'s covered face still matches ({method}: distance {d:.3f})"


def _wiener(channel: np.ndarray, sigma: float, k: float = 1e-3) -> np.ndarray:
    """Wiener deconvolution of a Gaussian blur of ``sigma`` (known point spread function)."""
    h, w = channel.shape
    y, x = np.mgrid[:h, :w]
    psf = np.exp(-(((x - w // 2) ** 2 + (y - h // 2) ** 2) / (2 * sigma**2)))
    H = np.fft.fft2(np.fft.ifftshift(psf / psf.sum()))
    G = np.fft.fft2(channel.astype(np.float64))
    return np.real(np.fft.ifft2(G * np.conj(H) / (np.abs(H) ** 2 + k)))


@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_inverse_filter_does_not_bring_the_face_back(photo, people, method):
    """Wiener deconvolution (the blur's own sigma, several noise levels) does not restore a detectable or matching face.

    Detection is upright (where the face was): at k=1e-4 the output is mostly ringing, and the rotation
    sweep's 7 angles find false faces in the stripes anywhere in the photo.
    """
    from facelab.anonymize import cell_size

    res = anonymize(photo, method=method)
    for name, face in people.items():
        sigma = cell_size(face, method) * 0.6
        for k in (1e-2, 1e-3, 1e-4):
            restored = np.stack([_wiener(res.image[..., c], sigma, k) for c in range(3)], axis=-1)
            restored = np.clip(restored, 0, 255).astype(np.uint8)
            # nothing detected where the face was, and its place does not match the person
            found = facelab.detect(restored, rotate=False)
            assert not any(f.box.iou(face.box) > 0.3 for f in found), f"{name}: inverse filter (k={k}) brought a detectable face back"
            d = distance(_embed_at(restored, face), face)
            assert d > 0.6, f"{name}: inverse filter (k={k}) restored a matching face (distance {d:.3f})"


def test_pixelate_cells_are_at_least_an_eighth_of_the_face(photo, people):
    res = anonymize(photo, method="pixelate", faces=[people["biden"]])
    f = people["biden"]
    x0, y0, x1, y1 = (int(v) for v in (f.box.left + 4, f.box.top + 4, f.box.right - 4, f.box.bottom - 4))
    patch = res.image[y0:y1, x0:x1].reshape(-1, 3)
    # one colour per cell: at most (8 + 1)^2 colours inside the box (cells straddling its edges)
    assert len(np.unique(patch, axis=0)) <= 81
    # and the original pixels are gone: no 4x4 block of the face survives unchanged
    diff = np.abs(res.image[y0:y1, x0:x1].astype(int) - photo[y0:y1, x0:x1].astype(int)).sum(axis=-1)
    same = (diff == 0).astype(np.uint8)
    assert cv2.erode(same, np.ones((4, 4), np.uint8)).sum() == 0


def test_keep_known_leaves_obama_visible_and_covers_biden(photo, people, known):
    res = anonymize(photo, gallery=known, keep_known=True)
    names = [f.identity.name for f in res.kept]
    assert "obama" in names and "biden" in names  # both enrolled: both kept
    known_obama = KnownFaces("dlib", 0.6)
    known_obama.add("obama", known.vectors and facelab.Embedding(known.vectors[known.names.index("obama")], "dlib"))
    res = anonymize(photo, gallery=known_obama, keep_known=True)
    o, b = people["obama"], people["biden"]
    assert not _inside(o, res) and _inside(b, res)
    assert [f.identity.name for f in res.kept] == ["obama"]
    box = res.kept[0].box
    sl = np.s_[int(np.ceil(box.top)):int(box.bottom), int(np.ceil(box.left)):int(box.right)]
    assert np.array_equal(res.image[sl], photo[sl]), "Obama's face was changed"
    assert distance(_embed_at(res.image, o), o) < 0.1
    assert distance(_embed_at(res.image, b), b) > 0.6
    side = json.loads(json.dumps(res.to_dict()))
    assert [k["name"] for k in side["kept"]] == ["obama"]
    assert all(c.get("name") != "obama" for c in side["covered"])
    # the reverse: only the known are covered
    res = anonymize(photo, gallery=known_obama, only_known=True)
    assert _inside(o, res) and not _inside(b, res)
    assert [c["name"] for c in res.to_dict()["covered"]] == ["obama"]


@pytest.mark.parametrize("angle", [35, -40])
def test_turned_faces_are_covered_and_the_region_turns_with_them(photo, people, angle):
    from facelab.detect.rotate import apply_affine, rotate_image

    img, m = rotate_image(photo, angle)
    res = anonymize(img, method="solid")
    mask = np.zeros(img.shape[:2], np.uint8)
    for r in res.covered:
        r.draw_mask(mask)
    for name, face in people.items():
        corners = apply_affine(m, face.box.corners())
        box = np.zeros_like(mask)
        cv2.fillPoly(box, [np.round(corners).astype(np.int32)], 255)
        inside = box > 0
        share = float((mask[inside] > 0).mean())
        assert share >= 0.9, f"{name} at {angle} degrees: only {share:.2f} of the face box covered"
    # the regions turn with the faces: turning the image by +a (counter-clockwise) turns faces by -a on screen.
    # The roll estimate is rough (measured: 40 and 25 degrees for faces at 35; 6 to 18 for faces at -40,
    # depending on the canvas), so this asks for the right direction and at least 5 degrees.
    for name, face in people.items():
        (cx, cy), = apply_affine(m, [face.box.center])
        r = min(res.covered, key=lambda c: (c.center[0] - cx) ** 2 + (c.center[1] - cy) ** 2)
        assert -r.angle * np.sign(angle) >= 5, f"{name}'s region is turned by {r.angle:.1f} degrees for a face turned by {-angle}"


def test_sidecar_and_bad_input(photo):
    res = anonymize(photo, method="pixelate", margin=0.1, shape="rect")
    d = json.loads(json.dumps(res.to_dict()))
    assert d["width"] == photo.shape[1] and len(d["covered"]) == len(res.covered)
    assert all(c["method"] == "pixelate" and c["shape"] == "rect" for c in d["covered"])
    with pytest.raises(ValueError, match="method must be one of"):
        anonymize(photo, method="smudge")
    with pytest.raises(ValueError, match="need a gallery"):
        anonymize(photo, keep_known=True)


def test_video_is_anonymised_with_the_same_frames_and_timing(tmp_path):
    from facelab.video import VideoSource, stream, write_video
    from facelab.video.synth import Actor, head_crop, scene

    obama = head_crop(facelab.load_image(SAMPLES / "known" / "obama.jpg"))
    clip = write_video(tmp_path / "in.mp4", scene([Actor(obama, 0, 8, 40, 300, 60)], 8, (480, 270)), fps=12)
    res = stream(clip, anonymize="pixelate", out=tmp_path / "out.mp4")
    assert res.frames == 8
    with VideoSource(tmp_path / "out.mp4") as src:
        assert math.isclose(src.info.fps, 12, rel_tol=0.01)
        frames = [f for _, f in src]
    assert len(frames) == 8
    with VideoSource(clip) as src:
        originals = [f for _, f in src]
    seen = [facelab.detect(f) for f in originals]
    assert sum(bool(s) for s in seen) >= 6  # the clip has a visible face
    for i, (faces, frame) in enumerate(zip(seen, frames)):
        for f in facelab.detect(frame, rotate=True):
            assert not any(f.box.iou(o.box) > 0.3 for o in faces), f"frame {i}: the covered face is still detected"


def test_rest_anonymize(api, serve_env, photos):
    import base64
    import io

    from PIL import Image

    h = serve_env.h()
    r = api.post("/v1/gallery/people", data={"name": "Barack Obama"}, files={"image": ("obama.jpg", photos["obama"], "image/jpeg")}, headers=h)
    assert r.status_code == 200, r.text
    up = {"image": ("ob.jpg", photos["obama_and_biden"], "image/jpeg")}
    body = api.post("/v1/anonymize?method=pixelate", files=up, headers=serve_env.h("read")).json()
    assert len(body["covered"]) >= 2 and body["image"].startswith("data:image/png;base64,")
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image"].split(",", 1)[1]))).convert("RGB"))
    assert img.shape == (body["height"], body["width"], 3)
    kept = api.post("/v1/anonymize?known=keep&format=jpeg", files=up, headers=serve_env.h("read")).json()
    assert "Barack Obama" in [k["name"] for k in kept["kept"]]
    assert all(c.get("name") != "Barack Obama" for c in kept["covered"])
    bad = api.post("/v1/anonymize?method=smudge", files=up, headers=serve_env.h("read"))
    assert bad.status_code == 422
    q = api.post("/v1/analyze?quality=true&landmarks=false", files=up, headers=serve_env.h("read")).json()
    assert all(0.0 <= f["quality"]["score"] <= 1.0 for f in q["faces"])


def test_cli_anonymize_writes_images_and_sidecars(tmp_path):
    from typer.testing import CliRunner

    from facelab.cli import app

    out = tmp_path / "anon"
    r = CliRunner().invoke(app, ["anonymize", str(SAMPLES / "photos" / "obama_and_biden.jpg"), "--out", str(out), "--method", "solid"])
    assert r.exit_code == 0, r.output
    side = json.loads((out / "obama_and_biden.json").read_text())
    assert len(side["covered"]) >= 2 and all(c["method"] == "solid" for c in side["covered"])
    img = facelab.load_image(out / "obama_and_biden.jpg")
    assert img.shape[:2] == (side["height"], side["width"])
    r = CliRunner().invoke(app, ["anonymize", str(PHOTO), "--out", str(out), "--keep-known", "--only-known"])
    assert r.exit_code == 2 and "exclude each other" in r.output
