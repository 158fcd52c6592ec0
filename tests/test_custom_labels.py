"""Your own label sets: a labelling-tool export (Dataturks JSONL) trains, evaluates and predicts with its labels; kept epochs; balance.

Images are served by a local HTTP server (127.0.0.1), as a labelling tool's export points at URLs.
"""

from __future__ import annotations

import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, data_path
from test_cli import facelab as run_cli

EMOTIONS = ["Emotion_Happy", "Emotion_Sad", "Not_Face"]
AGES = ["Age_20_30", "Age_above_50", "others"]


def _age_bucket(age: float) -> str:
    return "Age_20_30" if 20 <= age <= 30 else "Age_above_50" if age > 50 else "others"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """A folder served over HTTP with 64 real images and a Dataturks-style export of them.

    24 FER2013 faces labelled Emotion_Happy / Emotion_Sad, 8 background patches of the sample photos
    labelled Not_Face, 32 UTKFace faces labelled with an age bucket and an ethnicity (E_*), and one
    line not labelled yet.
    """
    pytest.importorskip("torch")
    import cv2

    from facelab.attributes.data import import_fer2013, import_utkface

    root = tmp_path_factory.mktemp("served")
    (root / "img").mkdir()
    rows = []
    fer = import_fer2013(data_path("fer2013"), "train")
    for emo, lab in (("happy", "Emotion_Happy"), ("sad", "Emotion_Sad")):
        for i, it in enumerate([x for x in fer if x.labels["emotion"] == emo][::300][:12]):
            name = f"img/{emo}{i}.jpg"
            (root / name).write_bytes(Path(it.source).read_bytes())
            rows.append((name, [lab]))
    from facelab import load_image

    photo = load_image(SAMPLES / "photos" / "obama_and_biden.jpg")
    h, w = photo.shape[:2]
    for i in range(8):  # patches of the background above the heads: not faces
        y, x = 0, i * (w // 8)
        patch = np.ascontiguousarray(photo[y : y + 96, x : x + 96])
        cv2.imwrite(str(root / f"img/bg{i}.jpg"), cv2.cvtColor(patch, cv2.COLOR_RGB2BGR))
        rows.append((f"img/bg{i}.jpg", ["Not_Face"]))
    for i, it in enumerate(import_utkface(data_path("utkface"))[::90][:32]):
        name = f"img/utk{i}.jpg"
        (root / name).write_bytes(Path(it.source).read_bytes())
        rows.append((name, [_age_bucket(float(it.labels["age"])), "E_" + str(it.labels["ethnicity"]).title()]))
    handler = type("H", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(root), **k))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    lines = [{"content": f"{base}/{n}", "annotation": {"labels": labs, "note": ""}, "extras": None} for n, labs in rows]
    lines.insert(5, {"content": f"{base}/img/happy0.jpg", "annotation": None, "extras": None})  # not labelled yet
    export = root / "export.jsonl"
    export.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    dead = root / "dead.jsonl"
    dead.write_text("\n".join(json.dumps({"content": f"{base}/missing{i}.jpg", "annotation": {"labels": ["happy"]}}) for i in range(3)) + "\n")
    yield {"root": root, "base": base, "export": export, "dead": dead, "n": len(rows)}
    srv.shutdown()
    srv.server_close()


