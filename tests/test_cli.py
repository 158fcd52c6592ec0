"""The command line: JSON output, annotated images, exit codes, bad files, workers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass



def facelab_process(*args, timeout=300):
    """Run the installed CLI in a subprocess, exactly as a user would."""
    exe = shutil.which("facelab") or ""
    cmd = [exe, *args] if exe else [sys.executable, "-m", "facelab.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def facelab(*args):
    """Run the CLI in this process (models stay loaded between calls, so the tests stay fast)."""
    from typer.testing import CliRunner

    from facelab.cli import app

    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Run(r.exit_code, r.stdout, r.stderr)


def test_detect_json(fr_examples):
    r = facelab("detect", str(fr_examples / "two_people.jpg"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out) == 1 and len(out[0]["faces"]) == 2
    assert set(out[0]["faces"][0]["box"]) == {"left", "top", "right", "bottom"}


def test_folder_with_a_bad_file_is_reported_and_skipped(tmp_path, fr_examples):
    d = tmp_path / "photos"
    d.mkdir()
    shutil.copy(fr_examples / "obama.jpg", d / "a.jpg")
    shutil.copy(fr_examples / "biden.jpg", d / "b.jpg")
    (d / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (d / "notes.txt").write_text("not an image, not listed")
    out = tmp_path / "out"
    r = facelab("landmarks", str(d), "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert [os.path.basename(x["source"]) for x in res] == ["a.jpg", "b.jpg", "c.jpg"]
    assert len(res[0]["faces"]) == 1 and len(res[0]["faces"][0]["landmarks"]["points"]) == 68
    assert res[2]["error_code"] in ("corrupt_image", "unsupported_image")
    assert "c.jpg" in r.stderr and "Traceback" not in r.stderr
    assert (out / "a.jpg").is_file() and (out / "b.jpg").is_file() and (out / "results.json").is_file()


def test_real_process_exit_codes_and_messages(tmp_path):
    """The installed command, in its own process: one-line errors, no traceback, exit 2."""
    missing = facelab_process("detect", str(tmp_path / "missing.jpg"))
    assert missing.returncode == 2 and "missing.jpg: no such file" in missing.stderr and "Traceback" not in missing.stderr
    assert facelab_process("detect", "--detector").returncode == 2  # usage error


def test_exit_codes(tmp_path, fr_examples):
    missing = facelab("detect", str(tmp_path / "missing.jpg"))
    assert missing.returncode == 2 and "missing.jpg: no such file" in missing.stderr and "Traceback" not in missing.stderr
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank)
    nf = facelab("verify", str(fr_examples / "obama.jpg"), str(blank))
    assert nf.returncode == 1 and "no face" in nf.stderr
    assert facelab("detect", str(blank)).returncode == 0  # no face is fine for detect...
    assert facelab("detect", str(blank), "--require-face").returncode == 1  # ...unless required
    usage = facelab("detect", "--detector")
    assert usage.returncode == 2
    unknown = facelab("detect", str(blank), "--detector", "nope")
    assert unknown.returncode == 2 and "unknown detector" in unknown.stderr


def test_verify_text_and_json(fr_examples):
    r = facelab("verify", str(fr_examples / "obama.jpg"), str(fr_examples / "obama2.jpg"))
    assert r.returncode == 0 and r.stdout.startswith("same person")
    r = facelab("verify", str(fr_examples / "obama.jpg"), str(fr_examples / "biden.jpg"), "--json")
    v = json.loads(r.stdout)
    assert v["same"] is False and v["distance"] > v["threshold"]


def test_workers_give_the_same_results(tmp_path, fr_examples):
    files = [str(fr_examples / f) for f in ("obama.jpg", "biden.jpg", "two_people.jpg", "obama2.jpg")]
    one = json.loads(facelab("embed", *files, "--json", "-q").stdout)
    two = json.loads(facelab("embed", *files, "--json", "-q", "--workers", "2").stdout)
    assert [r["source"] for r in one] == files == [r["source"] for r in two]
    for a, b in zip(one, two):
        assert len(a["faces"]) == len(b["faces"])
        for fa, fb in zip(a["faces"], b["faces"]):
            assert fa["embedding"]["vector"] == fb["embedding"]["vector"]


def test_analyze_names_known_people(tmp_path, fr_examples):
    known = tmp_path / "known"
    known.mkdir()
    shutil.copy(fr_examples / "obama.jpg", known / "obama.jpg")
    shutil.copy(fr_examples / "biden.jpg", known / "biden.jpg")
    out = tmp_path / "out"
    r = facelab("analyze", str(fr_examples / "knn_examples" / "test" / "obama_and_biden.jpg"), "--known", str(known), "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    faces = json.loads(r.stdout)[0]["faces"]
    names = sorted(f["identity"]["name"] for f in faces)
    assert names == ["biden", "obama", "unknown"]
    assert (out / "obama_and_biden.jpg").is_file()


def test_models_command():
    r = facelab("models", "--json")
    info = json.loads(r.stdout)
    assert "hog" in info["detectors"] and info["model_files"]["dlib_resnet"]["ok"]


def test_tables_show_whole_relative_paths_and_follow_symlinked_folders(tmp_path, fr_examples):
    """A deep folder with a symlinked person folder: the table names each image relative to the folder given,
    whole, even on a narrow terminal; --json keeps the full paths (issue 17 points 2, 3)."""
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "people"
    (deep / "biden").mkdir(parents=True)
    shutil.copy(fr_examples / "biden.jpg", deep / "biden" / "biden_with_a_long_file_name_too.jpg")
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(fr_examples / "obama.jpg", tmp_path / "elsewhere" / "obama_with_a_long_file_name_too.jpg")
    (deep / "obama").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    from typer.testing import CliRunner

    from facelab.cli import app

    r = CliRunner().invoke(app, ["detect", str(deep)], env={"COLUMNS": "60"})
    assert r.exit_code == 0, r.stderr
    for rel in ("biden/biden_with_a_long_file_name_too.jpg", "obama/obama_with_a_long_file_name_too.jpg"):
        assert rel in r.stdout, r.stdout
    assert str(deep) not in r.stdout
    js = facelab("detect", str(deep), "--json")
    assert [x["source"] for x in json.loads(js.stdout)] == [
        str(deep / "biden" / "biden_with_a_long_file_name_too.jpg"), str(deep / "obama" / "obama_with_a_long_file_name_too.jpg")
    ]


def test_json_is_all_of_stdout_and_third_party_noise_needs_v(tmp_path, fr_examples):
    """--json: stdout is one JSON document; TFLite's log line and library warnings show only with -v (issue 17 point 6)."""
    img = str(fr_examples / "obama.jpg")
    env_db = ["--db", str(tmp_path / "g.db")]
    for args in (["detect", img, "-d", "blazeface"], ["landmarks", img], ["models"], ["verify", img, img], ["gallery", "info", *env_db]):
        r = facelab_process(*args, "--json")
        assert r.returncode == 0, (args, r.stderr)
        json.loads(r.stdout)  # nothing but JSON
        assert "XNNPACK" not in r.stderr and "Warning" not in r.stderr, (args, r.stderr)
    loud = facelab_process("detect", img, "-d", "blazeface", "--json", "-v")
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr  # the same run, verbose: the native log line is there
    json.loads(loud.stdout)


