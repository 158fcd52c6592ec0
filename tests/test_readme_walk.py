"""A walk through the README: every ``facelab ...`` line of its shell blocks runs, exits 0 and prints something.

The placeholder names stand for real files: the sample photos, person folders of the shared data
(linked in, as symlinks, the way people often lay out their photos), a temporary gallery, short
training runs (``EXTRA`` adds ``--limit``/``--epochs`` to keep them quick).  A README line that this
test cannot run is listed in ``SKIP`` with the reason; a new line with a new placeholder fails here
until it is given a stand-in, so the README cannot drift from the commands.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import data_path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def readme_commands() -> list[tuple[int, str]]:
    """(line number, command) of every line starting with ``facelab `` inside a fenced shell block."""
    out, fenced = [], False
    for i, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced and line.strip().startswith("facelab "):
            out.append((i, re.split(r"\s+#\s", line.strip())[0].strip()))
    return out


#: README commands this test does not run, and why
SKIP = {
    "facelab batch embed manifest.csv -o out.parquet --engine ray --address HEAD:6379": "needs a running Ray cluster at HEAD:6379",
    "facelab serve --host 127.0.0.1 --port 8000 --db gallery.db": "runs until stopped (tests/test_serve_*.py start the server)",
    "facelab stream 0 --show": "needs a webcam and a display",
}

#: whole README lines run as another line (a webcam stands in for a clip)
REWRITE = {
    "facelab stream 0 --anonymize blur --out live.mp4": "facelab stream clip.mp4 --anonymize blur --out live.mp4",
}

#: placeholder -> stand-in (whole words of a command)
STAND_INS = {
    "PHOTOS/": "photos/",
    "KNOWN/": "known/",
    "known_people/": "known/",
    "photo.jpg": "photos/obama_and_biden.jpg",
    "face.jpg": "photos/obama2.jpg",
    "crowd.jpg": "photos/obama_and_biden.jpg",
    "group.jpg": "photos/obama_and_biden.jpg",
    "a.jpg": "known/obama.jpg",
    "b.jpg": "photos/obama2.jpg",
    "obama.jpg": "known/obama.jpg",
    "obama2.jpg": "photos/obama2.jpg",
    "archive/": "photos/",
    "'photos/**/*.jpg'": "photos/**/*.jpg",
    "https://example.org/face.jpg": "{url}/obama2.jpg",
    "keypoints68/": "{keypoints68}",
    "clip.mp4": "clip.mp4",
    "team.jpg": "photos/obama_and_biden.jpg",
    "staff.db": "gallery.db",
    "faces/": "photos/",
}

#: arguments added to keep a command quick (a README line -> extra arguments)
EXTRA = {
    "facelab train landmarks": ["--epochs", "1", "--limit", "16", "--batch-size", "8", "-q"],
    "facelab evaluate landmarks": ["--limit", "8", "-q"],
    "facelab augment": ["--limit", "2"],
    "facelab train attributes": ["--epochs", "1", "-q", "--faces", "given", "--size", "32", "--widths", "8,16,32,48"],
    "facelab evaluate attributes": ["-q", "--faces", "given"],
    "facelab cluster who.parquet": ["--all"],
    "facelab train embedder faces/ --distill": ["--blocks", "1", "--epochs", "1", "-q"],
    "facelab train study": ["--folds", "2", "--epochs", "1", "--backbones", "cnn", "--augment", "none", "-q"],  # the walk's photos have too few unknown faces to form a cluster
}

GALLERY_LINE = "facelab gallery list | show | rename | remove | export | import | info"
GALLERY_EXPANDED = [
    "facelab gallery list",
    'facelab gallery show "Barack Obama"',
    'facelab gallery rename "Barack Obama" "Barack H. Obama"',
    'facelab gallery rename "Barack H. Obama" "Barack Obama"',
    "facelab gallery export gallery.json",
    "facelab gallery import gallery.json",
    "facelab gallery info",
    "facelab gallery remove kit_harington --yes",
]


def _quoted(path) -> str:
    return shlex.quote(str(path))


@pytest.fixture(scope="module")
def walk_dir(tmp_path_factory):
    """A folder with photos/, known/, people/<name>/ (symlinked folders), two attribute manifests, a clip and a gallery path."""
    people_src = data_path("people", "face_recognition", "examples", "knn_examples", "train")
    utk = data_path("utkface")
    d = tmp_path_factory.mktemp("walk")
    (d / "photos").mkdir()
    for p in (SAMPLES / "photos").iterdir():
        (d / "photos" / p.name).symlink_to(p)
    (d / "known").symlink_to(SAMPLES / "known", target_is_directory=True)
    (d / "people").mkdir()
    for name in ("biden", "kit_harington", "rose_leslie"):  # 2 photos each (Obama is enrolled by name, from known/)
        (d / "people" / name).symlink_to(people_src / name, target_is_directory=True)
    from facelab.attributes.data import dataset_items

    (d / "data.json").write_text(json.dumps([it.to_dict() for it in dataset_items("utkface", utk, "train")[:40]]))
    (d / "test.json").write_text(json.dumps([it.to_dict() for it in dataset_items("utkface", utk, "test")[:10]]))
    with open(d / "export.jsonl", "w") as f:  # a labelling-tool export (Dataturks' lines) with the README's own label sets
        for it in dataset_items("utkface", utk, "train")[40::40][:40]:
            age = float(it.labels["age"])
            bucket = "Age_20_30" if 20 <= age < 30 else "Age_above_50" if age >= 50 else "others"
            f.write(json.dumps({"content": str(it.source), "annotation": {"labels": [bucket, f"E_{it.labels['ethnicity']}"]}}) + "\n")
    (d / "shots").mkdir()  # several shots of one person no other line enrols, for ``enroll --best``
    for p in sorted((people_src / "alex_lacamoire").iterdir()):
        (d / "shots" / p.name).symlink_to(p)
    with open(d / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path"])
        w.writerows([[str(p)] for p in sorted((SAMPLES / "photos").iterdir())])
    from facelab.io import load_image
    from facelab.video import write_video
    from facelab.video.synth import Actor, head_crop, scene

    obama = Actor(head_crop(load_image(SAMPLES / "known" / "obama.jpg")), start=2, end=14, x0=40, x1=300, y=40)
    write_video(d / "clip.mp4", scene([obama], 16, (480, 270)), fps=8)
    return d


@pytest.fixture(scope="module")
def photo_url():
    handler = partial(SimpleHTTPRequestHandler, directory=str(SAMPLES / "photos"))
    handler.log_message = lambda *a: None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _runnable(cmd: str, url: str, cwd: Path) -> list[str]:
    words = []
    for w in shlex.split(REWRITE.get(cmd, cmd)):
        if w == "facelab":
            words.append(w)
            continue
        stand_in = STAND_INS.get(w, STAND_INS.get(f"'{w}'"))
        if stand_in is None and "*" in w:  # an unquoted glob: the shell would expand it
            words += sorted(str(p.relative_to(cwd)) for p in cwd.glob(w)) or [w]
            continue
        words.append((stand_in or w).format(url=url, keypoints68=data_path("keypoints68")))
    for prefix, extra in EXTRA.items():
        if cmd.startswith(prefix):
            words += extra
    return words


def _walk() -> list[str]:
    cmds = []
    for _, cmd in readme_commands():
        cmds += GALLERY_EXPANDED if cmd == GALLERY_LINE else [cmd]
    return cmds


@pytest.mark.slow
def test_every_readme_command_runs(walk_dir, photo_url):
    exe = Path(sys.executable).with_name("facelab")
    env = {**os.environ, "FACELAB_HOME": str(walk_dir / "home"), "FACELAB_DB": str(walk_dir / "gallery.db"), "OMP_NUM_THREADS": "1"}
    failures, ran = [], 0
    for cmd in _walk():
        if cmd in SKIP:
            continue
        argv = _runnable(cmd, photo_url, walk_dir)
        r = subprocess.run([str(exe), *argv[1:]], cwd=walk_dir, env=env, capture_output=True, text=True, timeout=600)
        ran += 1
        if r.returncode != 0 or not (r.stdout.strip() or r.stderr.strip()):
            failures.append(f"{cmd}\n  ran: {shlex.join(argv)}\n  exit {r.returncode}\n  {r.stderr.strip()[-600:]}")
    assert ran >= 30
    assert not failures, "README commands that fail:\n" + "\n".join(failures)


def test_every_readme_command_has_a_stand_in_or_a_reason():
    """Cheap, always on: no README command is forgotten (a placeholder with no stand-in fails the slow walk)."""
    cmds = _walk()
    assert len(cmds) >= 35
    top = _top_commands()
    for cmd in cmds:
        assert _command_word(cmd) in top or cmd in SKIP, cmd


def _command_word(cmd: str) -> str:
    """The sub-command of a line, past the global options (``facelab --licence commercial analyze ...`` -> analyze)."""
    words = shlex.split(cmd)[1:]
    while words and words[0].startswith("-"):
        words = words[2:] if words[0] in ("--licence", "--license") else words[1:]
    return words[0] if words else ""


def _top_commands() -> set[str]:
    from facelab.cli import app
    from typer.main import get_command

    return set(get_command(app).commands)
