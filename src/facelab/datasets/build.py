"""``build_dataset(raw, out)``: raw photos (one folder per person) -> a clean, split face dataset.

Per image (in worker processes with ``workers > 1``, cached so re-runs skip it):

1. load (EXIF-upright); unreadable files are rejected (``unreadable``);
2. detect at any angle (``rotate="on"``: the photo turned by quarter turns and
   finer steps, each face kept from the view where it is most upright, its roll
   measured, so a tilted, sideways or upside-down face is cut out straight;
   ``"auto"`` searches only when the upright pass finds nothing or a turned
   face; ``"off"`` never turns); nothing -> rejected (``no_face``, listed in
   ``unrecognized.txt``);
3. keep ONE face: the largest (``choose="largest"``, default) or the one
   nearest the image centre (``choose="central"``); the rule used for each
   image is written in the report (``only face``, ``largest of 3``...);
4. align it with dlib's 5 points to a ``size`` chip (``padding`` around the
   face, :func:`facelab.align.align`), compute its sharpness, perceptual
   hash and embedding (:mod:`facelab.datasets.filters`).

Then, over the whole set (cheap, recomputed every run, so thresholds can change
without re-detecting): too small (face box side < ``min_size`` px), too blurry,
exact duplicates (same file bytes) and near duplicates (perceptual hash within
``dup_bits`` bits of an earlier image, in path order), and **outliers**: faces
far from their person's robust centre, moved to ``review/<person>/`` instead
of the split.  The kept faces are split per person (stratified) with a fixed
seed into ``train/ val/ test/<person>/``; ``manifest.csv`` lists them;
``report.json`` has the counts per person and reason and every image's record;
``contact/<person>.html|png`` are contact sheets.

Idempotent and resumable: the per-image work is cached in ``.facelab-cache/``
(keyed by path, size, mtime and the settings that affect it); files in the
output folders are only rewritten when they change, and files that no longer
belong there are removed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..models import sha256_file
from ..progress import track
from ..types import Face
from .filters import BLUR_THRESHOLD, DUPLICATE_BITS, OUTLIER_THRESHOLD, phash, robust_outliers, sharpness
from .records import ImageRecord, cache_file

SPLITS = ("train", "val", "test")
MANAGED = (*SPLITS, "review")


@dataclass(frozen=True)
class BuildOptions:
    """Settings of a build.  The first group changes the per-image work (and its cache key)."""

    size: int = 256
    padding: float = 0.25
    detector: str = "hog"
    min_face: int = 40  # smallest face the detector looks for (px)
    choose: str = "largest"  # or "central"
    embedder: str = "dlib"
    image_format: str = "jpg"
    rotate: Any = "on"  # "off"/False, "auto", "on"/True, "full" (facelab.detect.detect's rotate)
    # decisions over the whole set (recomputed every run)
    min_size: int = 48  # faces whose box side is smaller are rejected
    blur: float = BLUR_THRESHOLD
    min_quality: float | None = None  # faces whose facelab.quality score is lower are rejected ("low_quality")
    dup_bits: int = DUPLICATE_BITS
    outlier: float = OUTLIER_THRESHOLD
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0

    def __post_init__(self) -> None:
        from ..detect import rotate_mode

        try:
            mode = rotate_mode(self.rotate)
        except ValueError:
            mode = None
        if not isinstance(mode, str):
            raise InputError(f"rotate must be 'off', 'auto', 'on' or 'full', not {self.rotate!r}")
        object.__setattr__(self, "rotate", mode)  # frozen: store the normalised value
        if self.choose not in ("largest", "central"):
            raise InputError(f"choose must be 'largest' or 'central', not {self.choose!r}")
        if self.image_format not in ("jpg", "png"):
            raise InputError(f"image format must be jpg or png, not {self.image_format!r}")
        if len(self.split) != 3 or any(s < 0 for s in self.split) or abs(sum(self.split) - 1.0) > 1e-6:
            raise InputError(f"split must be three non-negative fractions adding up to 1 (train,val,test), got {self.split}")
        if self.size < 32:
            raise InputError(f"size must be at least 32 px, got {self.size}")

    def fingerprint(self) -> str:
        key = (self.size, self.padding, self.detector, self.min_face, self.choose, self.embedder, self.image_format, self.rotate, 1)
        return hashlib.sha1(repr(key).encode()).hexdigest()[:12]


@dataclass
class BuildSummary:
    out: str
    options: dict[str, Any]
    totals: dict[str, int]
    reasons: dict[str, int]
    per_person: dict[str, dict[str, Any]]
    unrecognized: list[str]
    images: list[ImageRecord]
    processed: int  # images whose per-image work ran in this call (0 on a re-run)

    def to_dict(self, images: bool = True) -> dict[str, Any]:
        d = {
            "out": self.out,
            "options": self.options,
            "totals": self.totals,
            "reasons": self.reasons,
            "per_person": self.per_person,
            "unrecognized": self.unrecognized,
            "processed": self.processed,
        }
        if images:
            d["images"] = [r.to_dict() for r in self.images]
        return d

    def by_status(self, status: str) -> set[str]:
        return {r.source for r in self.images if r.status == status}


# --- per-image work (runs in workers) ---------------------------------------------------


@dataclass
class DetectJob:
    """Detect (with the rotation sweep) and pick one face; returns [chosen, *others], chosen embedded."""

    detector: str = "hog"
    min_face: int = 40
    choose: str = "largest"
    embedder: str = "dlib"
    rotate: str = "on"

    def prepare(self) -> None:
        from ..detect import get_detector
        from ..embed import get_embedder

        get_detector(self.detector, min_face=self.min_face).prepare()
        get_embedder(self.embedder).prepare()

    def __call__(self, image: np.ndarray) -> list[Face]:
        from ..detect import detect
        from ..embed import get_embedder

        faces = detect(image, self.detector, rotate=self.rotate, min_face=self.min_face)
        if not faces:
            return []
        faces = sorted(faces, key=lambda f: -f.box.area) if self.choose == "largest" else sorted(faces, key=lambda f: _off_centre(f, image))
        chosen = faces[0]
        chosen.embedding = get_embedder(self.embedder).embed(image, [chosen])[0]
        return faces


def _off_centre(face: Face, image: np.ndarray) -> float:
    h, w = image.shape[:2]
    cx, cy = face.box.center
    return float(np.hypot((cx - w / 2) / w, (cy - h / 2) / h))


@dataclass
class ChipWriter:
    """After detection (in the worker): write the aligned chip and the image's cache record."""

    raw: str
    out: str
    options: BuildOptions

    def __call__(self, image: np.ndarray, result) -> None:
        rec = _new_record(self.raw, result.source)
        rec.faces_found = len(result.faces)
        if result.faces:
            from ..align import align
            from ..draw import save_image

            f = result.faces[0]
            rule = "largest" if self.options.choose == "largest" else "most central"
            rec.rule = "only face" if len(result.faces) == 1 else f"{rule} of {len(result.faces)}"
            rec.rotation = round(float(f.rotation), 2)
            rec.box = f.box.to_dict()
            rec.face_px = round(float(min(f.box.width, f.box.height)), 1)
            try:
                chip = align(image, f, self.options.size, self.options.padding, "dlib")
            except Exception as e:  # a face dlib cannot align must not stop the whole build
                rec.reason, rec.detail = "unreadable", f"alignment failed: {e}"
                _save_record(self.raw, self.out, rec, self.options)
                return
            rec.chip = os.path.relpath(save_image(chip, cache_file(self.out, rec.source, "chips", self.options.image_format), quality=95), self.out)
            rec.sharpness = round(sharpness(chip), 2)
            from ..quality import assess

            rec.quality = round(assess(image, f).score, 4)
            rec.phash = phash(chip)
            rec.embedding = [round(float(v), 6) for v in f.embedding.vector] if f.embedding is not None else None
        else:
            _write_thumb(image, cache_file(self.out, rec.source, "thumbs", "jpg"))
        _save_record(self.raw, self.out, rec, self.options)


