"""facelab.compat.face_recognition beyond face_recognition's own tests.

* Same numbers: the original is a thin layer over dlib, so its results are
  recomputed here with dlib's own objects called exactly as face_recognition
  1.3.0 calls them (``face_detector(img, 1)``, ``pose_predictor(img, rect)``,
  ``face_encoder.compute_face_descriptor(img, shape, num_jitters)``,
  ``cnn_face_detector(img, upsample)``) and compared with the drop-in.
* Where the original is wrong or fragile (RGBA / 16-bit PNGs, EXIF rotation,
  truncated or empty files, empty inputs, grey / strided / float arrays, model
  name typos), facelab's behaviour.
* The two command-line tools: output format, ``--cpus``, bad files, and the
  ``facelab compat ...`` entry points.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner
from PIL import ImageFile

import facelab.compat.face_recognition as fr
from facelab import errors
from facelab.compat.face_recognition import api, face_detection_cli, face_recognition_cli


@pytest.fixture(scope="session")
def two_people(fr_examples) -> np.ndarray:
    return fr.load_image_file(fr_examples / "two_people.jpg")


@pytest.fixture(scope="session")
def group(fr_examples) -> np.ndarray:
    """A 375x500 photo with 6 faces (dlib's examples)."""
    from conftest import data_path

    return fr.load_image_file(data_path("dlib-faces", "2008_002470.jpg"))


@pytest.fixture(scope="session")
def obama_small(fr_examples) -> np.ndarray:
    return fr.load_image_file(fr_examples / "obama_small.jpg")


def _dlib_reference(img: np.ndarray, upsample: int = 1):
    """What face_recognition 1.3.0 computes: dlib's detector, predictors and encoder, called as it calls them."""
    rects = api.face_detector(img, upsample)
    css = [api._trim_css_to_bounds((r.top(), r.right(), r.bottom(), r.left()), img.shape) for r in rects]
    large = [[(p.x, p.y) for p in api.pose_predictor_68_point(img, r).parts()] for r in rects]
    small = [[(p.x, p.y) for p in api.pose_predictor_5_point(img, r).parts()] for r in rects]
    enc = [np.array(api.face_encoder.compute_face_descriptor(img, api.pose_predictor_5_point(img, r), 1)) for r in rects]
    enc_large = [np.array(api.face_encoder.compute_face_descriptor(img, api.pose_predictor_68_point(img, r), 1)) for r in rects]
    return css, large, small, enc, enc_large


# --- same numbers as the original ------------------------------------------------------------


@pytest.mark.parametrize("which", ["two_people", "group"])
def test_boxes_landmarks_encodings_equal_dlibs(which, request):
    img = request.getfixturevalue(which)
    css, large, small, enc, enc_large = _dlib_reference(img)
    assert len(css) == {"two_people": 2, "group": 6}[which]
    assert fr.face_locations(img) == css  # identical boxes, in dlib's order
    got_large = fr.face_landmarks(img)
    got_small = fr.face_landmarks(img, model="small")
    for pts, pts5, g, g5 in zip(large, small, got_large, got_small):
        assert g["chin"] == pts[0:17] and g["nose_bridge"] == pts[27:31] and g["right_eye"] == pts[42:48]
        assert g["top_lip"] == pts[48:55] + [pts[64], pts[63], pts[62], pts[61], pts[60]]
        assert g["bottom_lip"] == pts[54:60] + [pts[48], pts[60], pts[67], pts[66], pts[65], pts[64]]
        assert g5 == {"nose_tip": [pts5[4]], "left_eye": pts5[2:4], "right_eye": pts5[0:2]}
    got = fr.face_encodings(img)  # all faces in one batch
    got_large_enc = fr.face_encodings(img, css, model="large")
    assert all(e.dtype == np.float64 and e.shape == (128,) for e in got)
    # dlib's ResNet run by onnxruntime: measured max |diff| 3.9e-7 over 142 encodings of 71 faces
    # (face_recognition 1.3.0 side by side, benchmarks/compat_speed.py records it as max_encoding_diff)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got + got_large_enc, enc + enc_large)) < 2e-6


def test_encodings_do_not_depend_on_the_batch(group):
    locs = fr.face_locations(group)
    together = fr.face_encodings(group, locs)
    alone = [fr.face_encodings(group, [loc])[0] for loc in locs]
    assert len(together) == 6
    assert max(float(np.abs(a - b).max()) for a, b in zip(together, alone)) < 1e-5  # measured ~1e-7


def test_cnn_boxes_equal_dlibs(obama_small, two_people):
    # Small images at upsample 0: dlib's own CNN takes seconds even on these.  Side by side with
    # face_recognition 1.3.0 (upsample 0 and 1, 9 images, 21 faces) the boxes were identical too.
    half = np.array(PIL.Image.fromarray(two_people).resize((two_people.shape[1] // 2, two_people.shape[0] // 2), PIL.Image.BILINEAR))
    for img, n in [(obama_small, 1), (half, 2)]:
        ref = api.cnn_face_detector(img, 0)
        got = api._raw_face_locations(img, 0, model="cnn")
        assert len(got) == n
        assert [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in got] == [
            (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in ref
        ]
        assert max(abs(a.confidence - b.confidence) for a, b in zip(got, ref)) < 1e-4  # measured max 1.8e-6 (21 faces)
        assert fr.face_locations(img, 0, model="cnn") == [api._trim_css_to_bounds(api._rect_to_css(d.rect), img.shape) for d in ref]


def test_batch_face_locations_takes_images_of_different_sizes(obama_small, two_people):
    got = fr.batch_face_locations([obama_small, two_people], number_of_times_to_upsample=0)
    assert got == [fr.face_locations(obama_small, 0, "cnn"), fr.face_locations(two_people, 0, "cnn")]
    assert [len(x) for x in got] == [1, 2]


def test_jitter_reproduces_dlibs_own_jitter(fr_examples):
    """dlib's jitter draws from a fixed-seed generator: in a fresh process the first jittered
    encoding of the drop-in equals the original's first one (the drop-in uses dlib.jitter_image
    and one batched forward pass)."""
    code = textwrap.dedent(
        f"""
        import dlib, numpy as np
        import facelab.compat.face_recognition as fr
        from facelab.models import model_path
        img = fr.load_image_file({str(fr_examples / "obama_small.jpg")!r})
        plain = fr.face_encodings(img)[0]
        ours = fr.face_encodings(img, num_jitters=5)[0]
        shape = fr.api.pose_predictor_5_point(img, fr.api.face_detector(img, 1)[0])
        encoder = dlib.face_recognition_model_v1(str(model_path("dlib_resnet")))  # a fresh one, like the original's
        theirs = np.array(encoder.compute_face_descriptor(img, shape, 5))
        print(float(np.abs(ours - theirs).max()), float(np.linalg.norm(ours - plain)))
        """
    )
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    diff, moved = map(float, r.stdout.split())
    assert diff < 2e-6  # measured 1.0e-7: the same 5 jittered crops as dlib
    assert 0.03 < moved < 0.3  # jitter does move the encoding (measured 0.112 here, 0.10-0.19 on 3 other photos)


# --- where the original is wrong or fragile -------------------------------------------------


def test_rgba_png_transparent_pixels_are_white_not_their_hidden_colour(tmp_path, fr_test_images):
    rgb = fr.load_image_file(fr_test_images / "obama.jpg")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :150, :3] = 0  # hidden colour under ...
    rgba[:, :150, 3] = 0  # ... fully transparent pixels
    PIL.Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = fr.load_image_file(tmp_path / "rgba.png")
    assert img.shape == rgb.shape and img.dtype == np.uint8
    assert (img[:, :150] == 255).all()  # the original returns the hidden black
    assert np.array_equal(img[:, 150:], rgb[:, 150:])
    assert fr.face_locations(img) == fr.face_locations(rgb)


def test_16bit_png_is_scaled_not_clipped(tmp_path, fr_test_images):
    grey8 = fr.load_image_file(fr_test_images / "obama.jpg", mode="L")
    PIL.Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    assert PIL.Image.open(tmp_path / "grey16.png").mode == "I;16"
    img = fr.load_image_file(tmp_path / "grey16.png")
    assert np.array_equal(img[:, :, 0], grey8)  # the original clips to ~white (mean 254) and finds no face
    assert fr.face_locations(img) == fr.face_locations(grey8) == [(142, 617, 409, 349)]


def test_exif_rotated_jpeg_is_loaded_upright(tmp_path, fr_test_images):
    upright = PIL.Image.open(fr_test_images / "obama.jpg").convert("RGB")
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    upright.transpose(PIL.Image.Transpose.ROTATE_90).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    img = fr.load_image_file(tmp_path / "phone.jpg")
    assert img.shape == (1137, 910, 3)  # the original returns the sideways 910x1137 pixels and finds no face
    (box,) = fr.face_locations(img)
    ref = fr.face_locations(np.asarray(upright))[0]
    assert max(abs(a - b) for a, b in zip(box, ref)) <= 8  # re-encoded JPEG; measured identical boxes


def test_unreadable_files_raise_facelab_errors_that_are_also_the_originals(tmp_path, fr_test_images, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)  # the original sets it True for everyone at import
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "cut.jpg").write_bytes((fr_test_images / "obama.jpg").read_bytes()[:40000])
    with pytest.raises(FileNotFoundError) as e:
        fr.load_image_file(tmp_path / "missing.jpg")
    assert isinstance(e.value, errors.ImageNotFoundError)
    with pytest.raises(PIL.UnidentifiedImageError) as e:
        fr.load_image_file(tmp_path / "empty.jpg")
    assert isinstance(e.value, errors.EmptyImageError) and "empty file" in str(e.value)
    with pytest.raises(PIL.UnidentifiedImageError) as e:
        fr.load_image_file(tmp_path / "notes.jpg")
    assert isinstance(e.value, errors.UnsupportedImageError)
    with pytest.raises(OSError) as e:  # the original returned a half-grey image
        fr.load_image_file(tmp_path / "cut.jpg")
    assert isinstance(e.value, errors.CorruptImageError) and "cut.jpg" in str(e.value)
    with pytest.raises(OSError):
        fr.load_image_file(tmp_path)  # a folder
    with pytest.raises(FileNotFoundError, match="not URLs"):
        fr.load_image_file("http://127.0.0.1:9/face.jpg")  # like the original: never fetched


def test_file_objects_modes_and_writable_arrays(fr_test_images):
    path = fr_test_images / "obama.jpg"
    img = fr.load_image_file(path)
    assert img.flags.writeable and img.flags.c_contiguous
    with open(path, "rb") as f:
        assert np.array_equal(fr.load_image_file(f), img)
    assert np.array_equal(fr.load_image_file(io.BytesIO(path.read_bytes())), img)
    assert np.array_equal(fr.load_image_file(path, mode="L"), np.asarray(PIL.Image.fromarray(img).convert("L")))
    assert fr.load_image_file(fr_test_images / "32bit.png", mode=None).shape == (1200, 626, 4)  # the file's own mode


def test_empty_inputs(two_people):
    enc = fr.face_encodings(two_people)[0]
    assert fr.face_encodings(two_people, []) == []
    assert fr.face_landmarks(two_people, []) == []
    assert fr.batch_face_locations([]) == []
    assert fr.face_distance([], enc).shape == (0,)
    assert fr.face_distance(np.zeros((0, 128)), enc).shape == (0,)
    assert fr.compare_faces([], enc) == []
    for empty in (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 7), np.uint8)):
        assert fr.face_locations(empty) == [] and fr.face_locations(empty, model="cnn") == []
        assert fr.face_encodings(empty) == [] and fr.face_landmarks(empty) == []
    blank = np.full((200, 200, 3), 90, np.uint8)
    assert fr.face_locations(blank) == [] and fr.face_encodings(blank) == []
    with pytest.raises(errors.InputError, match="not an image"):
        fr.face_locations(None)  # the original: a TypeError from dlib's bindings


def test_grey_rgba_float_and_strided_arrays_are_accepted(two_people):
    ref_locs = fr.face_locations(two_people)
    ref_enc = fr.face_encodings(two_people, ref_locs)
    bgr = np.ascontiguousarray(two_people[:, :, ::-1])
    strided = bgr[:, :, ::-1]  # the usual OpenCV BGR -> RGB view: the original's face_encodings raises TypeError
    assert not strided.flags.c_contiguous
    assert fr.face_locations(strided) == ref_locs
    assert max(float(np.abs(a - b).max()) for a, b in zip(fr.face_encodings(strided, ref_locs), ref_enc)) < 1e-6
    rgba = np.dstack([two_people, np.full(two_people.shape[:2], 255, np.uint8)])
    assert fr.face_locations(rgba) == ref_locs  # the original: RuntimeError "Unsupported image type"
    assert fr.face_locations(two_people.astype(np.float32) / 255.0) == ref_locs
    grey = np.asarray(PIL.Image.fromarray(two_people).convert("L"))
    grey_locs = fr.face_locations(grey)
    assert grey_locs == fr.face_locations(np.repeat(grey[:, :, None], 3, axis=2))
    assert len(fr.face_encodings(grey, grey_locs)) == 2  # the original: TypeError (dlib wants RGB)
    # float / numpy boxes are accepted (the original's dlib.rectangle wants Python ints)
    as_floats = [tuple(float(v) for v in loc) for loc in ref_locs]
    assert max(float(np.abs(a - b).max()) for a, b in zip(fr.face_encodings(two_people, np.array(as_floats)), ref_enc)) < 1e-6


def test_model_name_typos_raise_instead_of_silently_using_hog(two_people):
    with pytest.raises(ValueError, match="hog"):
        fr.face_locations(two_people, model="cnm")  # the original quietly ran HOG
    with pytest.raises(ValueError, match="small"):
        fr.face_encodings(two_people, model="big")  # the original quietly used 68 points
    with pytest.raises(ValueError, match="small"):
        fr.face_landmarks(two_people, model="big")
    with pytest.raises(ValueError, match="upsample"):
        fr.face_locations(two_people, -1)
    assert fr.face_locations(two_people, model="HOG") == fr.face_locations(two_people)


def test_detections_are_reused_only_for_the_same_pixels(two_people):
    img = two_people.copy()
    locs = fr.face_locations(img)
    assert len(fr.face_encodings(img)) == len(locs) == 2  # second detection: same pixels, same boxes
    img[:] = 90  # the same array object, new content
    assert fr.face_locations(img) == [] and fr.face_encodings(img) == []


def test_the_originals_module_objects_load_on_demand():
    import dlib

    assert isinstance(api.face_detector, dlib.fhog_object_detector)
    assert isinstance(api.pose_predictor_68_point, dlib.shape_predictor)
    assert api.face_recognition_model.endswith("dlib_face_recognition_resnet_model_v1.dat")
    assert fr.__version__ == "1.3.0"
    with pytest.raises(AttributeError):
        api.no_such_thing  # noqa: B018


def test_install_makes_import_face_recognition_the_drop_in():
    import facelab.compat

    names = ["face_recognition", "face_recognition.api", "face_recognition.face_recognition_cli", "face_recognition.face_detection_cli"]
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    try:
        facelab.compat.install_face_recognition()
        import face_recognition
        from face_recognition import api as their_api
        from face_recognition import face_detection_cli as their_cli

        assert face_recognition is fr and their_api is api and their_cli is face_detection_cli
    finally:
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


# --- the command-line tools ------------------------------------------------------------------


@pytest.fixture(scope="session")
def cli_folders(tmp_path_factory, fr_test_images, fr_examples):
    """known/: obama, biden; check/: two_people (both), obama_small, a blank image, a broken file, a text file."""
    root = tmp_path_factory.mktemp("fr_cli")
    known, check = root / "known", root / "check"
    known.mkdir()
    check.mkdir()
    shutil.copy(fr_test_images / "obama.jpg", known / "obama.jpg")
    shutil.copy(fr_test_images / "biden.jpg", known / "biden.jpg")
    shutil.copy(fr_examples / "two_people.jpg", check / "a_two_people.jpg")
    shutil.copy(fr_examples / "obama_small.jpg", check / "b_obama_small.jpg")
    PIL.Image.new("RGB", (120, 120), (90, 90, 90)).save(check / "c_blank.png")
    (check / "d_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (check / "e_notes.txt").write_text("ignored: not .jpg/.jpeg/.png")
    return known, check


def test_face_recognition_cli_output(cli_folders):
    known, check = cli_folders
    r = CliRunner().invoke(face_recognition_cli.main, [str(known), str(check), "--show-distance", "true"])
    assert r.exit_code == 0, r.output
    lines = [ln.split(",") for ln in r.stdout.splitlines()]
    got = [(os.path.basename(f), name) for f, name, _ in lines]
    assert got == [
        ("a_two_people.jpg", "biden"),
        ("a_two_people.jpg", "obama"),
        ("b_obama_small.jpg", "obama"),
        ("c_blank.png", "no_persons_found"),
    ]
    assert all(float(d) <= 0.6 for _, name, d in lines if name in ("obama", "biden"))
    assert "d_broken.jpg" in r.stderr and "Traceback" not in r.output  # reported, skipped; the original crashed
    strict = CliRunner().invoke(face_recognition_cli.main, [str(known), str(check / "a_two_people.jpg"), "--tolerance", "0.05"])
    assert strict.stdout.splitlines() == [f"{check / 'a_two_people.jpg'},unknown_person"] * 2


def test_face_recognition_cli_bad_input_exit_codes(cli_folders, tmp_path):
    known, check = cli_folders
    r = CliRunner().invoke(face_recognition_cli.main, [str(known), str(check / "d_broken.jpg")])
    assert r.exit_code == 2 and "d_broken.jpg" in r.stderr and "Traceback" not in r.output
    r = CliRunner().invoke(face_recognition_cli.main, [str(tmp_path / "nobody"), str(check)])
    assert r.exit_code == 2 and "no such folder" in r.stderr
    r = CliRunner().invoke(face_recognition_cli.main, [str(known), str(tmp_path / "missing.jpg")])
    assert r.exit_code == 2 and "missing.jpg" in r.stderr
    r = CliRunner().invoke(face_recognition_cli.main, [str(known), str(check), "--cpus", "0"])
    assert r.exit_code == 2 and "--cpus" in r.stderr


def test_face_detection_cli_pool_keeps_the_order(cli_folders):
    _, check = cli_folders
    one = CliRunner().invoke(face_detection_cli.main, [str(check)])
    two = CliRunner().invoke(face_detection_cli.main, [str(check), "--cpus", "2"])
    assert one.exit_code == two.exit_code == 0, two.output
    assert one.stdout == two.stdout
    lines = one.stdout.splitlines()
    assert [os.path.basename(ln.split(",")[0]) for ln in lines] == ["a_two_people.jpg"] * 2 + ["b_obama_small.jpg"]
    img = fr.load_image_file(check / "a_two_people.jpg")
    assert [tuple(map(int, ln.split(",")[1:])) for ln in lines[:2]] == fr.face_locations(img, number_of_times_to_upsample=0)
    assert "d_broken.jpg" in two.stderr


def test_facelab_compat_commands_forward_to_the_click_tools(cli_folders):
    from typer.testing import CliRunner as TyperRunner

    from facelab.cli import app

    _, check = cli_folders
    image = str(check / "a_two_people.jpg")
    direct = CliRunner().invoke(face_detection_cli.main, [image, "--model", "cnn"])
    via = TyperRunner().invoke(app, ["compat", "face_detection", image, "--model", "cnn"])
    assert via.exit_code == direct.exit_code == 0 and via.stdout == direct.stdout and len(via.stdout.splitlines()) == 2
    helped = TyperRunner().invoke(app, ["compat", "face_recognition", "--help"])
    assert helped.exit_code == 0 and "--show-distance" in helped.stdout and "--tolerance" in helped.stdout
    bad = TyperRunner().invoke(app, ["compat", "face_detection", image, "--model", "yolo"])
    assert bad.exit_code == 2
