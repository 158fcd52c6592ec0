"""`dataset build` on a raw folder made at test time from ../shared/data, and keypoint-aware augmentation."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import data_path
from typer.testing import CliRunner

import facelab
from facelab.cli import app
from facelab.datasets.build import BuildOptions, assign_splits, build_dataset, split_counts
from facelab.detect import rotate_image
from facelab.draw import save_image

PEOPLE = ["Hans_Blix", "Jennifer_Lopez", "Tiger_Woods"]


def make_raw(root: Path) -> Path:
    """Three LFW people (5 photos each) plus the troublemakers the build must catch."""
    lfw = data_path("lfw", "lfw-deepfunneled")
    raw = root / "raw"
    for p in PEOPLE:
        (raw / p).mkdir(parents=True)
        for f in sorted(os.listdir(lfw / p))[:5]:
            shutil.copy(lfw / p / f, raw / p / f)
    shutil.copy(lfw / "Hans_Blix" / "Hans_Blix_0002.jpg", raw / "Hans_Blix" / "Hans_Blix_0002_copy.jpg")  # exact duplicate
    shutil.copy(lfw / "Angelina_Jolie" / "Angelina_Jolie_0003.jpg", raw / "Tiger_Woods" / "zz_someone_else.jpg")  # wrong person
    rotated, _ = rotate_image(facelab.load_image(lfw / "Jennifer_Lopez" / "Jennifer_Lopez_0010.jpg"), 40)
    save_image(rotated, raw / "Jennifer_Lopez" / "rotated40.png")  # a photo turned by 40 degrees
    curtain = facelab.load_image(data_path("people", "face_recognition", "examples", "obama.jpg"))[600:900, 0:300]
    save_image(curtain, raw / "Hans_Blix" / "no_face.jpg")  # flag and curtain, no face
    blurred = cv2.GaussianBlur(facelab.load_image(lfw / "Tiger_Woods" / "Tiger_Woods_0020.jpg"), (0, 0), 3)
    save_image(blurred, raw / "Tiger_Woods" / "blurry.jpg")
    (raw / "Hans_Blix" / "broken.jpg").write_bytes(b"\xff\xd8\xffnot really a jpeg")
    return raw


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    raw = make_raw(root)
    out = root / "out"
    return raw, out, build_dataset(raw, out)


def test_build_keeps_rejects_and_flags_exactly_the_expected_images(built):
    _, _, s = built
    genuine = {f"{p}/{f}" for p in PEOPLE for f in sorted(os.listdir(data_path("lfw", "lfw-deepfunneled", p)))[:5]}
    assert s.by_status("kept") == genuine | {"Jennifer_Lopez/rotated40.png"}
    assert s.by_status("review") == {"Tiger_Woods/zz_someone_else.jpg"}
    rejected = {r.source: r.reason for r in s.images if r.status == "rejected"}
    assert rejected == {
        "Hans_Blix/Hans_Blix_0002_copy.jpg": "duplicate",
        "Hans_Blix/no_face.jpg": "no_face",
        "Hans_Blix/broken.jpg": "unreadable",
        "Tiger_Woods/blurry.jpg": "blurry",
    }
    dup = next(r for r in s.images if r.reason == "duplicate")
    assert dup.duplicate_of == "Hans_Blix/Hans_Blix_0002.jpg"
    assert s.unrecognized == ["Hans_Blix/no_face.jpg"]
    assert s.totals == {"images": 21, "kept": 16, "review": 1, "rejected": 4}


def test_rotated_photo_is_found_by_the_sweep_and_cut_out_upright(built):
    _, out, s = built
    r = next(r for r in s.images if r.source.endswith("rotated40.png"))
    assert 30 <= abs(r.rotation) <= 50, r.rotation  # found at -45° (nearest sweep angle to the -40° that undoes it)
    chip = facelab.load_image(out / r.file)
    faces = facelab.detect(chip, rotate=False)  # the chip is upright: plain HOG finds the face
    assert len(faces) == 1


def test_outlier_is_far_from_its_person_and_the_rest_are_close(built):
    _, out, s = built
    tiger = {r.source: r.outlier_distance for r in s.images if r.person == "Tiger_Woods" and r.outlier_distance is not None}
    intruder = tiger.pop("Tiger_Woods/zz_someone_else.jpg")
    assert intruder > 0.8  # measured 0.902
    assert max(tiger.values()) < 0.45  # measured 0.352
    assert (out / "review" / "Tiger_Woods" / "zz_someone_else.jpg").is_file()


def test_one_face_per_image_and_the_rule_is_reported(built):
    _, _, s = built
    rules = {r.source: r.rule for r in s.images if r.faces_found}
    assert rules["Hans_Blix/Hans_Blix_0003.jpg"] == "largest of 2"  # a second face in the background
    assert all(v == "only face" for k, v in rules.items() if k != "Hans_Blix/Hans_Blix_0003.jpg")
    report = json.loads((built[1] / "report.json").read_text())
    assert {i["source"]: i.get("rule") for i in report["images"] if i.get("rule")} == rules


def test_output_folders_manifest_and_contact_sheets(built):
    _, out, s = built
    with open(out / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 17
    for row in rows:
        chip = facelab.load_image(out / row["file"])
        assert chip.shape == (256, 256, 3)
    on_disk = {str(p.relative_to(out)) for top in ("train", "val", "test", "review") for p in (out / top).rglob("*.jpg")}
    assert on_disk == {row["file"] for row in rows}
    assert (out / "unrecognized.txt").read_text() == "Hans_Blix/no_face.jpg\n"
    for p in PEOPLE:
        png = facelab.load_image(out / "contact" / f"{p}.png")
        assert png.shape[0] >= 128
        html = (out / "contact" / f"{p}.html").read_text()
        assert html.count("<figure") == s.per_person[p]["images"]
    report = json.loads((out / "report.json").read_text())
    assert report["per_person"]["Hans_Blix"]["reasons"] == {"duplicate": 1, "no_face": 1, "unreadable": 1}
    assert report["reasons"]["outlier"] == 1


def test_split_is_stratified_per_person_and_reproducible(built):
    _, _, s = built
    for p in PEOPLE:
        kept = [r for r in s.images if r.person == p and r.status == "kept"]
        counts = {k: sum(r.split == k for r in kept) for k in ("train", "val", "test")}
        assert (counts["train"], counts["val"], counts["test"]) == split_counts(len(kept), (0.7, 0.15, 0.15))
        assert counts["val"] == counts["test"] == 1
    before = {r.source: r.split for r in s.images}
    assign_splits(s.images, BuildOptions(seed=0))
    assert {r.source: r.split for r in s.images} == before
    assign_splits(s.images, BuildOptions(seed=1))
    assert {r.source: r.split for r in s.images} != before  # another seed, another draw
    assign_splits(s.images, BuildOptions(seed=0))
    assert split_counts(1, (0.7, 0.15, 0.15)) == (1, 0, 0) and split_counts(20, (0.7, 0.15, 0.15)) == (14, 3, 3)


def test_rerun_skips_done_work_and_repairs_the_output(built):
    raw, out, s = built
    manifest = (out / "manifest.csv").read_bytes()
    victim = out / next(r.file for r in s.images if r.split == "train")
    victim.unlink()
    (out / "train" / "Hans_Blix" / "stray.jpg").write_bytes(b"x")
    s2 = build_dataset(raw, out)
    assert s2.processed == 0  # everything came from the cache
    assert (out / "manifest.csv").read_bytes() == manifest
    assert victim.is_file() and not (out / "train" / "Hans_Blix" / "stray.jpg").exists()


def test_cli_build_rejects_a_bad_split(tmp_path):
    (tmp_path / "raw" / "someone").mkdir(parents=True)
    r = CliRunner().invoke(app, ["dataset", "build", str(tmp_path / "raw"), str(tmp_path / "out"), "--split", "0.5,0.2"])
    assert r.exit_code == 2 and "three numbers" in r.output
    r = CliRunner().invoke(app, ["dataset", "build", str(tmp_path / "missing"), str(tmp_path / "out")])
    assert r.exit_code == 2 and "not a folder" in r.output


# --- augmentation ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kp_sample():
    from facelab.evaluate.landmarks import read_keypoints

    s = read_keypoints(data_path("keypoints68"))[5]
    return facelab.load_image(s.path), s.points


def test_flip_swaps_left_and_right_landmark_indices(kp_sample):
    from facelab.datasets.augment import hflip
    from facelab.landmarks.points import FLIP_68

    img, pts = kp_sample
    w = img.shape[1]
    out, p2 = hflip(img, pts)
    assert np.array_equal(out, img[:, ::-1])
    # the image-left eye of the mirror is the old image-right eye, outer corner 36 <- 45, inner 39 <- 42
    np.testing.assert_allclose(p2[36], [w - 1 - pts[45, 0], pts[45, 1]], atol=1e-4)
    np.testing.assert_allclose(p2[39], [w - 1 - pts[42, 0], pts[42, 1]], atol=1e-4)
    np.testing.assert_allclose(p2[0], [w - 1 - pts[16, 0], pts[16, 1]], atol=1e-4)  # jaw ends
    np.testing.assert_allclose(p2[48], [w - 1 - pts[54, 0], pts[54, 1]], atol=1e-4)  # mouth corners
    np.testing.assert_allclose(p2[30], [w - 1 - pts[30, 0], pts[30, 1]], atol=1e-4)  # nose tip stays
    assert p2[36:42, 0].mean() < p2[42:48, 0].mean()  # the left eye is still on the left
    _, back = hflip(out, p2)
    np.testing.assert_allclose(back, pts, atol=1e-3)
    assert sorted(FLIP_68.tolist()) == list(range(68)) and np.array_equal(FLIP_68[FLIP_68], np.arange(68))


def _dots(shape, pts) -> np.ndarray:
    img = np.zeros(shape, np.uint8)
    for x, y in np.round(pts).astype(int):
        cv2.circle(img, (int(x), int(y)), 3, (255, 255, 255), -1)
    return img


@pytest.mark.parametrize("overrides", [{"rotate": 30, "scale": 0.15, "shift": 0.05}, {"pose": 1.0, "pose_degrees": 20}, {"flip": 1.0}])
def test_landmarks_move_with_the_image(kp_sample, overrides):
    """White dots drawn at the landmarks are still under the landmarks after the transform."""
    from facelab.datasets.augment import Augmenter, preset

    img, pts = kp_sample
    aug = Augmenter(preset("none", **overrides), seed=3)
    moved_any = False
    for _ in range(3):
        out, p2 = aug(_dots(img.shape, pts), pts)
        inside = (p2[:, 0] >= 0) & (p2[:, 0] < out.shape[1] - 1) & (p2[:, 1] >= 0) & (p2[:, 1] < out.shape[0] - 1)
        vals = out[np.round(p2[inside, 1]).astype(int), np.round(p2[inside, 0]).astype(int), 0]
        assert inside.mean() > 0.9 and (vals > 100).mean() > 0.95, (overrides, (vals > 100).mean())
        moved_any |= float(np.abs(p2 - pts).max()) > 3
    assert moved_any


def test_preview_grid_and_augment_cli(kp_sample, tmp_path):
    from facelab.datasets.augment import preset, preview_grid

    img, pts = kp_sample
    grid = facelab.load_image(preview_grid(img, pts, preset("strong"), tmp_path / "grid.png", n=9, tile=100))
    assert grid.shape == (300, 300, 3)
    # a two-image keypoints folder -> augmented keypoints folder
    src = tmp_path / "kp"
    (src / "images").mkdir(parents=True)
    kp = data_path("keypoints68")
    lines = (kp / "keypoints.csv").read_text().splitlines()[:3]
    for ln in lines[1:]:
        shutil.copy(kp / "images" / ln.split(",")[0], src / "images")
    (src / "keypoints.csv").write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["augment", str(src), str(tmp_path / "aug"), "--n", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    from facelab.evaluate.landmarks import read_keypoints

    got = read_keypoints(tmp_path / "aug")
    assert len(got) == 6 and all(os.path.isfile(s.path) for s in got)
    assert (tmp_path / "aug" / "preview.png").is_file()
    r = CliRunner().invoke(app, ["augment", str(src), str(tmp_path / "aug2"), "--preset", "wild"])
    assert r.exit_code == 2 and "unknown augmentation preset" in r.output


def test_min_quality_rejects_the_lowest_faces_with_a_reason(built):
    import copy

    from facelab.datasets.build import decide

    _, _, s = built
    recs = copy.deepcopy(s.images)
    scored = {r.source: r.quality for r in recs if r.quality is not None}
    assert len(scored) >= 17  # every image with a face has its quality
    genuine = sorted(q for src, q in scored.items() if "blurry" not in src)
    assert scored["Tiger_Woods/blurry.jpg"] < genuine[len(genuine) // 2]
    limit = genuine[2]  # below the third-lowest genuine face
    decide(recs, BuildOptions(min_quality=limit, blur=0.0))
    low = {r.source: r.detail for r in recs if r.reason == "low_quality"}
    assert len(low) >= 2 and all(scored[src] < limit for src in low)
    assert all(d.startswith("face quality") for d in low.values())