def _new_record(raw: str, source: str) -> ImageRecord:
    rel = os.path.relpath(source, raw)
    person = rel.split(os.sep)[0]
    return ImageRecord(source=rel, person=person, sha256=sha256_file(source))


def _stamp(raw: str, rel: str, options: BuildOptions) -> str:
    st = os.stat(os.path.join(raw, rel))
    return f"{st.st_size}:{st.st_mtime_ns}:{options.fingerprint()}"


def _save_record(raw: str, out: str, rec: ImageRecord, options: BuildOptions) -> None:
    path = cache_file(out, rec.source, "records", "json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"stamp": _stamp(raw, rec.source, options), "record": asdict(rec)}, f)
    os.replace(tmp, path)  # a run stopped half-way never leaves a half-written record


def _load_record(raw: str, out: str, rel: str, options: BuildOptions) -> ImageRecord | None:
    path = cache_file(out, rel, "records", "json")
    try:
        with open(path) as f:
            d = json.load(f)
        if d.get("stamp") != _stamp(raw, rel, options):
            return None
        rec = ImageRecord(**d["record"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if rec.chip and not os.path.isfile(os.path.join(out, rec.chip)):
        return None
    return rec


def _write_thumb(image: np.ndarray, path: str, side: int = 160) -> None:
    import cv2

    from ..draw import save_image

    h, w = image.shape[:2]
    s = side / max(h, w)
    save_image(cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA), path, quality=85)


# --- the build --------------------------------------------------------------------------


def list_raw(raw: str | os.PathLike[str], limit_per_person: int | None = None) -> list[str]:
    """Image paths of a raw folder: ``raw/<person>/**`` (images directly in ``raw`` are not assigned to anyone);
    ``limit_per_person``: the first N of each person."""
    from ..io import iter_image_paths

    root = Path(raw)
    if not root.is_dir():
        raise InputError("not a folder (expected one sub-folder of photos per person)", source=str(raw))
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not people:
        raise InputError("no person sub-folders (expected RAW/<person>/<photos>)", source=str(raw))
    return [p for d in people for p in list(iter_image_paths(d))[:limit_per_person]]


def build_dataset(
    raw: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: BuildOptions | None = None,
    *,
    workers: int = 1,
    progress: bool = False,
    limit_per_person: int | None = None,
) -> BuildSummary:
    """Build (or update) the dataset in ``out`` from ``raw``; see the module docstring.  ``limit_per_person``:
    only the first N photos of each person (a quick try)."""
    from ..runner import run_many

    opts = options or BuildOptions()
    raw_s, out_s = os.path.abspath(raw), os.path.abspath(out)
    if out_s == raw_s or out_s.startswith(raw_s + os.sep):
        raise InputError("the output folder must not be inside the raw folder", source=str(out))
    sources = list_raw(raw_s, limit_per_person)
    if not sources:
        raise InputError("no images in the person folders", source=str(raw))
    os.makedirs(out_s, exist_ok=True)

    records: dict[str, ImageRecord] = {}
    todo = []
    for s in sources:
        rel = os.path.relpath(s, raw_s)
        rec = _load_record(raw_s, out_s, rel, opts)
        if rec is None:
            todo.append(s)
        else:
            records[rel] = rec
    if todo:
        job = DetectJob(opts.detector, opts.min_face, opts.choose, opts.embedder, opts.rotate)
        writer = ChipWriter(raw_s, out_s, opts)
        results = run_many(job, todo, workers=workers, post=writer)
        for r in track(results, len(todo), "detecting faces", progress):
            rel = os.path.relpath(r.source, raw_s)
            if r.ok:
                rec = _load_record(raw_s, out_s, rel, opts)
            else:  # unreadable: cache the reason so a re-run does not try again
                rec = _new_record(raw_s, r.source)
                rec.reason, rec.detail = "unreadable", r.error or ""
                _save_record(raw_s, out_s, rec, opts)
            if rec is None:  # post failed to write (e.g. the chip step raised)
                rec = _new_record(raw_s, r.source)
                rec.reason, rec.detail = "unreadable", r.error or "processing failed"
            records[rel] = rec

    recs = [records[os.path.relpath(s, raw_s)] for s in sources]  # path order: decides which duplicate is kept
    decide(recs, opts)
    assign_splits(recs, opts)
    write_outputs(recs, out_s, opts)
    summary = summarize(recs, out_s, opts, processed=len(todo))
    _write_json(os.path.join(out_s, "report.json"), summary.to_dict())
    with open(os.path.join(out_s, "unrecognized.txt"), "w") as f:
        f.write("".join(u + "\n" for u in summary.unrecognized))
    from .contact import contact_sheets

    contact_sheets(recs, out_s, raw_s)
    return summary


def decide(recs: list[ImageRecord], opts: BuildOptions) -> None:
    """Set status/reason of every record (per-image filters, duplicates, then outliers per person)."""
    for r in recs:  # reset what a previous run decided; keep what the per-image work found
        r.status, r.duplicate_of, r.outlier_distance, r.split, r.file = "rejected", None, None, None, None
        if r.reason != "unreadable":
            r.reason, r.detail = "", ""
    for r in recs:
        if r.reason == "unreadable":
            continue
        if not r.faces_found or r.chip is None:
            r.reason = "no_face"
        elif r.face_px < opts.min_size:
            r.reason, r.detail = "too_small", f"face {r.face_px:.0f} px < {opts.min_size} px"
        elif r.sharpness is not None and r.sharpness < opts.blur:
            r.reason, r.detail = "blurry", f"sharpness {r.sharpness:.1f} < {opts.blur:g}"
        elif opts.min_quality is not None and r.quality is not None and r.quality < opts.min_quality:
            r.reason, r.detail = "low_quality", f"face quality {r.quality:.2f} < {opts.min_quality:g}"
    seen_sha: dict[str, str] = {}
    kept_hashes: list[int] = []
    kept_names: list[str] = []
    for r in recs:
        if r.reason:
            continue
        if r.sha256 in seen_sha:
            r.reason, r.duplicate_of = "duplicate", seen_sha[r.sha256]
            continue
        seen_sha[r.sha256] = r.source
        h = int(r.phash or "0", 16)
        if kept_hashes:
            dist = _popcount(np.array(kept_hashes, dtype=np.uint64) ^ np.uint64(h))
            j = int(np.argmin(dist))
            if dist[j] <= opts.dup_bits:
                r.reason, r.duplicate_of, r.detail = "near_duplicate", kept_names[j], f"{int(dist[j])} bits from it"
                continue
        kept_hashes.append(h)
        kept_names.append(r.source)
    by_person: dict[str, list[ImageRecord]] = {}
    for r in recs:
        if not r.reason:
            by_person.setdefault(r.person, []).append(r)
    for group in by_person.values():
        vecs = [r.embedding for r in group]
        if any(v is None for v in vecs):
            continue
        d, out = robust_outliers(np.array(vecs), opts.outlier)
        for r, dist, o in zip(group, d, out):
            r.outlier_distance = round(float(dist), 4)
            if o:
                r.status, r.reason, r.detail = "review", "outlier", f"{dist:.3f} from the person's centre > {opts.outlier:g}"
            else:
                r.status = "kept"


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """(train, val, test) sizes for ``n`` faces of one person; train gets at least one face."""
    val = int(round(n * fractions[1]))
    test = int(round(n * fractions[2]))
    while n and val + test > n - 1 and (val or test):
        if test >= val and test:
            test -= 1
        else:
            val -= 1
    return n - val - test, val, test


def assign_splits(recs: list[ImageRecord], opts: BuildOptions) -> None:
    """Stratified split: each person's kept faces shuffled with a seed of (seed, person), cut by the fractions."""
    by_person: dict[str, list[ImageRecord]] = {}
    for r in recs:
        if r.status == "kept":
            by_person.setdefault(r.person, []).append(r)
    for person, group in sorted(by_person.items()):
        group = sorted(group, key=lambda r: r.source)
        rng = np.random.default_rng([opts.seed, zlib.crc32(person.encode("utf-8"))])
        order = rng.permutation(len(group))
        n_train, n_val, _ = split_counts(len(group), opts.split)
        for rank, i in enumerate(order):
            group[i].split = "train" if rank < n_train else ("val" if rank < n_train + n_val else "test")


def _out_name(r: ImageRecord, used: set[str], ext: str) -> str:
    rel = os.path.relpath(r.source, r.person)
    stem = os.path.splitext(rel)[0].replace(os.sep, "__")
    name, i = f"{stem}.{ext}", 1
    while name in used:
        i += 1
        name = f"{stem}-{i}.{ext}"
    used.add(name)
    return name


def write_outputs(recs: list[ImageRecord], out: str, opts: BuildOptions) -> None:
    """Make the split and review folders hold exactly the chips they should (links or copies), and write the manifest."""
    wanted: dict[str, str] = {}
    used: dict[str, set[str]] = {}
    for r in recs:
        if r.status not in ("kept", "review") or r.chip is None:
            continue
        folder = r.split if r.status == "kept" else "review"
        name = _out_name(r, used.setdefault(r.person, set()), opts.image_format)
        r.file = os.path.join(folder, r.person, name)
        wanted[r.file] = os.path.join(out, r.chip)
    for top in MANAGED:  # remove what no longer belongs (only inside the folders this build manages)
        base = os.path.join(out, top)
        for root, _dirs, files in os.walk(base, topdown=False):
            for fn in files:
                rel = os.path.relpath(os.path.join(root, fn), out)
                if rel not in wanted:
                    os.remove(os.path.join(root, fn))
            if root != base and not os.listdir(root):
                os.rmdir(root)
    for rel, src in wanted.items():
        dst = os.path.join(out, rel)
        if os.path.exists(dst) and _same_file(src, dst):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.exists(dst):
            os.remove(dst)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    rows = sorted((r for r in recs if r.file), key=lambda r: (r.status != "kept", r.split or "", r.file or ""))
    tmp = os.path.join(out, "manifest.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["split", "person", "file", "source", "rule", "rotation", "face_px", "sharpness", "outlier_distance"])
        for r in rows:
            w.writerow([r.split or "review", r.person, r.file, r.source, r.rule, r.rotation, r.face_px, r.sharpness, r.outlier_distance])
    os.replace(tmp, os.path.join(out, "manifest.csv"))


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    if (sa.st_ino, sa.st_dev) == (sb.st_ino, sb.st_dev):
        return True
    if sa.st_size != sb.st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def summarize(recs: list[ImageRecord], out: str, opts: BuildOptions, processed: int) -> BuildSummary:
    totals = {"images": len(recs), "kept": 0, "review": 0, "rejected": 0}
    reasons: dict[str, int] = {}
    per: dict[str, dict[str, Any]] = {}
    for r in recs:
        totals[r.status] += 1
        p = per.setdefault(r.person, {"images": 0, "kept": 0, "review": 0, "rejected": 0, "reasons": {}, "split": dict.fromkeys(SPLITS, 0)})
        p["images"] += 1
        p[r.status] += 1
        if r.reason:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
            p["reasons"][r.reason] = p["reasons"].get(r.reason, 0) + 1
        if r.split:
            p["split"][r.split] += 1
    options = asdict(opts)
    options["split"] = list(opts.split)
    unrec = [r.source for r in recs if r.reason == "no_face"]
    return BuildSummary(out, options, totals, dict(sorted(reasons.items())), dict(sorted(per.items())), unrec, recs, processed)


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


__all__ = ["BuildOptions", "BuildSummary", "ChipWriter", "DetectJob", "ImageRecord", "assign_splits", "build_dataset", "decide", "list_raw", "split_counts"]
