"""The gallery and identities commands, run as a user would: enroll, enroll-dir, identify, gallery ...,
train identities, evaluate identities, predict.  Exit codes: 0 ok, 1 no face, 2 bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def facelab(*args, env=None, timeout=300):
    beside = Path(sys.executable).with_name("facelab")  # the venv's script, even when its bin/ is not on PATH
    exe = str(beside) if beside.exists() else (shutil.which("facelab") or "")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "facelab.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture
def db_env(tmp_path, facelab_home):
    return {"FACELAB_DB": str(tmp_path / "people.db")}


def test_enroll_identify_and_manage(tmp_path, fr_examples, db_env):
    ex = fr_examples
    big = ("--min-face", "100")  # faces here are >= 150 px: no need to upsample
    r = facelab("enroll", "obama", str(ex / "obama.jpg"), *big, "--json", env=db_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["status"] == "added"
    r = facelab("enroll", "biden", str(ex / "two_people.jpg"), str(ex / "obama.jpg"), *big, env=db_env)
    assert r.returncode == 2  # obama.jpg is already obama's: refused, the other image enrolled
    assert "2 faces: used the largest" in r.stderr and "already enrolled as 'obama'" in r.stderr and "Traceback" not in r.stderr
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank)
    assert facelab("enroll", "nobody", str(blank), env=db_env).returncode == 1

    out = tmp_path / "out"
    r = facelab("identify", str(ex / "obama2.jpg"), str(ex / "alex-lacamoire.png"), *big, "--json", "-k", "2", "--out", str(out), env=db_env)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res[0]["faces"][0]["identity"]["name"] == "obama"
    assert [c["name"] for c in res[0]["faces"][0]["identity"]["candidates"]] == ["obama", "biden"]
    assert res[1]["faces"][0]["identity"]["name"] == "unknown"
    assert (out / "obama2.jpg").is_file() and (out / "results.json").is_file()

    people = json.loads(facelab("gallery", "list", "--json", env=db_env).stdout)
    assert [(p["name"], p["count"]) for p in people] == [("biden", 1), ("obama", 1)]
    shown = json.loads(facelab("gallery", "show", "biden", "--json", env=db_env).stdout)
    assert shown["embeddings"][0]["n_faces"] == 2 and shown["embeddings"][0]["source"].endswith("two_people.jpg")
    assert facelab("gallery", "rename", "obama", "Barack Obama", env=db_env).returncode == 0
    missing = facelab("gallery", "remove", "nobody", "--yes", env=db_env)
    assert missing.returncode == 2 and "no person named 'nobody'" in missing.stderr
    exp = tmp_path / "export.json"
    assert facelab("gallery", "export", str(exp), env=db_env).returncode == 0
    assert facelab("gallery", "remove", "biden", "--yes", env=db_env).returncode == 0
    r = facelab("gallery", "import", str(exp), "--db", str(tmp_path / "copy.db"))
    assert r.returncode == 0 and "2 embeddings added" in r.stdout
    info = json.loads(facelab("gallery", "info", "--json", "--db", str(tmp_path / "copy.db")).stdout)
    assert info["people"] == 2 and info["model"] == "dlib" and info["schema_version"] >= 2 and info["search"] == "exact"
    assert "Barack Obama" in facelab("gallery", "list", "--db", str(tmp_path / "copy.db")).stdout


def test_gallery_errors_are_one_line(tmp_path, fr_examples, facelab_home):
    empty = facelab("identify", str(fr_examples / "obama2.jpg"), "--db", str(tmp_path / "empty.db"))
    assert empty.returncode == 2 and "the gallery is empty" in empty.stderr
    from facelab.gallery import open_store

    s = open_store(tmp_path / "future.db")
    s.set_meta("schema_version", "99")
    s.close()
    future = facelab("gallery", "list", "--db", str(tmp_path / "future.db"))
    assert future.returncode == 2 and "newer than this facelab" in future.stderr and "Traceback" not in future.stderr
    bad = facelab("gallery", "list", "--db", "mysql://x/y")
    assert bad.returncode == 2 and "unknown gallery URL scheme" in bad.stderr
    nodir = facelab("enroll-dir", str(tmp_path / "nope"), "--db", str(tmp_path / "g.db"))
    assert nodir.returncode == 2 and "not a folder" in nodir.stderr
    (tmp_path / "empty" / "ada").mkdir(parents=True)
    none = facelab("enroll-dir", str(tmp_path / "empty"), "--db", str(tmp_path / "g.db"))
    assert none.returncode == 2 and "no images found" in none.stderr


def _orl_subset(root: Path, orl: Path, people: int, per_person: int) -> Path:
    for s in [f"s{i}" for i in range(1, people + 1)]:
        (root / s).mkdir(parents=True)
        for k in range(1, per_person + 1):
            (root / s / f"{k}.pgm").symlink_to(orl / s / f"{k}.pgm")
    return root


def test_enroll_dir(tmp_path, orl_set, facelab_home):
    from conftest import data_path

    d = _orl_subset(tmp_path / "people", data_path("orl"), 3, 3)
    (tmp_path / "people" / "s3" / "notes.txt").write_text("not an image")
    db = str(tmp_path / "g.db")
    r = facelab("enroll-dir", str(d), "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    assert [x["status"] for x in json.loads(r.stdout)] == ["added"] * 9
    again = facelab("enroll-dir", str(d), "--db", db, "--json")
    assert [x["status"] for x in json.loads(again.stdout)] == ["duplicate"] * 9  # re-running is safe
    people = json.loads(facelab("gallery", "list", "--json", "--db", db).stdout)
    assert [(p["name"], p["count"]) for p in people] == [("s1", 3), ("s2", 3), ("s3", 3)]


def test_train_evaluate_predict(tmp_path, orl_set):
    from conftest import data_path

    orl = data_path("orl")
    d = _orl_subset(tmp_path / "orl10", orl, 10, 10)
    model = tmp_path / "m.npz"
    r = facelab("train", "identities", str(d), "--model", "svm", "--folds", "5", "-o", str(model), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["cv"]["fold_accuracy"]) == 5 and out["cv"]["mean_accuracy"] >= 0.97  # measured 1.0
    rep = tmp_path / "report"
    r = facelab("evaluate", "identities", str(d), "--model", str(model), "--out", str(rep), "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["source"] == "cross-validated" and ev["accuracy"] >= 0.97  # measured 1.0
    assert (rep / "confusion.png").is_file() and (rep / "report.json").is_file()
    r = facelab("predict", "--model", str(model), str(orl / "s2" / "9.pgm"), str(orl / "s30" / "1.pgm"), "--json", "-q")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res[0]["faces"][0]["identity"]["name"] == "s2"
    assert res[1]["faces"][0]["identity"]["name"] == "unknown"  # s30 was not trained
    notmodel = tmp_path / "x.npz"
    notmodel.write_bytes(b"garbage")
    r = facelab("predict", "--model", str(notmodel), str(orl / "s2" / "9.pgm"))
    assert r.returncode == 2 and "not a facelab model file" in r.stderr
    r = facelab("train", "identities", str(d), "--model", "forest")
    assert r.returncode == 2 and "unknown --model" in r.stderr
    # more folds than the smallest person has images: said on stderr, not silently changed (issue 17 point 5)
    r = facelab("train", "identities", str(d), "--folds", "20", "--grid", '{"C": [1.0]}', "-o", str(tmp_path / "m20.npz"), "--json")
    assert r.returncode == 0, r.stderr
    assert "--folds 20: the person with the fewest images has 10, so 10-fold cross-validation was used" in r.stderr
    assert len(json.loads(r.stdout)["cv"]["fold_accuracy"]) == 10


def test_train_identities_on_two_photos_per_person(tmp_path, fr_examples):
    """Two photos per person (symlinked folders): 2-fold CV, no grid search possible inside the folds, said on stderr; no traceback."""
    train = fr_examples / "knn_examples" / "train"
    people = tmp_path / "people"
    people.mkdir()
    for name in ("biden", "kit_harington", "rose_leslie"):
        (people / name).symlink_to(train / name, target_is_directory=True)
    r = facelab("train", "identities", str(people), "--folds", "10", "-o", str(tmp_path / "m.npz"))
    assert r.returncode == 0, r.stderr
    assert "in the CV folds: grid not searched" in r.stderr and "so 2-fold cross-validation was used" in r.stderr
    assert "2-fold CV accuracy" in r.stdout and (tmp_path / "m.npz").is_file()
