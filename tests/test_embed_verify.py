"""Embeddings and verification on real faces, and the bring-your-own ONNX embedder."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import facelab
from facelab.embed import get_embedder
from facelab.errors import ModelError, ModelMismatchError, ModelNotFoundError, NoFaceError
from facelab.types import Embedding


def test_obama_matches_obama_and_not_biden(fr_examples):
    same = facelab.verify(fr_examples / "obama.jpg", fr_examples / "obama2.jpg")
    diff = facelab.verify(fr_examples / "obama.jpg", fr_examples / "biden.jpg")
    assert same.same and same.distance < 0.5
    assert not diff.same and diff.distance > 0.7
    assert same.model == "dlib" and same.metric == "euclidean"


def test_embedding_is_128d_and_deterministic(obama):
    a = facelab.embed(obama)[0].embedding
    b = facelab.embed(obama)[0].embedding
    assert a.vector.shape == (128,) and a.model == "dlib"
    np.testing.assert_array_equal(a.vector, b.vector)


def test_batched_embedding_equals_one_by_one(fr_examples):
    img = facelab.load_image(fr_examples / "two_people.jpg")
    faces = facelab.detect(img)
    emb = get_embedder("dlib")
    chips = emb.chips(img, faces)
    together = emb.embed_chips(chips)
    alone = np.stack([emb.embed_chips([c])[0] for c in chips])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_flip_and_jitter_stay_close(obama):
    base = facelab.embed(obama, flip=False)[0].embedding.vector
    flipped = facelab.embed(obama)[0].embedding.vector  # flip averaging is the default
    assert 0 < np.linalg.norm(base - flipped) < 0.2
    jit = get_embedder("dlib", jitter=3)
    faces = facelab.detect(obama)
    v = jit.embed(obama, faces, flip=False)[0].vector
    assert np.linalg.norm(base - v) < 0.2


def test_verify_without_a_face_raises(fr_examples):
    blank = np.full((200, 200, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        facelab.verify(fr_examples / "obama.jpg", blank)


def test_embeddings_of_different_models_are_not_compared():
    with pytest.raises(ModelMismatchError):
        facelab.distance(Embedding(np.zeros(128), "dlib"), Embedding(np.zeros(128), "onnx:x.onnx"))


def test_deepface_pairs_accuracy_floor():
    """deepface's 300 verification pairs (master.csv) at the default threshold.

    Measured 2026-11-25 with the default pipeline: 300/300 correct (100.0%); a face found in all 66 photos.
    """
    from conftest import data_path

    root = data_path("people", "deepface")
    rows = list(csv.DictReader(open(root / "master.csv")))
    cache: dict[str, facelab.Face | None] = {}

    def face(name):
        if name not in cache:
            try:
                cache[name] = facelab.largest_face(root / name)
            except NoFaceError:
                cache[name] = None
        return cache[name]

    correct = 0
    for r in rows:
        a, b = face(r["file_x"]), face(r["file_y"])
        same = a is not None and b is not None and facelab.verify(a, b).same
        correct += same == (r["Decision"] == "Yes")
    acc = correct / len(rows)
    assert acc >= DEEPFACE_FLOOR, acc


DEEPFACE_FLOOR = 0.98


# --- bring-your-own ONNX embedder -------------------------------------------------------


def _tiny_embedder(path, size=112, dim=16, nchw=True):
    """A real (random-weight) ONNX network: conv -> relu -> global average pool -> dense."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.normal(size=(8, dim)).astype(np.float32), "fc")
    shape = [None, 3, size, size] if nchw else [None, size, size, 3]
    x = helper.make_tensor_value_info("data", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("emb", TensorProto.FLOAT, [None, dim])
    nodes = []
    src = "data"
    if not nchw:
        nodes.append(helper.make_node("Transpose", ["data"], ["t"], perm=[0, 3, 1, 2]))
        src = "t"
    nodes += [
        helper.make_node("Conv", [src, "w"], ["c"], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["emb"]),
    ]
    g = helper.make_graph(nodes, "tiny", [x], [y], initializer=[w, fc])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.mark.parametrize("nchw", [True, False])
def test_onnx_embedder_loads_and_embeds(tmp_path, fr_examples, nchw):
    path = str(_tiny_embedder(tmp_path / f"tiny_{nchw}.onnx", nchw=nchw))
    img = facelab.load_image(fr_examples / "two_people.jpg")
    faces = facelab.embed(img, model=path)
    assert len(faces) == 2
    e = faces[0].embedding
    assert e.model == f"onnx:tiny_{nchw}.onnx" and e.vector.shape == (16,)
    assert abs(np.linalg.norm(e.vector) - 1.0) < 1e-5  # L2-normalised, cosine metric
    emb = get_embedder(path)
    assert emb.chip_size == 112 and emb.metric == "cosine"
    # the chips it embedded are ArcFace-aligned 112x112 crops
    chip = emb.chips(img, faces[:1])[0]
    assert chip.shape == (112, 112, 3)
    again = facelab.embed(img, faces[:1], model=path)[0].embedding.vector
    np.testing.assert_allclose(again, e.vector, atol=1e-6)
    v = facelab.verify(faces[0], faces[0], model=path)
    assert v.same and v.distance < 1e-5 and v.metric == "cosine"


def test_onnx_embedder_errors(tmp_path, obama):
    with pytest.raises(ModelNotFoundError, match="not found"):
        facelab.embed(obama, model=str(tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx at all")
    with pytest.raises(ModelError, match="not an ONNX model"):
        facelab.embed(obama, model=str(junk))
