"""Licences: every model file has its facts recorded, and licence=commercial refuses what it must (one-line reasons)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT, SAMPLES

import facelab
from facelab.errors import LicenceError
from facelab.models import LICENCES, MODEL_FILES, licence_policy, licence_table, set_licence_policy


@pytest.fixture
def commercial():
    set_licence_policy("commercial")
    yield
    set_licence_policy(None)


def _register_all() -> None:
    import facelab.attributes  # noqa: F401
    import facelab.detect  # noqa: F401
    import facelab.landmarks  # noqa: F401
    import facelab.quality  # noqa: F401


def test_every_model_file_has_licence_facts():
    _register_all()
    missing = sorted(set(MODEL_FILES) - set(LICENCES))
    assert not missing, f"model files without licence facts: {missing}"
    for key, lic in LICENCES.items():
        assert lic.weights and lic.data and lic.source, key
        if not lic.commercial:
            assert lic.instead, f"{key}: a non-commercial model must say what to use instead"
    # the facts the README states
    assert LICENCES["dlib_sp68"].commercial is False and "300-W" in LICENCES["dlib_sp68"].data
    assert LICENCES["dlib_resnet"].commercial and LICENCES["dlib_sp5"].commercial
    for key in ("attr_fer_cnn", "attr_utk_dlib", "attr_utk_dlib_ft", "facelab_landmarks68", "blazeface_ft", "facelab_quality"):
        assert LICENCES[key].commercial is False, key


def test_commercial_refuses_dlib68_with_a_one_line_reason(commercial):
    img = facelab.load_image(SAMPLES / "known" / "obama.jpg")
    facelab.landmarks(img, detector="hog", model="dlib5")  # commercial-safe models still work
    with pytest.raises(LicenceError) as e:
        facelab.landmarks(img, detector="hog", model="dlib68")
    msg = str(e.value)
    assert "\n" not in msg
    assert "dlib68" in msg and "licence=commercial" in msg and "300-W" in msg and "dlib5" in msg


def test_commercial_refuses_an_instance_made_before(commercial):
    from facelab.landmarks import get_landmarker

    set_licence_policy("any")
    get_landmarker("dlib68").prepare()  # built and loaded under the permissive policy
    set_licence_policy("commercial")
    with pytest.raises(LicenceError, match="dlib68"):
        get_landmarker("dlib68")


def test_commercial_refuses_facelab_models_trained_on_research_data(commercial):
    from facelab.attributes import ATTRIBUTE_MODELS
    from facelab.detect import get_detector

    with pytest.raises(LicenceError, match="blazeface_ft.*use detector 'blazeface'"):
        get_detector("blazeface_ft")
    with pytest.raises(LicenceError, match="fer-cnn"):
        ATTRIBUTE_MODELS.get("fer-cnn")
    assert get_detector("hog") is not None and get_detector("blazeface") is not None


def test_policy_from_the_environment_and_bad_values(monkeypatch):
    set_licence_policy(None)
    monkeypatch.setenv("FACELAB_LICENCE", "commercial")
    assert licence_policy() == "commercial"
    rows = {r["key"]: r for r in licence_table()}
    assert rows["dlib_sp68"]["allowed"] is False and rows["dlib_resnet"]["allowed"] is True
    monkeypatch.setenv("FACELAB_LICENCE", "sometimes")
    with pytest.raises(LicenceError, match="FACELAB_LICENCE"):
        licence_policy()
    with pytest.raises(ValueError, match="licence must be one of"):
        set_licence_policy("free")


def test_cli_models_shows_licences_and_env_policy_refuses_dlib68():
    env = {**os.environ, "FACELAB_LICENCE": "commercial"}
    exe = str(ROOT / ".venv" / "bin" / "facelab") if (ROOT / ".venv" / "bin" / "facelab").exists() else None
    cmd = [exe] if exe else [sys.executable, "-m", "facelab.cli"]
    out = subprocess.run(cmd + ["models"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if "dlib_sp68" in ln][-1]  # the licence table row
    assert "non-commercial" in line and "iBUG 300-W" in line
    out = subprocess.run(
        cmd + ["landmarks", str(SAMPLES / "known" / "obama.jpg"), "--model", "dlib68", "--detector", "hog"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode != 0
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "licence=commercial" in err[0] and "Traceback" not in out.stderr
