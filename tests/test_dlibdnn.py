"""Tests for facelab._dlibdnn: dlib DNN .dat -> ONNX converter.

Equality tests run dlib itself on real photos from ../shared/data and skip with
a clear reason when that folder (or dlib / the model files) is absent.  The
one-time conversions are cached in a session-scoped pytest tmp dir.
"""

from __future__ import annotations

import glob
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from facelab import _dlibdnn as D

from conftest import data_path as _data
from facelab.models import model_path


def _load_rgb(path: Path, scale: float | None = None) -> np.ndarray:
    from PIL import Image

    im = Image.open(path).convert("RGB")
    if scale:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
    return np.asarray(im).copy()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("facelab-dlibdnn-cache")


@pytest.fixture(scope="session")
def resnet_dat() -> Path:
    return model_path("dlib_resnet")


@pytest.fixture(scope="session")
def mmod_dat() -> Path:
    return model_path("dlib_mmod")


@pytest.fixture(scope="session")
def resnet_session(resnet_dat, cache_dir):
    return D.create_session(D.converted_onnx_path(resnet_dat, cache_dir=cache_dir), intra_op_threads=2)


@pytest.fixture(scope="session")
def mmod_session(mmod_dat, cache_dir):
    return D.create_session(D.converted_onnx_path(mmod_dat, cache_dir=cache_dir), intra_op_threads=2)


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def test_parse_resnet_structure(resnet_dat):
    net = D.load_dlib_net(resnet_dat)
    assert net.loss.kind == "loss_metric"
    assert net.input.kind == "input_rgb_image_sized"
    assert (net.input.attrs["nr"], net.input.attrs["nc"]) == (150, 150)
    assert net.means == pytest.approx(D.DLIB_DEFAULT_MEANS, abs=1e-4)
    kinds = [l.kind for l in net.layers]
    assert kinds.count("con") == 29
    assert kinds.count("add_prev") == 14
    assert kinds.count("skip") == 4  # the four residual_down blocks
    assert kinds[-1] == "fc" and net.layers[-1].attrs["num_outputs"] == 128
    assert "bias" not in net.layers[-1].arrays  # fc_no_bias
    assert net.num_params == 5614592


def test_parse_mmod_structure(mmod_dat):
    net = D.load_dlib_net(mmod_dat)
    assert net.loss.kind == "loss_mmod"
    opts = net.loss.attrs
    assert opts["detector_windows"] == [{"width": 80, "height": 80, "label": ""}]
    assert 0.3 < opts["overlaps_nms"]["iou_thresh"] < 0.4
    assert net.input.kind == "input_rgb_image_pyramid"
    assert net.input.attrs["pyramid_padding"] == 10 and net.input.attrs["pyramid_outer_padding"] == 11
    # bn_con layers were folded into affine like dlib does for inference
    assert [l.kind for l in net.layers].count("affine") == 6
    assert D._output_to_input_mapping(net.layers) == [8, 14, 8, 14]


