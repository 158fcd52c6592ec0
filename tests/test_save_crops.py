"""Saving aligned face chips: facelab.save_crops and --save-crops on detect / analyze (real photos from samples/)."""

from __future__ import annotations

import numpy as np
from conftest import SAMPLES
from test_cli import facelab as run_cli

import facelab


def _is_upright_face(chip: np.ndarray) -> bool:
    """The default detector finds one upright face near the chip's centre (an aligned chip is a centred, upright face)."""
    faces = facelab.detect(chip, rotate=False, min_face=40)
    if len(faces) != 1:
        return False
    cx, cy = faces[0].box.center
    h, w = chip.shape[:2]
    return abs(cx - w / 2) < 0.15 * w and abs(cy - h / 2) < 0.25 * h  # measured: centres within 0.04 w and 0.22 h


def test_save_crops_api_writes_one_aligned_chip_per_face(tmp_path):
    paths = facelab.save_crops(SAMPLES / "photos" / "obama_and_biden.jpg", tmp_path / "chips", detector="hog")
    # the photo shows three people (Obama, Biden and a girl in front of them): three chips, largest face first
    assert [p.split("/")[-1] for p in paths] == ["obama_and_biden_face0.jpg", "obama_and_biden_face1.jpg", "obama_and_biden_face2.jpg"]
    for p in paths:
        chip = facelab.load_image(p)
        assert chip.shape == (150, 150, 3) and _is_upright_face(chip), p
    # the chips are the faces the embedder sees: the chip of the known Obama photo matches Obama
    obama = facelab.save_crops(SAMPLES / "known" / "obama.jpg", tmp_path / "chips", detector="hog", size=200)
    d = facelab.verify(obama[0], SAMPLES / "photos" / "obama2.jpg").distance
    assert facelab.load_image(obama[0]).shape == (200, 200, 3) and d < 0.5, d


def test_cli_save_crops_on_detect_and_analyze(tmp_path):
    r = run_cli("detect", str(SAMPLES / "photos"), "--save-crops", str(tmp_path / "d"), "-q")
    assert r.returncode == 0, r.stderr
    chips = sorted(p.name for p in (tmp_path / "d").iterdir())
    # three photos, five faces: each chip named after its photo and the face's index
    assert chips == ["alex-lacamoire_face0.jpg", "obama2_face0.jpg", *(f"obama_and_biden_face{i}.jpg" for i in range(3))], chips
    assert all(_is_upright_face(facelab.load_image(tmp_path / "d" / c)) for c in chips)
    # analyze with known people: the identity goes into the name
    a = run_cli("analyze", str(SAMPLES / "photos" / "obama_and_biden.jpg"), "--known", str(SAMPLES / "known"), "--save-crops", str(tmp_path / "a"))
    assert a.returncode == 0, a.stderr
    names = sorted(p.name.split("_face")[1][1:] for p in (tmp_path / "a").iterdir())  # what follows the face index
    assert names == [".jpg", "_biden.jpg", "_obama.jpg"], names  # the girl is not among the known people
    assert "3 aligned face chips written" in a.stdout


def test_crop_command_size_and_method(tmp_path):
    r = run_cli("crop", str(SAMPLES / "known"), "--out", str(tmp_path), "--size", "112", "--method", "arcface", "-q")
    assert r.returncode == 0, r.stderr
    chips = sorted(p.name for p in tmp_path.iterdir())
    assert chips == ["biden_face0.jpg", "obama_face0.jpg"]
    assert all(facelab.load_image(tmp_path / c).shape == (112, 112, 3) and _is_upright_face(facelab.load_image(tmp_path / c)) for c in chips)
    bad = run_cli("crop", str(SAMPLES / "known"), "--out", str(tmp_path / "x"), "--method", "warp")
    assert bad.returncode == 2 and "--method must be dlib, arcface or crop" in bad.stderr and "Traceback" not in bad.stderr
