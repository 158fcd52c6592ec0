"""Train the learned quality score (``assets/quality_mlp.onnx``).

Data: LFW View 1 (``shared/data/lfw``), only people who appear nowhere in ``pairsDevTest.txt`` (the
benchmark pairs), with at least two photos.  Each photo (and one degraded copy of it: blur, downscale,
JPEG, dark/bright, noise) gets the dlib embedding and the quality features; the target is the distance
from its embedding to the mean embedding of the person's *other* clean photos.  An MLP on
[embedding, features] predicts that distance; people are split 85/15 (seeded) for early stopping.

    python -m facelab.quality.train --lfw ../shared/data/lfw --out runs/quality
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from ..detect import detect, pick_face
from ..embed import embed
from ..io import load_image
from ..types import Face
from . import EMBEDDING_DIM, FEATURES, QUALITY_EMBEDDER, feature_columns, feature_vector, measure

DEGRADATIONS = ("blur", "small", "jpeg", "dark", "bright", "noise")


def pair_people(pairs_file: str | os.PathLike[str]) -> set[str]:
    """Every person named in an LFW pairs file."""
    people: set[str] = set()
    for line in Path(pairs_file).read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3:
            people.add(parts[0])
        elif len(parts) == 4:
            people.update((parts[0], parts[2]))
    return people


def degrade(image: np.ndarray, face: Face, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A degraded copy of the image (same size) of one of DEGRADATIONS."""
    img = image.astype(np.float32)
    if kind == "blur":
        out = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(1.5, 5.0)))
    elif kind == "small":
        side = max(face.box.width, face.box.height, 1.0)
        f = float(rng.uniform(14, 40)) / side
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(4, int(w * f)), max(4, int(h * f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    elif kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(3, 12))])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32)
    elif kind == "dark":
        out = 255.0 * (img / 255.0) ** float(rng.uniform(2.0, 4.0)) * float(rng.uniform(0.3, 0.7))
    elif kind == "bright":
        out = 255.0 * (img / 255.0) ** float(rng.uniform(0.25, 0.5)) + float(rng.uniform(20, 60))
    elif kind == "noise":
        out = img + rng.normal(0, float(rng.uniform(15, 40)), img.shape)
    else:
        raise ValueError(kind)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def face_of(image: np.ndarray) -> Face | None:
    """The central face with the default detector (rotation sweep when nothing is upright)."""
    faces = detect(image)
    return pick_face(faces, image.shape, "central") if faces else None


def row(image: np.ndarray, face: Face) -> np.ndarray:
    """[embedding (flip-averaged dlib), FEATURES] for one face."""
    f = Face(face.box, face.score, face.detector, face.rotation, keypoints=face.keypoints, landmarks=face.landmarks)
    embed(image, [f], QUALITY_EMBEDDER, flip=True)
    return np.concatenate([f.embedding.vector, feature_vector(f, measure(image, f))]).astype(np.float32)


def extract(paths: list[str], *, degraded: bool, seed: int = 0, log_every: int = 200) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows for clean photos (and one degraded copy each): (X, ok mask for clean, kinds)."""
    rng = np.random.default_rng(seed)
    X, kinds, ok = [], [], []
    t0 = time.time()
    for i, p in enumerate(paths):
        img = load_image(p)
        face = face_of(img)
        if face is None:
            ok.append(False)
            continue
        ok.append(True)
        X.append(row(img, face))
        kinds.append("clean")
        if degraded:
            k = DEGRADATIONS[int(rng.integers(len(DEGRADATIONS)))]
            X.append(row(degrade(img, face, k, rng), face))
            kinds.append(k)
        if log_every and (i + 1) % log_every == 0:
            print(f"{i + 1}/{len(paths)} photos, {time.time() - t0:.0f} s", flush=True)
    return np.stack(X), np.array(ok), kinds


def targets(X: np.ndarray, people: list[str], kinds: list[str]) -> np.ndarray:
    """Distance of each row's embedding to the mean of the person's other clean photos' embeddings."""
    emb = X[:, :EMBEDDING_DIM].astype(np.float64)
    clean = np.array([k == "clean" for k in kinds])
    by: dict[str, list[int]] = defaultdict(list)
    for i, (p, c) in enumerate(zip(people, clean)):
        if c:
            by[p].append(i)
    # each degraded row follows its clean row: it excludes that clean row too
    src = np.zeros(len(X), int)
    last = -1
    for i, c in enumerate(clean):
        if c:
            last = i
        src[i] = last
    y = np.zeros(len(X))
    for i in range(len(X)):
        others = [j for j in by[people[i]] if j != src[i]]
        y[i] = np.linalg.norm(emb[i] - emb[others].mean(axis=0)) if others else np.nan
    return y


