"""The 468-point face mesh vs dlib's 68-point predictor, scored on the same 68 iBUG points.

On ``../shared/data/keypoints68`` (YouTube Faces frames with 68 annotated
points), for the "eval" half (odd rows of ``keypoints.csv``, or ``--limit N`` of
them):

* ``dlib68``: dlib's HOG detector (upsample 1) and its 68-point shape predictor;
* ``mesh468``: BlazeFace full range, then MediaPipe's face mesh, mapped to 68
  points with :data:`facelab.landmarks.mesh468.MESH_TO_68`;
* ``mesh468@hog``: the mesh started from dlib's HOG box (no keypoints), so both
  models see the same faces.

NME = mean point error / outer-eye-corner distance (300-W).  Scores are given
on the frames where every method found the face (``common``), plus each
method's miss rate.  ``--fit`` first re-chooses the mesh -> 68 mapping on the
"fit" half (even rows) and prints it (paste it into ``mesh468.py``).

Usage: python benchmarks/landmarks_mesh.py [--limit N] [--fit] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.detect import get_detector  # noqa: E402
from facelab.evaluate.keypoints68 import face_of, nme, read_keypoints68  # noqa: E402
from facelab.io import load_image  # noqa: E402
from facelab.landmarks import get_landmarker  # noqa: E402
from facelab.landmarks.mesh468 import MESH_TO_68, mesh_to_68  # noqa: E402


def run(frames, progress_label: str) -> dict[str, list]:
    """Per frame: the 68 points of each method (None when its detector missed the face)."""
    from rich.progress import Progress

    hog, bf = get_detector("hog", upsample=1), get_detector("blazeface")
    sp68, mesh = get_landmarker("dlib68"), get_landmarker("mesh468")
    out: dict[str, list] = {"dlib68": [], "mesh468": [], "mesh468@hog": [], "mesh_raw": [], "mesh_raw_hog": [], "times": []}
    with Progress() as prog:
        task = prog.add_task(progress_label, total=len(frames))
        for fr in frames:
            img = load_image(fr.image)
            fh = face_of(hog.detect(img), fr.points)
            fb = face_of(bf.detect(img), fr.points)
            t = time.perf_counter()
            out["dlib68"].append(None if fh is None else sp68.predict(img, [fh])[0].points)
            t1 = time.perf_counter()
            raw = None if fb is None else mesh.predict(img, [fb])[0].points
            t2 = time.perf_counter()
            out["mesh_raw"].append(raw)
            out["mesh468"].append(None if raw is None else mesh_to_68(raw))
            raw_hog = None if fh is None else mesh.predict(img, [fh])[0].points
            out["mesh_raw_hog"].append(raw_hog)
            out["mesh468@hog"].append(None if raw_hog is None else mesh_to_68(raw_hog))
            out["times"].append((t1 - t, t2 - t1))
            prog.advance(task)
    return out


def fit_mapping(meshes: list[np.ndarray], gts: list[np.ndarray], top: int = 12) -> list[tuple[int, ...]]:
    """For each of the 68 points: the mesh vertex, or mean of two, with the lowest mean normalised error."""
    M = np.stack([m[:, :2] for m in meshes])  # (F, 468, 2)
    G = np.stack(gts)  # (F, 68, 2)
    iod = np.linalg.norm(G[:, 36] - G[:, 45], axis=1)[:, None]
    mapping = []
    for k in range(68):
        err1 = (np.linalg.norm(M - G[:, k][:, None], axis=2) / iod).mean(0)  # (468,)
        cands = np.argsort(err1)[:top]
        best, best_e = (int(cands[0]),), float(err1[cands[0]])
        for i in range(top):
            for j in range(i + 1, top):
                p = (M[:, cands[i]] + M[:, cands[j]]) / 2
                e = float((np.linalg.norm(p - G[:, k], axis=1) / iod[:, 0]).mean())
                if e < best_e - 1e-4:
                    best, best_e = tuple(sorted((int(cands[i]), int(cands[j])))), e
        mapping.append(best)
    return mapping


def score(results: dict[str, list], gts: list[np.ndarray], names: list[str]) -> dict:
    n = len(gts)
    common = [i for i in range(n) if all(results[m][i] is not None for m in names)]
    rep: dict = {"frames": n, "common": len(common), "methods": {}}
    for m in names:
        found = [i for i in range(n) if results[m][i] is not None]
        e_all = [nme(results[m][i], gts[i]) for i in found]
        e_com = [nme(results[m][i], gts[i]) for i in common]
        rep["methods"][m] = {
            "found": len(found),
            "miss_rate": round(1 - len(found) / max(1, n), 4),
            "nme_common": round(float(np.mean(e_com)), 4) if e_com else None,
            "nme_common_median": round(float(np.median(e_com)), 4) if e_com else None,
            "nme_found": round(float(np.mean(e_all)), 4) if e_all else None,
        }
    return rep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FACELAB_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--limit", type=int, default=0, help="use only the first N frames of each half")
    ap.add_argument("--fit", action="store_true", help="re-choose the mesh -> 68 mapping on the fit half first")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "landmarks_mesh.json"))
    args = ap.parse_args()
    root = Path(args.data) / "keypoints68"
    mapping = MESH_TO_68
    fit_info = None
    if args.fit:
        fit = read_keypoints68(root, "fit")[: args.limit or None]
        res = run(fit, "fit half")
        ok = [i for i, m in enumerate(res["mesh_raw"]) if m is not None]
        mapping = fit_mapping([res["mesh_raw"][i] for i in ok], [fit[i].points for i in ok])
        print("MESH_TO_68 =", mapping)
        fit_info = {"frames": len(fit), "used": len(ok)}
    ev = read_keypoints68(root, "eval")[: args.limit or None]
    res = run(ev, "eval half")
    if args.fit:
        res["mesh468"] = [None if m is None else mesh_to_68(m, mapping) for m in res["mesh_raw"]]
        res["mesh468@hog"] = [None if m is None else mesh_to_68(m, mapping) for m in res["mesh_raw_hog"]]
    names = ["dlib68", "mesh468", "mesh468@hog"]
    rep = score(res, [f.points for f in ev], names)
    t = np.array(res["times"])
    rep["ms_per_face"] = {"dlib68": round(float(np.median(t[:, 0])) * 1000, 2), "mesh468": round(float(np.median(t[:, 1])) * 1000, 2)}
    rep["fit"] = fit_info
    rep["mapping"] = [list(m) for m in mapping]
    print(f"\nkeypoints68 eval half: {rep['frames']} frames, {rep['common']} where every method found the face\n")
    print(f"{'method':14s} {'NME (common)':>13s} {'median':>8s} {'NME (found)':>12s} {'miss rate':>10s}")
    for m in names:
        r = rep["methods"][m]
        print(f"{m:14s} {r['nme_common']:>13.4f} {r['nme_common_median']:>8.4f} {r['nme_found']:>12.4f} {r['miss_rate']:>10.3f}")
    print(f"\nms per face (landmarks only, median): dlib68 {rep['ms_per_face']['dlib68']}, mesh468 {rep['ms_per_face']['mesh468']}")
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(rep, indent=2))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
