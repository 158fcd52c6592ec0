"""A landmark regressor on any point set: a 15-point eyes/nose/mouth CSV trains a 15-point model run by facelab's landmark path."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import data_path
from test_cli import facelab as run_cli


@pytest.fixture(scope="module")
def kp15(tmp_path_factory):
    """keypoints68 turned into a 15-point CSV (the points of `simple15`: means of 68-point groups); images linked, not copied."""
    from facelab.evaluate.landmarks import read_keypoints, split_of
    from facelab.landmarks.points import SIMPLE_15

    src = data_path("keypoints68")
    samples = read_keypoints(src)
    root = tmp_path_factory.mktemp("kp15")
    (root / "images").symlink_to(src / "images")
    train = [s for s in samples if split_of(s.person) == "train"][:32]
    val = [s for s in samples if split_of(s.person) == "val"][:8]
    with open(root / "keypoints.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image"] + [c for i in range(15) for c in (f"x{i}", f"y{i}")])
        for s in train + val:
            pts = np.stack([s.points[idx].mean(axis=0) for idx in SIMPLE_15])
            w.writerow([s.path.split("/")[-1]] + [f"{v:.2f}" for v in pts.ravel()])
    return root, train + val


def test_15_point_csv_trains_a_15_point_model(kp15, tmp_path):
    pytest.importorskip("torch", reason="the training extra (torch) is not installed")
    root, samples = kp15
    out = tmp_path / "run"
    r = run_cli("train", "landmarks", "--data", str(root), "--out", str(out), "--epochs", "4", "--batch-size", "16", "--limit", "32",
                "--val-limit", "8", "--lr", "0.003", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "15 points" in r.stdout and (out / "curves_loss.png").stat().st_size > 5000
    log = [json.loads(line) for line in (out / "train.log").read_text().splitlines()]
    assert len(log) == 4 and log[-1]["train_nme"] < log[0]["train_nme"], log  # the loss goes down in a few steps
    model = out / "landmarks15.onnx"
    import onnxruntime as ort

    meta = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert meta["num_points"] == "15" and meta["facelab"] == "landmarks"
    # the landmark path reads the number of points from the model: 15 points per face, API and CLI
    import facelab

    img = samples[0].path
    faces = facelab.landmarks(img, model=str(model))
    assert faces and faces[0].landmarks.points.shape == (15, 2) and faces[0].landmarks.scheme == "15"
    b = faces[0].box
    assert np.abs(faces[0].landmarks.points - np.array(b.center)).max() < 1.5 * max(b.width, b.height)
    c = run_cli("landmarks", img, "--model", str(model), "--json")
    assert c.returncode == 0, c.stderr
    assert len(json.loads(c.stdout)[0]["faces"][0]["landmarks"]["points"]) == 15
    # a CSV whose rows do not match its header: one line naming the line
    bad = tmp_path / "bad.csv"
    bad.write_text("image,x0,y0,x1,y1\na.jpg,1,2,3\n")
    e = run_cli("train", "landmarks", "--data", str(bad), "--out", str(tmp_path / "x"))
    assert e.returncode == 2 and "line 2: expected 4 finite coordinates" in e.stderr and "Traceback" not in e.stderr
