"""Class balance and training curves: identities (--balance augment|weights), the shared curve plotter.

An imbalanced set made from ORL: 3 people with all 10 photos, 3 people with 3 photos.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import data_path
from test_cli import facelab as run_cli

BIG, SMALL = ("s1", "s2", "s3"), ("s4", "s5", "s6")


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory, facelab_home):
    """Folder DIR/<person>/*.pgm with 10 photos of 3 people and 3 of 3 others (symlinks into ORL)."""
    pytest.importorskip("sklearn")
    orl = data_path("orl")
    root = tmp_path_factory.mktemp("imbalanced")
    for p in BIG + SMALL:
        (root / p).mkdir()
        files = sorted((orl / p).iterdir())[: 10 if p in BIG else 3]
        for f in files:
            (root / p / f.name).symlink_to(f)
    return root


@pytest.fixture(scope="module")
def imbalanced_set(imbalanced):
    from facelab.train.dataset import embed_dataset, identity_dataset

    return embed_dataset(identity_dataset(imbalanced), min_face=40, fallback=False)


def test_augment_copies_only_small_classes_and_never_scores_them(imbalanced_set):
    from facelab.train.dataset import augment_rows
    from facelab.train.identities import cross_validate, train_identities

    es = imbalanced_set
    assert len(es) == 39
    extra = augment_rows(es, seed=0)
    # round(10 / 3) = 3 uses per image: 2 augmented copies of each of the 9 small-class images (a copy whose face is lost is dropped)
    assert set(es.labels[extra.source]) == set(SMALL) and 14 <= len(extra.source) <= 18
    # the copies are new views of their originals: nearer their own image than any other person, but not identical
    d_own = np.linalg.norm(extra.vectors - es.vectors[extra.source], axis=1)
    assert (d_own > 1e-3).all() and np.median(d_own) < 0.4, d_own  # dlib distance; same person < 0.6
    cv = cross_validate(es, "svm", folds=3, extra=extra)
    assert len(cv.oof_pred) == len(es)  # only original images are held out and scored
    res = train_identities(es, "svm", folds=3, balance="augment", extra=extra)
    b = res.model.meta["balance"]
    assert b["before"]["s4"] == 3 and b["after"]["s4"] == 3 + int((es.labels[extra.source] == "s4").sum()) and b["after"]["s1"] == 10
    w = train_identities(es, "logreg", folds=3, balance="weights")
    assert w.model.meta["balance"]["after"]["s4"] == pytest.approx(39 / 6) and w.cv.mean_accuracy > 0.8
    with pytest.raises(Exception, match="does not apply to knn"):
        train_identities(es, "knn", folds=3, balance="weights")


def test_train_identities_cli_writes_curves_and_balance_plots(imbalanced, tmp_path):
    out = tmp_path / "m.npz"
    r = run_cli("train", "identities", str(imbalanced), "--model", "mlp", "--folds", "3", "--balance", "augment", "--grid", '{"hidden": [64], "alpha": [0.001]}',
                "-o", str(out), "--json", "-q")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["balance"]["mode"] == "augment" and rep["balance"]["augmented_copies"] >= 14
    names = {Path(p).name for p in rep["plots"]}
    assert names == {"m.curves_accuracy.png", "m.curves_mlp_loss.png", "m.balance.png"}
    for p in rep["plots"]:
        assert Path(p).stat().st_size > 5000
    bad = run_cli("train", "identities", str(imbalanced), "--balance", "more", "-o", str(tmp_path / "x.npz"))
    assert bad.returncode == 2 and "unknown balance 'more'" in bad.stderr and "Traceback" not in bad.stderr


def test_curves_pair_train_and_validation_series(tmp_path):
    pytest.importorskip("matplotlib")
    from facelab.train.curves import flatten, plot_curves

    hist = [{"epoch": e, "train_nme": 0.2 / e, "val_nme": 0.25 / e, "lr": 0.1, "val": {"recall": 0.5 + e / 10}} for e in range(1, 5)]
    assert flatten(hist[0]) == {"train_nme": 0.2, "val_nme": 0.25, "val_recall": 0.6}
    files = plot_curves(hist, tmp_path, prefix="run")
    assert [Path(f).name for f in files] == ["run_accuracy.png", "run_metrics.png"]
    assert plot_curves([{"msg": "resumed"}], tmp_path / "none") == []


def test_detector_training_log_becomes_curves(tmp_path):
    """The BlazeFace fine-tuning log (messages, per-epoch losses, validation every other epoch) is drawn as loss and accuracy curves."""
    pytest.importorskip("matplotlib")
    from facelab.train.blazeface import plot_log

    lines = [{"msg": "face-boxes train: 400 photos"}, {"epoch": -1, "val": {"recall": 0.6, "precision": 0.9, "gt": 300}, "note": "original MediaPipe weights"}]
    lines += [{"epoch": e, "lr": 1e-3, "minutes": 1.0, "cls": 1.0 / (e + 1), "box": 0.5 / (e + 1), "kp": 0.1, **({"val": {"recall": 0.7 + e / 100, "precision": 0.9, "gt": 300}} if e % 2 else {})}
              for e in range(4)]
    (tmp_path / "train_log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    files = plot_log(tmp_path)
    assert [Path(f).name for f in files] == ["curves_loss.png", "curves_accuracy.png"]
