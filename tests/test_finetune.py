"""dlib's ResNet in torch: same descriptors as the ONNX/dlib embedder; fine-tuning on ORL; the exported ONNX embeds through facelab."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import data_path

torch = pytest.importorskip("torch", reason="fine-tuning needs torch: pip install 'facelab[train]'")

TRAINED = [f"s{i}" for i in range(1, 6)]  # fine-tuned on these 5 ORL people
OTHERS = [f"s{i}" for i in range(30, 35)]  # never seen by the fine-tuning


@pytest.fixture(scope="module")
def orl_chips():
    from facelab.train.dataset import LabeledImage
    from facelab.train.finetune import face_chips

    root = data_path("orl")
    items = [LabeledImage(str(p), p.parent.name) for s in TRAINED + OTHERS for p in sorted((root / s).iterdir())]
    chips = face_chips(items, min_face=40)
    assert len(chips) == 100 and not chips.failed  # ORL's 92x112 faces are all found at min_face=40
    return chips


@pytest.fixture(scope="module")
def finetuned(orl_chips):
    from facelab.train.finetune import finetune_chips

    torch.set_num_threads(1)
    train = orl_chips.subset(np.flatnonzero(np.isin(orl_chips.labels, TRAINED)))
    net, res = finetune_chips(train, blocks=2, epochs=6, seed=0)
    return net, res


def _embed(net, chips):
    from facelab.train.torch_resnet import preprocess_chips

    with torch.no_grad():
        return net(preprocess_chips(chips, net.means)).numpy()


def test_torch_resnet_equals_the_onnx_descriptors(orl_chips):
    from facelab.embed import get_embedder
    from facelab.train.torch_resnet import load_dlib_resnet

    net = load_dlib_resnet().eval()
    chips = orl_chips.chips[::10]
    ref = get_embedder("dlib").embed_chips(chips, flip=False)
    got = _embed(net, chips)
    assert np.abs(got - ref).max() < 1e-5  # measured 4.2e-7
    cut = net.cut(2)  # the cached-prefix path gives the same numbers
    from facelab.train.torch_resnet import preprocess_chips

    with torch.no_grad():
        split = net(net(preprocess_chips(chips, net.means), 0, cut), cut).numpy()
    assert np.abs(split - ref).max() < 1e-5


def test_finetuning_lowers_the_loss_and_moves_the_trained_people_more(orl_chips, finetuned):
    from facelab.train.torch_resnet import load_dlib_resnet

    net, res = finetuned
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < 0.5 * losses[0], losses  # measured 6 epochs: 3.05 -> 0.15
    fc = max(i for i, L in enumerate(net.layers) if L.kind == "fc")
    start = load_dlib_resnet()
    start.set_output_center(-net.params[f"{fc}_bias"].detach())  # the same centred output, pretrained weights
    before, after = _embed(start.eval(), orl_chips.chips), _embed(net.eval(), orl_chips.chips)
    trained = np.isin(orl_chips.labels, TRAINED)
    moved = 1.0 - (before * after).sum(1) / np.linalg.norm(before, axis=1) / np.linalg.norm(after, axis=1)
    assert moved[trained].mean() > moved[~trained].mean()  # measured 0.216 vs 0.183 (cosine distance moved)

    def spread(e):  # cosine distance of each face to its person's centre
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        out = np.zeros(len(e))
        for c in set(orl_chips.labels):
            m = orl_chips.labels == c
            centre = e[m].mean(0)
            out[m] = 1.0 - e[m] @ (centre / np.linalg.norm(centre))
        return out

    ratio = spread(after) / spread(before)
    # the trained people's photos were pulled together much more than the others': measured 0.57 vs 0.77
    assert ratio[trained].mean() < ratio[~trained].mean() - 0.1, (ratio[trained].mean(), ratio[~trained].mean())


def test_exported_onnx_embeds_through_facelab(orl_chips, finetuned, tmp_path):
    import facelab
    from facelab.embed import distance, get_embedder
    from facelab.train.finetune import embedder_metadata

    net, _ = finetuned
    path = tmp_path / "mine.onnx"
    net.to_onnx(path, embedder_metadata(net, 0.3))
    emb = get_embedder(str(path))
    vec = emb.embed_chips(orl_chips.chips[:3], flip=False)
    ref = _embed(net.eval(), orl_chips.chips[:3])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.abs(vec - ref).max() < 1e-4  # the metadata's alignment/normalisation: same numbers as torch
    assert (emb.metric, emb.align_method, emb.chip_size, emb.padding, emb.threshold) == ("cosine", "dlib", 150, 0.25, 0.3)

    a, b = orl_chips.paths[0], orl_chips.paths[1]  # two photos of s1
    fa = facelab.FaceAnalysis(detector="hog", landmarks=None, embedder=str(path))
    f1, f2 = fa.get(facelab.load_image(a))[0], fa.get(facelab.load_image(b))[0]
    assert f1.embedding.model == "onnx:mine.onnx" and f1.embedding.vector.shape == (128,)
    v = facelab.verify(a, b, model=str(path), detector="hog")
    assert v.metric == "cosine" and v.same and v.distance == pytest.approx(distance(f1, f2), abs=0.02)  # verify picks its own box

    out = subprocess.run(
        [sys.executable, "-m", "facelab.cli", "embed", a, "--model", str(path), "--detector", "hog", "--json"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "onnx:mine.onnx" in out.stdout and doc


def test_transfer_study_grid_writes_curves_and_resumes(orl_chips, tmp_path):
    from facelab.train.study import run_study

    torch.set_num_threads(1)
    chips = orl_chips.subset(np.arange(0, 100, 2))  # 10 people x 5 photos
    s = run_study(chips, tmp_path, backbones=("dlib", "cnn"), augmentations=("none",), folds=2, epochs=3, n_aug=1)
    cells = {c["cell"]: c for c in s["cells"]}
    assert set(cells) == {"dlib-frozen-none", "dlib-finetuned-none", "cnn-scratch-none"}
    assert cells["dlib-frozen-none"]["accuracy"] >= 0.9  # ORL people are easy for dlib's features (measured 1.0)
    for name, c in cells.items():
        assert len(c["curves"]["train_acc"]) == 3 and len(c["fold_accuracies"]) == 2
        assert (tmp_path / "curves" / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / "confusion" / f"{name}.png").stat().st_size > 1000
    assert "| dlib | frozen | none |" in (tmp_path / "study.md").read_text()
    # a re-run resumes (finished cells are read back) and a budget of 0 s starts no new cell
    again = run_study(chips, tmp_path, backbones=("dlib", "cnn"), augmentations=("none", "geometric"), folds=2, epochs=3, n_aug=1, budget=0)
    assert {c["cell"]: c["accuracy"] for c in again["cells"]} == {k: c["accuracy"] for k, c in cells.items()}
    assert set(again["skipped"]) == {"dlib-frozen-geometric", "dlib-finetuned-geometric", "cnn-scratch-geometric"}


def test_distillation_brings_degraded_faces_of_unseen_people_towards_their_clean_embeddings(orl_chips):
    """Distilled on 5 ORL people's faces only, the student puts the *other* 5 people's low-resolution faces nearer to
    where dlib puts their clean faces, and their clean faces still match dlib's embedding of them."""
    from facelab.train.distill import distance_to_clean, distill_chips
    from facelab.train.finetune import run_chips
    from facelab.train.torch_resnet import load_dlib_resnet

    torch.set_num_threads(1)
    train = orl_chips.chips[np.isin(orl_chips.labels, TRAINED)]
    others = orl_chips.chips[np.isin(orl_chips.labels, OTHERS)]
    teacher = load_dlib_resnet()
    target = run_chips(teacher, others)
    before = {h: distance_to_clean(teacher, others, target, h) for h in ("clean", "lowres16")}
    net, history = distill_chips(train, blocks=3, epochs=4, copies=3, held_out=others)
    after = {h: distance_to_clean(net, others, target, h) for h in ("clean", "lowres16")}
    assert history[-1]["loss"] < history[1]["loss"]
    assert after["lowres16"] < before["lowres16"] - 0.02, (before, after)
    # and a clean face still verifies against the frozen network's embedding of it (dlib's threshold 0.6)
    assert float(((run_chips(net, others) - target) ** 2).sum(1).sqrt().max()) < 0.6