def test_legacy_float_tensor_decoding():
    """Version-1 tensors stored each float as a (mantissa, exponent) pair."""
    rng = np.random.default_rng(0)
    vals = (rng.standard_normal(5000) * 0.05).astype(np.float32)
    vals[:8] = [0.0, -0.0, 1.0, -2.5, 1e-30, 3e38, np.inf, -np.inf]
    body = b"".join(D._encode_float(float(v)) for v in vals)
    hdr = D._encode_int(1) + b"".join(D._encode_int(d) for d in (1, len(vals), 1, 1))
    r = D._Reader(hdr + body + b"\x01\x07")
    arr = r.tensor()
    assert arr.shape == (1, len(vals), 1, 1)
    np.testing.assert_array_equal(arr.reshape(-1), vals)
    assert r.int() == 7  # the reader stopped exactly at the end of the tensor
    with pytest.raises(D._Truncated):
        D._Reader(hdr + body[: len(body) // 2]).tensor()


def test_compact_int_roundtrip():
    for v in (0, 1, -1, 127, 255, 256, -70000, 2**40, -(2**62)):
        assert D._Reader(D._encode_int(v)).int() == v


# ---------------------------------------------------------------------------
# Corrupt input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 50, 5000, -10])
def test_truncated_file_gives_value_error(mmod_dat, tmp_path, cut):
    data = mmod_dat.read_bytes()
    bad = tmp_path / "truncated_mmod.dat"
    bad.write_bytes(data[:cut])
    with pytest.raises(ValueError, match="truncated_mmod.dat"):
        D.load_dlib_net(bad)


def test_garbage_and_corrupted_files_give_value_error(mmod_dat, tmp_path):
    garbage = tmp_path / "garbage.dat"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="garbage.dat"):
        D.load_dlib_net(garbage)

    data = bytearray(mmod_dat.read_bytes())
    i = data.index(b"con_4")
    data[i : i + 5] = b"cXn_4"
    corrupt = tmp_path / "corrupt_layer.dat"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt_layer\.dat.*cXn_4"):
        D.load_dlib_net(corrupt)

    extra = tmp_path / "trailing.dat"
    extra.write_bytes(mmod_dat.read_bytes() + b"\x00\x00")
    with pytest.raises(ValueError, match="trailing.dat"):
        D.load_dlib_net(extra)


def test_converting_corrupt_file_raises_and_caches_nothing(mmod_dat, tmp_path):
    bad = tmp_path / "half.dat"
    bad.write_bytes(mmod_dat.read_bytes()[:300000])
    cdir = tmp_path / "cache"
    with pytest.raises(ValueError, match="half.dat"):
        D.converted_onnx_path(bad, cache_dir=cdir)
    assert list(cdir.iterdir()) == []


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------


def test_cache_reuse_and_env_default(mmod_dat, tmp_path, monkeypatch):
    cdir = tmp_path / "c1"
    p1 = D.converted_onnx_path(mmod_dat, cache_dir=cdir)
    st = p1.stat()
    p2 = D.converted_onnx_path(mmod_dat, cache_dir=cdir)
    assert p1 == p2 and p2.stat().st_mtime_ns == st.st_mtime_ns  # not rewritten
    assert [f.name for f in cdir.iterdir()] == [p1.name]  # no temp files left
    assert D._file_sha256(mmod_dat)[:24] in p1.name

    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "envcache"))
    assert D.default_cache_dir() == tmp_path / "envcache"
    p3 = D.converted_onnx_path(mmod_dat)
    assert p3.parent == tmp_path / "envcache" and p3.read_bytes() == p1.read_bytes()

    # a different .dat (different content) gets a different cache entry
    copy = tmp_path / "other.dat"
    copy.write_bytes(mmod_dat.read_bytes())
    assert D.converted_onnx_path(copy, cache_dir=cdir).name != p1.name


def test_concurrent_conversion_is_safe(mmod_dat, tmp_path):
    import onnx

    cdir = tmp_path / "race"
    barrier = threading.Barrier(4)

    def work(_):
        barrier.wait()
        return D.converted_onnx_path(mmod_dat, cache_dir=cdir)

    with ThreadPoolExecutor(4) as ex:
        paths = list(ex.map(work, range(4)))
    assert len(set(paths)) == 1
    assert [f.name for f in cdir.iterdir()] == [paths[0].name]
    onnx.checker.check_model(onnx.load(str(paths[0])))


# ---------------------------------------------------------------------------
# Equality with dlib
# ---------------------------------------------------------------------------


def test_preprocess_matches_dlib_normalisation():
    img = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    x = D.preprocess(img)
    assert x.shape == (2, 3, 4, 5) and x.dtype == np.float32
    m = np.float32([122.782, 117.001, 104.298])
    expect = (img.astype(np.float32) - m) / np.float32(256)
    np.testing.assert_array_equal(x, expect.transpose(0, 3, 1, 2))


def test_resnet_descriptors_match_dlib(resnet_dat, resnet_session):
    import dlib
    ex = _data("people", "face_recognition", "examples")
    lfw = sorted(glob.glob(str(_data("lfw", "lfw-deepfunneled") / "*" / "*.jpg")))[:60:15]
    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(model_path("dlib_sp5")))
    fr = dlib.face_recognition_model_v1(str(resnet_dat))
    chips = []
    for f in [ex / "obama.jpg", ex / "biden.jpg", *map(Path, lfw)]:
        img = _load_rgb(f)
        boxes = det(img, 1)
        if len(boxes):
            chips.append(dlib.get_face_chip(img, sp(img, boxes[0]), 150, 0.25))
    assert len(chips) >= 4
    chips = np.stack(chips)
    ref = np.stack([np.asarray(fr.compute_face_descriptor(c)) for c in chips])
    ours = D.compute_descriptors(resnet_session, chips, batch_size=4)
    assert ours.shape == ref.shape == (len(chips), 128)
    assert np.abs(ours - ref).max() < 1e-4
    # batch size does not change results materially
    one = D.compute_descriptors(resnet_session, chips[:1], batch_size=1)
    assert np.abs(one - ours[:1]).max() < 1e-5