def _all_commands():
    from typer.main import get_command

    from facelab.cli import app

    def walk(cmd, path):
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, (*path, name))
        if not hasattr(cmd, "commands"):
            yield " ".join(path), cmd

    return dict(walk(get_command(app), ()))


def test_one_default_detector_and_rotation_for_every_command():
    """Every command with --detector / --rotate has the same defaults (cli/common.py), except the documented ones (issue 17 point 5)."""
    from facelab.detect import DEFAULT_DETECTOR

    own = {"verify": "hog,hog@2,cnn", "evaluate landmarks": "hog"}  # README "Command line": calibrated / comparable settings
    seen = []
    for name, cmd in _all_commands().items():
        opts = {p.name: p.default for p in cmd.params}
        if "detector" in opts:
            seen.append(name)
            assert opts["detector"] == own.get(name, DEFAULT_DETECTOR), name
        if "rotate" in opts:
            assert getattr(opts["rotate"], "value", opts["rotate"]) == "auto", name
    for name in ("detect", "landmarks", "embed", "analyze", "predict", "train identities", "dataset build", "enroll", "enroll-dir", "identify",
                 "batch embed", "batch analyze", "batch identify", "stream", "serve"):
        assert name in seen, name


def test_landmarks_help_lists_every_registered_model():
    from typer.testing import CliRunner

    from facelab.cli import app
    from facelab.landmarks import LANDMARKERS

    out = CliRunner().invoke(app, ["landmarks", "--help"], env={"COLUMNS": "300"}).stdout
    for name in LANDMARKERS.names():
        assert name in out, name