def test_distilled_embedder_from_the_cli_keeps_dlibs_space(tmp_path):
    """`facelab train embedder --distill` on unlabelled photos writes an ONNX embedder in dlib's euclidean space: two photos
    of one unseen ORL person match at dlib's 0.6 threshold, two people do not, and the card says what it was trained on."""
    import facelab

    root = data_path("orl")
    folder = tmp_path / "faces"
    folder.mkdir()
    for s in ("s1", "s2", "s3"):
        for p in sorted((root / s).iterdir()):
            (folder / f"{s}_{p.name}").symlink_to(p)
    out = tmp_path / "distilled.onnx"
    cmd = [sys.executable, "-m", "facelab.cli", "train", "embedder", str(folder), "--distill", "--blocks", "2", "--epochs", "2", "--out", str(out), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "30 faces distilled" in res.stdout and "euclidean threshold 0.6000" in res.stdout
    assert "distilled for degraded faces" in out.with_suffix(".md").read_text()
    a, b, c = root / "s30" / "1.pgm", root / "s30" / "2.pgm", root / "s31" / "1.pgm"
    same = facelab.verify(str(a), str(b), model=str(out), detector="hog")
    other = facelab.verify(str(a), str(c), model=str(out), detector="hog")
    assert same.metric == "euclidean" and same.threshold == pytest.approx(0.6)
    assert same.same and not other.same, (same.distance, other.distance)
    bad = subprocess.run(cmd[:-3] + ["--label-regex", "s(\\d+)", "--quiet"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--distill uses no labels" in bad.stderr and "Traceback" not in bad.stderr
