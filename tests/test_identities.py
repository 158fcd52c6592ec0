"""Identification accuracy on real faces: classifiers with k-fold CV (ORL, Yale, LFW), the MLP adapter,
open-set rejection of people never enrolled, the model file, and the evaluation report."""

from __future__ import annotations

import json

import numpy as np
import pytest  # noqa: F401

from facelab.evaluate.identities import (
    OpenSetTrials,
    best_open_set_threshold,
    compare_row,
    comparison_table,
    evaluate_model,
    gallery_open_set_trials,
    open_set_accuracy,
    write_report,
)
from facelab.gallery import default_threshold
from facelab.train.identities import IdentityModel, cross_validate, train_identities


def test_embedded_sets_found_their_faces(orl_set, yale_set, lfw_set):
    # ORL's 92x112 greys: HOG finds every face at min_face=40 (dlib upsamples 2x), nothing left out
    assert len(orl_set) == 400 and len(orl_set.classes) == 40 and not orl_set.failed and not orl_set.fallback.any()
    # Yale (320x243, min_face=80): measured 3 of 164 images without a detected face, embedded whole (fallback)
    assert len(yale_set) == 164 and len(yale_set.classes) == 15 and yale_set.fallback.sum() <= 5
    # LFW View 1 people with >= 5 photos: 81 people, 472 images, every face found
    assert len(lfw_set.classes) == 81 and len(lfw_set) >= 470


def held_out_open_set(es, cv) -> tuple[float, float]:
    """Open-set accuracy of the CV's out-of-fold distances on a part that chose nothing.

    ``cv.open_set_accuracy`` is measured at the threshold chosen on those same distances (optimistic).
    Here the people are split in two halves (alternate names): the threshold chosen on one half is
    scored on the other, both ways round.
    """
    classes = sorted({str(c) for c in es.labels})
    a = np.array([str(c) in set(classes[::2]) for c in es.labels])
    right = cv.oof_pred == es.labels
    out = []
    for chose, scored in ((a, ~a), (~a, a)):
        t, _ = best_open_set_threshold(cv.oof_dist[chose], right[chose], cv.stranger_dist[chose])
        out.append(open_set_accuracy(t, cv.oof_dist[scored], right[scored], cv.stranger_dist[scored]))
    return out[0], out[1]


def test_orl_10_fold_svm(orl_set):
    cv = cross_validate(orl_set, "svm", folds=10, grid={"C": [1.0]})  # the grid search runs on Yale below
    assert cv.folds == 10 and len(cv.fold_accuracy) == 10
    assert cv.mean_accuracy >= 0.98  # measured 1.0000 (the issue expects > 95%)
    # open set, the threshold chosen on the other half of the people: measured 1.0000 and 1.0000
    assert min(held_out_open_set(orl_set, cv)) >= 0.97


def test_yale_10_fold_svm_with_grid_search(yale_set):
    cv = cross_validate(yale_set, "svm", folds=10)  # nested: C chosen from the default grid in each training fold
    assert cv.mean_accuracy >= 0.97  # measured 0.9938
    # open set, the threshold chosen on the other half of the people: measured 0.7857 and 0.9425 (mean 0.864);
    # on the distances that chose it, cv.open_set_accuracy reads 0.9756: that figure is optimistic
    assert np.mean(held_out_open_set(yale_set, cv)) >= 0.82
    assert all(p["C"] in (0.1, 1.0, 10.0) for p in cv.fold_params)


def test_lfw_people_with_5_photos(lfw_set):
    cv = cross_validate(lfw_set, "svm", folds=10, grid={"C": [1.0]})  # 5 folds: the smallest class has 5 photos
    assert cv.folds == 5
    assert cv.mean_accuracy >= 0.96  # measured 0.9894
    knn = cross_validate(lfw_set, "knn", folds=5, grid={"n_neighbors": [1], "weights": ["distance"]})
    assert knn.mean_accuracy >= 0.96  # measured 0.9894


def test_people_never_enrolled_come_back_unknown(orl_set, tmp_path):
    """The default threshold (0.495) was calibrated on LFW; measured here on ORL, which chose nothing:
    20 people enrolled with 3 photos each, 20 never enrolled, two random splits (280 known probes, 400 strangers)."""
    trials = OpenSetTrials.concat([gallery_open_set_trials(orl_set, str(tmp_path / f"g{s}.db"), seed=s) for s in (11, 12)])
    r = trials.accuracy_at(default_threshold("dlib", "nearest"))
    assert r["strangers_unknown"] >= 0.89  # measured 0.9250
    assert r["known_identified"] >= 0.97  # measured 1.0000
    assert r["open_set_accuracy"] >= 0.93  # measured 0.9559
    # the verification threshold (0.6) lets far more strangers through: why identification has its own
    assert trials.accuracy_at(0.6)["strangers_unknown"] < r["strangers_unknown"] - 0.3  # measured 0.4100 vs 0.9250
    t, acc = best_open_set_threshold(trials.known_dist, trials.known_correct, trials.stranger_dist)
    assert 0.4 < t < 0.6 and acc >= r["open_set_accuracy"]  # ORL's own best: 0.439 (1.0000)