def _two_people(tmp_path, fr_examples):
    """raw/biden and raw/obama (2 photos each), as symlinked folders."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("biden", "obama"):
        (raw / name).symlink_to(fr_examples / "knn_examples" / "train" / name, target_is_directory=True)
    return raw


def test_dataset_build_accepts_rotate_off(tmp_path, fr_examples):
    from facelab.datasets.build import BuildOptions

    assert BuildOptions(rotate=False).rotate == BuildOptions(rotate="off").rotate == "off"
    raw = _two_people(tmp_path, fr_examples)
    r = facelab("dataset", "build", str(raw), str(tmp_path / "out"), "--rotate", "off", "--json", "-q")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["totals"]["images"] == 4 and s["options"]["rotate"] == "off"


def test_limit_on_commands_that_read_many_items(tmp_path, fr_examples):
    """``--limit`` (issue 17 point 5): the first N inputs of a batch, the first N photos of each person elsewhere."""
    from facelab.batch import read_rows

    raw = _two_people(tmp_path, fr_examples)
    r = facelab("dataset", "build", str(raw), str(tmp_path / "out"), "--limit", "1", "--json", "-q")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["totals"]["images"] == 2 and {p: v["images"] for p, v in s["per_person"].items()} == {"biden": 1, "obama": 1}
    out = tmp_path / "rows"
    r = facelab("batch", "embed", str(raw), "-o", str(out), "--limit", "3", "-w", "1", "-q", "--json")
    assert r.returncode == 0, r.stderr
    sources = read_rows(out, ["source"]).column("source").to_pylist()
    assert json.loads(r.stdout)["processed"] == 3 and len(set(sources)) == 3
    r = facelab("batch", "embed", str(raw), "-o", str(out), "-w", "1", "-q", "--json")  # without it: the rest
    assert r.returncode == 0 and json.loads(r.stdout)["processed"] == 1
    assert len(set(read_rows(out, ["source"]).column("source").to_pylist())) == 4
    # one photo each cannot be cross-validated: the limit reached training, which says so in one line
    r = facelab("train", "identities", str(raw), "--limit", "1", "--folds", "2", "-o", str(tmp_path / "m.npz"), "--json")
    assert r.returncode == 2 and "only 1 for: biden, obama" in r.stderr, r.stderr
    r = facelab("train", "identities", str(raw), "--limit", "2", "--folds", "2", "-o", str(tmp_path / "m.npz"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["balance"]["before"] == {"biden": 2, "obama": 2}, r.stderr


def _leaf_commands():
    from typer.main import get_command

    from facelab.cli import app

    out, todo = [], [([], get_command(app))]
    while todo:
        path, cmd = todo.pop()
        subs = getattr(cmd, "commands", None)
        if subs:
            todo += [([*path, k], c) for k, c in subs.items()]
        else:
            out.append((" ".join(path), cmd))
    return out


def test_no_flag_means_two_things_and_every_embedding_command_takes_embedder():
    """Click lets a later option silently steal a flag (``-e`` was --engine and the embedder in batch)."""
    leaves = _leaf_commands()
    assert len(leaves) >= 40
    for name, cmd in leaves:
        flags = [o for p in cmd.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ())) if o.startswith("-")]
        assert len(flags) == len(set(flags)), (name, sorted(f for f in flags if flags.count(f) > 1))
    takes = {name for name, cmd in leaves if any("--embedder" in getattr(p, "opts", ()) for p in cmd.params)}
    for name in ("embed", "verify", "analyze", "enroll", "identify", "batch embed", "batch analyze", "train identities"):
        assert name in takes, name


def test_embedder_option_runs(tmp_path):
    from pathlib import Path

    samples = Path(__file__).resolve().parents[1] / "samples"
    r = facelab("verify", str(samples / "known" / "obama.jpg"), str(samples / "photos" / "obama2.jpg"), "--embedder", "dlib", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["same"] is True, r.stderr
    r = facelab("embed", str(samples / "known" / "obama.jpg"), "--embedder", str(tmp_path / "missing.onnx"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "missing.onnx" in r.stderr, r.stderr


def test_verify_pick_central_takes_the_subject_not_the_largest_face(tmp_path, fr_examples):
    """A portrait centred on Biden with a larger Obama at its edge: ``--pick central`` verifies Biden, the default the
    larger Obama; an unknown ``--pick`` is a one-line usage error."""
    from PIL import Image

    biden = Image.open(fr_examples / "biden.jpg").convert("RGB")
    obama = Image.open(fr_examples / "obama.jpg").convert("RGB")
    obama = obama.resize((int(obama.width * 1.6 * biden.height / obama.height), int(1.6 * biden.height)))
    canvas = Image.new("RGB", (3 * biden.width + obama.width, obama.height), (120, 120, 120))
    canvas.paste(biden, ((canvas.width - biden.width) // 2, (canvas.height - biden.height) // 2))
    canvas.paste(obama, (0, 0))
    photo = tmp_path / "group.jpg"
    canvas.save(photo)
    central = json.loads(facelab("verify", str(fr_examples / "biden.jpg"), str(photo), "--pick", "central", "--json").stdout)
    largest = json.loads(facelab("verify", str(fr_examples / "biden.jpg"), str(photo), "--json").stdout)
    assert central["same"] is True and largest["same"] is False
    bad = facelab("verify", str(photo), str(photo), "--pick", "middle")
    assert bad.returncode == 2 and "--pick must be largest or central" in bad.stderr and "Traceback" not in bad.stderr