def train_mlp(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, seed: int = 0, epochs: int = 300, hidden: int = 32):
    """A 1-hidden-layer MLP (inputs standardised inside) fitted with Adam; early stopping on a person-disjoint 15 %."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    val_people = set(rng.choice(uniq, size=max(1, int(0.15 * len(uniq))), replace=False).tolist())
    va = np.array([g in val_people for g in groups])
    mu, sd = X[~va].mean(0), X[~va].std(0) + 1e-6

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
            self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
            self.body = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(hidden, 1))

        def forward(self, x):
            return self.body((x - self.mu) / self.sd)[:, 0]

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-3)
    xt, yt = torch.tensor(X[~va]), torch.tensor(y[~va], dtype=torch.float32)
    xv, yv = torch.tensor(X[va]), torch.tensor(y[va], dtype=torch.float32)
    best, best_state, best_ep = float("inf"), None, 0
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for b in range(0, len(xt), 256):
            idx = perm[b:b + 256]
            opt.zero_grad()
            loss = torch.nn.functional.smooth_l1_loss(net(xt[idx]), yt[idx], beta=0.1)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            v = float(torch.nn.functional.l1_loss(net(xv), yv))
        if v < best:
            best, best_ep = v, ep
            best_state = {k: t.clone() for k, t in net.state_dict().items()}
        if ep - best_ep > 40:
            break
    net.load_state_dict(best_state)
    net.eval()
    return net, {"val_mae": best, "best_epoch": best_ep, "train_rows": int((~va).sum()), "val_rows": int(va.sum()), "val_people": len(val_people)}


def export(net, path: str | os.PathLike[str], n_in: int, meta: dict[str, str]) -> None:
    import torch

    torch.onnx.export(
        net, torch.zeros(1, n_in), str(path), input_names=["features"], output_names=["distance"],
        dynamic_axes={"features": {0: "n"}, "distance": {0: "n"}}, opset_version=17, dynamo=False,
    )
    set_metadata(path, meta)


def feature_ranges(X: np.ndarray, features: tuple[str, ...] = FEATURES) -> dict[str, str]:
    """ONNX metadata: min and max of each hand-made feature the model reads over the training rows (inputs are clipped into them)."""
    f = X[:, feature_columns(features)]
    hi = f.max(0)
    if "log_size" in features:
        # LFW's deep-funneled photos all show the face at one scale, so size carries no signal in training (a
        # degraded copy keeps its clean box) and the MLP reads large faces as bad: a face larger than the
        # median training face is read as the median one (the size part scores small faces)
        i = features.index("log_size")
        hi[i] = np.median(f[:, i])
    return {"feature_min": json.dumps([round(float(v), 4) for v in f.min(0)]), "feature_max": json.dumps([round(float(v), 4) for v in hi])}


def set_metadata(path: str | os.PathLike[str], meta: dict[str, str]) -> None:
    """Add or replace metadata entries of an ONNX file in place."""
    import onnx

    m = onnx.load(str(path))
    old = {p.key: p.value for p in m.metadata_props if p.key not in meta}
    del m.metadata_props[:]
    for k, v in {**old, **meta}.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, str(path))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", default="../shared/data/lfw")
    ap.add_argument("--out", default="runs/quality")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="at most this many photos (a quick run)")
    ap.add_argument("--no-embedding", action="store_true", help="read only the hand-made features, not the embedding")
    ap.add_argument("--drop", default="", help="comma-separated FEATURES the model does not read (e.g. log_size)")
    ap.add_argument("--ranges-only", metavar="ONNX", default=None, help="only write the feature ranges of --out's cached features into this model")
    a = ap.parse_args(argv)
    root = Path(a.lfw)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    test_people = pair_people(root / "pairsDevTest.txt")
    photos: dict[str, list[str]] = defaultdict(list)
    for p in sorted((root / "lfw-deepfunneled").glob("*/*.jpg")):
        photos[p.parent.name].append(str(p))
    people = sorted(n for n, ps in photos.items() if n not in test_people and len(ps) >= 2)
    paths = [p for n in people for p in photos[n]]
    if a.limit:
        paths = paths[: a.limit]
    print(f"{len(people)} training people (none in pairsDevTest), {len(paths)} photos", flush=True)
    cache = out / "features.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        X, ok, kinds = z["X"], z["ok"], list(z["kinds"])
    else:
        X, ok, kinds = extract(paths, degraded=True, seed=a.seed)
        np.savez(cache, X=X, ok=ok, kinds=np.array(kinds))
    kept = [p for p, o in zip(paths, ok) if o]
    row_people = []
    for p in kept:
        row_people += [Path(p).parent.name] * 2
    y = targets(X, row_people, kinds)
    good = ~np.isnan(y)
    X, y, groups = X[good], y[good], np.array(row_people)[good]
    # every row again as a detector without keypoints (e.g. HOG) gives it: pose features 0, has_pose 0, score 1
    nopose = X.copy()
    pose_cols = feature_columns(("abs_yaw", "abs_pitch", "abs_roll", "has_pose"))
    nopose[:, pose_cols] = 0.0
    nopose[:, feature_columns(("detector_score",))] = 1.0
    X, y, groups = np.concatenate([X, nopose]), np.concatenate([y, y]), np.concatenate([groups, groups])
    if a.ranges_only:
        set_metadata(a.ranges_only, feature_ranges(X))
        print(f"feature ranges of {len(X)} rows written into {a.ranges_only}")
        return
    kinds = [k for k, g in zip(kinds, good) if g] * 2
    dropped = {d.strip() for d in a.drop.split(",") if d.strip()}
    if dropped - set(FEATURES):
        ap.error(f"--drop: unknown feature(s) {', '.join(sorted(dropped - set(FEATURES)))}")
    features = tuple(n for n in FEATURES if n not in dropped)
    cols = feature_columns(features, embedding=not a.no_embedding)
    net, info = train_mlp(X[:, cols].astype(np.float32), y.astype(np.float32), groups, seed=a.seed)
    import torch

    with torch.no_grad():  # the score's ends from the model's own predictions (they are narrower than the targets)
        pred = net(torch.tensor(X[:, cols].astype(np.float32))).numpy()
    clean = np.array(kinds) == "clean"
    d_good, d_bad = float(np.percentile(pred[clean], 5)), float(np.percentile(pred, 95))
    meta = {"d_good": f"{d_good:.4f}", "d_bad": f"{d_bad:.4f}", "embedder": "" if a.no_embedding else QUALITY_EMBEDDER, "features": json.dumps(list(features)),
            "trained_on": "LFW View 1 people not in pairsDevTest.txt", **feature_ranges(X, features)}
    export(net, out / "quality_mlp.onnx", len(cols), meta)
    info.update(meta, photos=len(paths), rows=len(X), people=len(people))
    (out / "train.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