def _assert_same_detections(ref, ours):
    assert len(ours) == len(ref), (ref, ours)
    for r, o in zip(ref, ours):
        assert max(abs(a - b) for a, b in zip(r[:4], o[:4])) <= 1, (r, o)
        assert abs(r[4] - o[4]) < 1e-3, (r, o)


@pytest.mark.parametrize(
    "rel, scale, upsample",
    [
        (("dlib-faces", "2008_001322.jpg"), None, 0),
        (("dlib-faces", "2009_004587.jpg"), None, 0),
        (("people", "face_recognition", "examples", "obama.jpg"), 0.35, 0),
        (("people", "face_recognition", "examples", "two_people.jpg"), 0.5, 0),
        (("dlib-faces", "2008_002079.jpg"), 0.6, 1),
    ],
)
def test_mmod_detections_match_dlib(mmod_dat, mmod_session, rel, scale, upsample):
    import dlib
    img = _load_rgb(_data(*rel), scale)
    cnn = _dlib_cnn(dlib, mmod_dat)
    ref = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence) for d in cnn(img, upsample)]
    ours = D.mmod_detect(mmod_session, img, upsample=upsample)
    _assert_same_detections(ref, ours)


_CNN = {}


def _dlib_cnn(dlib, path):
    if path not in _CNN:
        _CNN[path] = dlib.cnn_face_detection_model_v1(str(path))
    return _CNN[path]


def test_mmod_adjust_threshold_and_gray(mmod_session):
    img = _load_rgb(_data("dlib-faces", "2009_004587.jpg"))
    base = D.mmod_detect(mmod_session, img)
    assert len(base) >= 1
    assert len(D.mmod_detect(mmod_session, img, adjust_threshold=0.5)) <= len(base)
    assert len(D.mmod_detect(mmod_session, img, adjust_threshold=-0.5)) >= len(base)
    gray = img.mean(axis=2).astype(np.uint8)
    assert isinstance(D.mmod_detect(mmod_session, gray), list)
    # dlib raises errors for images this small; we return no detections
    for n in (1, 3, 7, 8, 10, 30):
        assert D.mmod_detect(mmod_session, np.full((n, n, 3), 100, np.uint8)) == []


def test_dlib_exact_resize():
    import dlib
    img = _load_rgb(_data("dlib-faces", "2008_001009.jpg"))
    for nr, nc in [(400, 300), (333, 251), (97, 613), (900, 17)]:
        np.testing.assert_array_equal(D.resize_image_bilinear(img, nr, nc), dlib.resize_image(img, nr, nc))
    lvl = dlib.pyramid_down(6)(img)
    np.testing.assert_array_equal(D.resize_image_bilinear(img, *lvl.shape[:2]), lvl)


def test_tiled_pyramid_layout():
    rects, nr, nc = D._tiled_pyramid_rects(480, 360, N=6, padding=10, outer_padding=11)
    assert rects[0] == (11, 11, 370, 490)
    assert nc == 360 + 22
    # all levels inside the image, pairwise disjoint, shrinking by 5/6
    for i, (l, t, r, b) in enumerate(rects):
        assert 0 <= l <= r < nc and 0 <= t <= b < nr
        for l2, t2, r2, b2 in rects[i + 1 :]:
            assert r < l2 or r2 < l or b < t2 or b2 < t
    widths = [r - l + 1 for l, t, r, b in rects]
    assert all(w2 == int(w1 * 5 / 6) or w2 == int(np.floor(w1 * (5.0 / 6))) for w1, w2 in itertools.pairwise(widths))


def test_dynamic_spatial_shapes_match_static(resnet_dat):
    """With an unsized input the zero-padded add_prev is built from Shape ops;
    it must compute the same as the static-shape graph."""
    import dataclasses

    import onnxruntime as ort

    net = D.load_dlib_net(resnet_dat)
    unsized = dataclasses.replace(
        net,
        input=D.Layer("input_rgb_image", "input_rgb_image", {k: v for k, v in net.input.attrs.items() if k not in ("nr", "nc")}),
    )
    x = (np.random.default_rng(0).standard_normal((2, 3, 150, 150)) * 0.3).astype(np.float32)
    outs = []
    for n in (net, unsized):
        sess = ort.InferenceSession(D.to_onnx(n).SerializeToString(), providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, {"input": x})[0])
    assert outs[0].shape == outs[1].shape == (2, 128)
    assert np.abs(outs[0] - outs[1]).max() < 1e-5