def test_import_reads_tasks_and_classes_from_the_labels(export_dir, tmp_path):
    from facelab.attributes.data import import_label_export, read_manifest

    items, tasks, summary = import_label_export(export_dir["export"])
    assert tasks["emotion"] == EMOTIONS and set(tasks["age_group"]) <= set(AGES) and len(tasks["age_group"]) >= 2
    assert all(c.startswith("E_") for c in tasks["ethnicity"]) and len(tasks["ethnicity"]) >= 3
    assert len(items) == export_dir["n"] and summary["unlabelled"] == 1
    # the CLI writes a manifest that declares the label sets, and reading it back gives the same items
    r = run_cli("dataset", "import-labels", str(export_dir["export"]), "--out", str(tmp_path / "m.json"), "--json")
    assert r.returncode == 0, r.stderr
    back, declared = read_manifest(tmp_path / "m.json")
    assert declared == tasks and [it.labels for it in back] == [it.labels for it in items]
    # a label no mapping covers: one line naming the line and the label
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"content": "a.jpg", "annotation": {"labels": ["Mood_Grumpy"]}}) + "\n")
    r = run_cli("dataset", "import-labels", str(bad), "--out", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "line 1" in r.stderr and "'Mood_Grumpy' matches no task" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("dataset", "import-labels", str(bad), "--out", str(tmp_path / "x.json"), "--map", "Mood_=mood")
    assert r.returncode == 0 and json.loads((tmp_path / "x.json").read_text())["tasks"] == {"mood": ["Mood_Grumpy"]}


def test_export_trains_evaluates_and_predicts_with_its_labels(export_dir, tmp_path):
    out = tmp_path / "mine.onnx"
    r = run_cli("train", "attributes", "--labels-from", str(export_dir["export"]), "--faces", "given", "--out", str(out), "--epochs", "3",
                "--size", "32", "--widths", "8,16,32,48", "--batch-size", "16", "--val-fraction", "0.2", "--keep", "all", "--balance", "augment",
                "--cache", str(tmp_path / "cache"), "-q")
    assert r.returncode == 0, r.stderr
    from facelab.attributes import read_metadata

    meta = read_metadata(out)
    assert meta["tasks"]["emotion"] == EMOTIONS and set(meta["tasks"]) == {"emotion", "age_group", "ethnicity"}
    rep = json.loads(out.with_suffix(".report.json").read_text())
    assert sorted(rep["kept_epochs"]) == ["1", "2", "3"] and all(Path(p).is_file() for p in rep["kept_epochs"].values())
    # balance: Not_Face (8 images) is repeated more than the larger emotion classes
    before, after = rep["balance"]["before"]["emotion"], rep["balance"]["after"]["emotion"]
    assert after["Not_Face"] / before["Not_Face"] > after["Emotion_Happy"] / before["Emotion_Happy"]
    for png in ("mine.curves_loss.png", "mine.curves_accuracy.png", "mine.balance.png"):
        assert (tmp_path / png).stat().st_size > 5000, png
    # evaluate epoch 2 on the export itself (URLs): the report uses the custom classes
    ev = run_cli("evaluate", "attributes", "--model", str(out), "--epoch", "2", "--manifest", str(export_dir["export"]), "--faces", "given",
                 "--out", str(tmp_path / "ev"), "--json", "-q", "--cache", str(tmp_path / "cache"))
    assert ev.returncode == 0, ev.stderr
    report = json.loads(ev.stdout)
    assert report["evaluated"] == export_dir["n"] and report["tasks"]["emotion"]["classes"] == EMOTIONS
    assert report["tasks"]["age_group"]["n"] == 32 and (tmp_path / "ev" / "confusion_emotion.png").is_file()
    # an epoch that was not kept: a one-line error listing the kept ones
    no = run_cli("evaluate", "attributes", "--model", str(out), "--epoch", "9", "--manifest", str(export_dir["export"]), "-q")
    assert no.returncode == 2 and "kept epochs: 1, 2, 3" in no.stderr and "Traceback" not in no.stderr
    # predict on a URL with the kept weights of epoch 1 and with the best: custom class names come back
    for extra in ([], ["--epoch", "1"]):
        p = run_cli("predict", "--model", str(out), *extra, "--whole-image", f"{export_dir['base']}/img/utk0.jpg", "--json")
        assert p.returncode == 0, p.stderr
        attrs = json.loads(p.stdout)[0]["faces"][0]["attributes"]
        assert attrs["emotion"]["value"] in EMOTIONS and attrs["age_group"]["value"] in AGES and attrs["ethnicity"]["value"].startswith("E_")


def test_evaluation_with_every_item_failing_exits_non_zero(export_dir, tmp_path):
    """Every URL is dead: nothing is scored, so the command fails with one line saying why (not an empty report)."""
    from facelab.attributes import get_attribute_model
    from facelab.attributes.data import Fetcher, read_manifest
    from facelab.evaluate.attributes import evaluate
    from facelab.errors import NothingEvaluatedError

    items, _ = read_manifest(export_dir["dead"], mapping={"happy": "emotion"})
    with pytest.raises(NothingEvaluatedError, match="all 3 items failed"):
        evaluate(get_attribute_model("fer-cnn"), items, faces="given", fetcher=Fetcher(tmp_path / "c", timeout=2, retries=0))
    r = run_cli("evaluate", "attributes", "--model", "fer-cnn", "--manifest", str(export_dir["dead"]), "--map", "happy=emotion",
                "--faces", "given", "--retries", "0", "-q", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "ev"))
    assert r.returncode == 1 and "nothing evaluated: all 3 items failed" in r.stderr and "HTTP 404" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "ev" / "report.json").exists()


def test_class_weights_follow_the_counts_and_train(export_dir, tmp_path):
    """balance="weights": each class's loss weight is n / (classes * n_class); a weighted epoch trains (finite, logged)."""
    from facelab.attributes.data import ChipSpec, Fetcher, build_chips, import_label_export
    from facelab.train.attributes import TaskSpec, TrainConfig, balance_plan, train

    items, tasks, _ = import_label_export(export_dir["export"])
    data, fails = build_chips(items, ChipSpec(size=32, channels=1, faces="given"), tasks, fetcher=Fetcher(tmp_path / "c"), workers=2)
    assert not fails and len(data) == export_dir["n"]
    specs = [TaskSpec(t, c) for t, c in tasks.items()]
    plan = balance_plan(data, specs, "weights")
    counts = plan["before"]["emotion"]
    assert counts == {"Emotion_Happy": 12, "Emotion_Sad": 12, "Not_Face": 8}
    assert plan["weights"]["emotion"] == pytest.approx([32 / (3 * 12), 32 / (3 * 12), 32 / (3 * 8)])
    assert plan["after"]["emotion"] == pytest.approx({c: 32 / 3 for c in counts})  # every class weighs the same
    res = train(data, None, specs, TrainConfig(epochs=1, batch_size=16, size=32, widths=(8, 16, 32, 48), balance="weights"))
    assert np.isfinite(res.history[0].loss) and res.balance["mode"] == "weights" and set(res.history[0].train_metrics) == {"emotion_acc", "age_group_acc", "ethnicity_acc"}
