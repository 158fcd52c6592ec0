"""Does face quality predict recognition errors?  Error-versus-discard curves on LFW View 1 DevTest.

For the 1,000 pairs of pairsDevTest.txt (500 same, 500 different people; no person in them was used to
train the learned score): each image's face (default detector, central face), its dlib embedding and its
quality.  The threshold is fixed at a false-match rate of FMR (default 1 %) over all pairs; then the
lowest-quality x % of images are discarded (a pair goes when either image goes) and the false non-match
rate of the remaining same-person pairs is plotted against x.  Orders compared: the learned score, each
part alone (sharpness, exposure, size, pose), the product of the parts, and random (mean of 50 orders).

    python benchmarks/quality.py --lfw ../shared/data/lfw
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.evaluate.verification import lfw_image_path  # noqa: E402
from facelab.io import load_image  # noqa: E402
from facelab.quality import QualityModel, measure, to_quality  # noqa: E402
from facelab.quality.train import face_of, row  # noqa: E402

PARTS = ("learned", "sharpness", "exposure", "size", "pose", "parts_product", "random")
DISCARD = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def read_pairs(path: Path, root: Path) -> list[tuple[str, str, bool]]:
    out = []
    for line in path.read_text().splitlines()[1:]:
        p = line.split()
        if len(p) == 3:
            out.append((lfw_image_path(root, p[0], int(p[1])), lfw_image_path(root, p[0], int(p[2])), True))
        elif len(p) == 4:
            out.append((lfw_image_path(root, p[0], int(p[1])), lfw_image_path(root, p[2], int(p[3])), False))
    return out


def image_rows(paths: list[str], model: QualityModel) -> dict[str, dict]:
    """Per image: embedding and each quality part (None when no face was found)."""
    out: dict[str, dict] = {}
    t0 = time.time()
    for i, p in enumerate(paths):
        img = load_image(p)
        face = face_of(img)
        if face is None:
            out[p] = None
            continue
        x = row(img, face)
        learned = float(model.score(model.predict_distance(x[None]))[0])
        q = to_quality(face, measure(img, face), learned)
        out[p] = {
            "emb": x[:128], "learned": learned, "sharpness": q.sharpness, "exposure": q.exposure, "size": q.size,
            "pose": q.pose if q.pose is not None else 0.0, "parts_product": q.sharpness * q.exposure * q.size * (q.pose if q.pose is not None else 1.0),
        }
        if (i + 1) % 200 == 0:
            print(f"{i + 1}/{len(paths)} images, {time.time() - t0:.0f} s", flush=True)
    return out


def edc(pairs, rows, order: dict[str, float], threshold: float) -> list[float]:
    """FNMR of the kept same-person pairs after discarding the lowest-quality x % of images, for x in DISCARD."""
    imgs = sorted(rows, key=lambda p: order[p])
    out = []
    for x in DISCARD:
        gone = set(imgs[: int(round(x * len(imgs)))])
        gen = [(a, b) for a, b, same in pairs if same and a not in gone and b not in gone]
        miss = sum(1 for a, b in gen if dist(rows, a, b) > threshold)
        out.append(miss / len(gen) if gen else float("nan"))
    return out


def dist(rows, a, b) -> float:
    if rows[a] is None or rows[b] is None:
        return float("inf")
    return float(np.linalg.norm(rows[a]["emb"] - rows[b]["emb"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=str(ROOT.parent / "shared" / "data" / "lfw"))
    ap.add_argument("--model", default=None, help="a quality .onnx to measure instead of the shipped one")
    ap.add_argument("--fmr", type=float, default=0.01)
    ap.add_argument("--cache", default=None, help="an .npz to keep per-image rows in (re-runs skip detection)")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    ap.add_argument("--plot", default=str(ROOT / "docs" / "quality_edc.png"))
    a = ap.parse_args()
    root = Path(a.lfw)
    pairs = read_pairs(root / "pairsDevTest.txt", root / "lfw-deepfunneled")
    paths = sorted({p for a_, b, _ in pairs for p in (a_, b)})
    model = QualityModel(path=a.model)
    rows = image_rows(paths, model)
    # threshold at the asked FMR over all different-person pairs
    imp = np.sort([dist(rows, x, y) for x, y, same in pairs if not same])
    thr = float(imp[max(0, int(np.floor(a.fmr * len(imp))) - 1)]) if a.fmr > 0 else float(imp[0])
    fmr = float((imp <= thr).mean())
    curves: dict[str, list[float]] = {}
    for part in PARTS[:-1]:
        order = {p: (r[part] if r is not None else -1.0) for p, r in rows.items()}
        curves[part] = edc(pairs, rows, order, thr)
    rng = np.random.default_rng(0)
    rand = []
    for _ in range(50):
        order = {p: (float(rng.random()) if r is not None else -1.0) for p, r in rows.items()}
        rand.append(edc(pairs, rows, order, thr))
    curves["random"] = list(np.mean(rand, axis=0))
    print(f"threshold {thr:.4f} (FMR {fmr:.3f} over {len(imp)} different-person pairs); {sum(r is None for r in rows.values())} of {len(rows)} images without a face")
    print(f"{'discarded':>9s} " + " ".join(f"{p:>13s}" for p in PARTS))
    for i, x in enumerate(DISCARD):
        print(f"{x:9.0%} " + " ".join(f"{curves[p][i]:13.4f}" for p in PARTS))
    beats = {
        f"{int(x * 100)}%": all(curves["learned"][DISCARD.index(x)] < curves[p][DISCARD.index(x)] for p in PARTS if p != "learned")
        for x in (0.1, 0.2)
    }
    print("learned beats every part and random at:", beats)
    out = {
        "benchmark": "quality",
        "data": "LFW View 1 pairsDevTest (500 same + 500 different pairs); learned score trained on other people",
        "fmr_target": a.fmr, "threshold": round(thr, 4), "fmr": round(fmr, 4),
        "images": len(rows), "no_face": sum(r is None for r in rows.values()),
        "discarded": list(DISCARD), "fnmr": {k: [round(v, 4) for v in c] for k, c in curves.items()},
        "learned_beats_all_at": beats,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json_out).write_text(json.dumps(out, indent=2) + "\n")
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
        for p in PARTS:
            ax.plot([100 * x for x in DISCARD], curves[p], marker="o" if p == "learned" else None, lw=2.5 if p == "learned" else 1.2,
                    ls="--" if p == "random" else "-", label=p)
        ax.set_xlabel("images discarded, lowest quality first (%)")
        ax.set_ylabel(f"FNMR at FMR {fmr:.1%}")
        ax.set_title("Error versus discard, LFW View 1 DevTest (dlib embeddings)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