def test_mlp_adapter_and_model_file(orl_set, tmp_path):
    res = train_identities(orl_set, "mlp", folds=5, grid={"hidden": [128], "alpha": [1e-3]})
    assert res.cv.mean_accuracy >= 0.97  # measured 1.0000
    path = res.model.save(tmp_path / "m.npz")
    m = IdentityModel.load(path)
    assert m.meta["kind"] == "identities" and m.meta["classifier"] == "mlp" and m.classes == orl_set.classes
    # the numpy-only predictions of the saved file equal the in-memory model's
    np.testing.assert_allclose(m.fitted.scores(orl_set.vectors[:50]), res.model.fitted.scores(orl_set.vectors[:50]), rtol=1e-5, atol=1e-6)
    ids = m.identify_vectors(orl_set.vectors[::10])
    assert [i.name for i in ids] == orl_set.labels[::10].tolist()  # training images: all right
    far = m.identify_vectors(np.full((1, 128), 0.3, np.float32))[0]
    assert far.name == "unknown" and far.distance > m.threshold


def test_numpy_svm_matches_scikit_learn(yale_set):
    from sklearn.svm import SVC

    from facelab.train.identities import _Fitted

    tr = np.arange(len(yale_set)) % 3 != 0
    m = _Fitted.fit("svm", {"C": 1.0}, yale_set.vectors[tr], yale_set.labels[tr])
    xs = (yale_set.vectors - m.mean) / m.scale
    sk = SVC(kernel="linear", C=1.0).fit(xs[tr], yale_set.labels[tr])
    assert (sk.predict(xs) == m.predict(yale_set.vectors)).all()


def test_evaluation_report_and_comparison(yale_set, tmp_path):
    half = np.isin(yale_set.labels, yale_set.classes[:10])
    train = yale_set.subset(half)
    svm = train_identities(train, "svm", folds=5).model
    mlp = train_identities(train, "mlp", folds=5, grid={"hidden": [128], "alpha": [1e-3]}).model
    svm.path, mlp.path = "svm.npz", "mlp.npz"
    rows = []
    for m in (svm, mlp):
        rep = evaluate_model(m, yale_set)  # 10 known people (cross-validated) + 5 strangers
        d = write_report(rep, tmp_path / rep.name)
        assert d["source"].startswith("mixed") and d["stranger_images"] == int((~half).sum())
        assert d["closed_set_accuracy"] >= 0.97  # measured 0.9908 (svm), 0.9908 (mlp)
        assert d["stranger_rejection_rate"] >= 0.8  # measured 0.8545 (svm), 0.8727 (mlp)
        assert set(d["per_class"]) == {*yale_set.classes[:10], "unknown"}
        assert (tmp_path / rep.name / "confusion.png").stat().st_size > 10_000
        saved = json.loads((tmp_path / rep.name / "report.json").read_text())
        assert saved["confusion_matrix"]["labels"][-1] == "unknown"
        if d["misclassified"]:
            assert (tmp_path / rep.name / "misclassified.jpg").exists()
        rows.append(compare_row(rep))
    table = comparison_table(rows)
    assert "fine-tuned MLP adapter" in table and "frozen embeddings + linear SVM" in table


def test_cross_validation_needs_two_images_per_person(orl_set):
    from facelab.errors import InputError

    one_each = orl_set.subset(np.array([np.flatnonzero(orl_set.labels == c)[0] for c in orl_set.classes]))
    with pytest.raises(InputError, match="at least 2 images"):
        cross_validate(one_each, "svm", folds=3)


def test_dataset_folder_errors(tmp_path, fr_examples):
    from facelab.errors import InputError
    from facelab.train.dataset import identity_dataset

    with pytest.raises(InputError, match="no such folder"):
        identity_dataset(tmp_path / "missing")
    (tmp_path / "empty" / "ada").mkdir(parents=True)
    with pytest.raises(InputError, match="no images found"):
        identity_dataset(tmp_path / "empty")
    flat = tmp_path / "flat"
    flat.mkdir()
    for n in ("ada_1.jpg", "ada_2.jpg", "bob_1.jpg", "bob_2.jpg"):
        (flat / n).write_bytes((fr_examples / "obama.jpg").read_bytes())
    with pytest.raises(InputError, match="put each person's images in DIR/<name>/"):
        identity_dataset(flat)
    items = identity_dataset(flat, label_regex=r"^([a-z]+)_")
    assert [i.label for i in items] == ["ada", "ada", "bob", "bob"]
    with pytest.raises(InputError, match="does not match --label-regex"):
        identity_dataset(flat, label_regex=r"^ada")
    with pytest.raises(InputError, match="need at least 2 people"):
        identity_dataset(flat, label_regex=r"^([a-z]+)_", min_per_class=3)
