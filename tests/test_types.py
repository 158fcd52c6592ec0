"""Results are typed dataclasses that round-trip through JSON."""

from __future__ import annotations

import json

import numpy as np

import facelab
from facelab.types import Attribute, Box, Face, Identity, ImageResult, Verification


def test_box_geometry():
    b = Box(10, 20, 110, 220)
    assert b.width == 100 and b.height == 200 and b.center == (60, 120)
    assert b.iou(b) == 1.0 and b.iou(Box(200, 200, 300, 300)) == 0.0
    assert abs(b.iou(Box(60, 20, 160, 220)) - 1 / 3) < 1e-9
    assert b.to_trbl() == (20, 110, 220, 10)
    c = Box(0, 0, 10, 10).corners(90)
    assert np.allclose(sorted(map(tuple, np.round(c, 6).tolist())), sorted([(0, 0), (10, 0), (10, 10), (0, 10)]))


def test_face_json_round_trip(obama):
    faces = facelab.analyze(obama)
    f = faces[0]
    f.attributes["age"] = Attribute(41.3, "test-model", None, 0.9)
    f.identity = Identity("obama", 0.31, 0.6, [])
    text = facelab.to_json(ImageResult("obama.jpg", 910, 1137, faces))
    back = ImageResult.from_dict(json.loads(text))
    g = back.faces[0]
    assert g.box == Box.from_dict(f.box.to_dict())
    assert len(g.landmarks) == 68 and g.landmarks.scheme == "68"
    assert np.allclose(g.embedding.vector, f.embedding.vector, atol=1e-6)
    assert g.identity.name == "obama" and g.attributes["age"].value == 41.3


def test_verification_json(fr_examples):
    v = facelab.verify(fr_examples / "obama.jpg", fr_examples / "obama2.jpg")
    d = json.loads(facelab.to_json(v))
    assert d["same"] is True and Verification.from_dict(d).face1.embedding.model == "dlib"
    assert isinstance(Face.from_dict(d["face2"]), Face)


def test_landmark_regions(obama):
    lm = facelab.landmarks(obama)[0].landmarks
    left, right = lm.eye_centers()
    assert left[0] < right[0]  # "left" is the eye on the image's left
    assert lm.region("mouth").shape == (20, 2)
