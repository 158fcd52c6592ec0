"""Labelled data for attribute training and evaluation: JSON manifests, dataset importers, URL cache, chips.

A manifest is a JSON list of items ``{"image": "path or http(s) URL", "age": 31,
"gender": "female", "emotion": "happy", "ethnicity": "asian", "age_group": "25-32"}``;
every label may be missing on any item.  Relative paths are relative to the
manifest's folder.  Bad JSON, an item that is not an object, a missing
``image`` or an unknown label value raise :class:`ManifestError` naming the item.

Images given by URL are downloaded with :func:`facelab.io.fetch_url` (timeout,
size cap, retries) into an on-disk cache keyed by the URL's SHA-256; a failed
download or an undecodable image is reported and skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FacelabError, InputError
from .labels import TASKS, LabelError, normalize_label


class ManifestError(InputError):
    """A manifest cannot be read: bad JSON, a malformed item, an unknown label."""

    code = "bad_manifest"


@dataclass
class Item:
    """One labelled image: ``source`` is a path or URL; ``labels`` holds canonical values of the tasks it has."""

    source: str
    labels: dict[str, str | float] = field(default_factory=dict)
    name: str = ""  # "manifest.json item 3 (photo.jpg)", used in messages

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.source, **self.labels}


def _item_name(where: str, i: int, image: Any) -> str:
    return f"{where} item {i}" + (f" ({image})" if isinstance(image, str) else "")


def _declared_tasks(tasks: Any, where: str) -> dict[str, list[str]]:
    """The ``"tasks"`` header of a manifest: ``{task: [class, ...]}`` (your own label sets)."""
    if tasks is None:
        return {}
    if not isinstance(tasks, dict) or not all(isinstance(k, str) and k and k != "image" for k in tasks):
        raise ManifestError('"tasks" must map task names to lists of class names', source=where)
    out = {}
    for t, cl in tasks.items():
        if not isinstance(cl, list) or not cl or not all(isinstance(c, str) and c.strip() for c in cl) or len(set(cl)) != len(cl):
            raise ManifestError(f'"tasks": {t!r} needs a list of distinct, non-empty class names', source=where)
        out[t] = [c.strip() for c in cl]
    return out


def parse_manifest(
    data: Any, *, where: str = "manifest", base: Path | None = None, classes: dict[str, Sequence[str]] | None = None
) -> tuple[list[Item], dict[str, list[str]]]:
    """Validate the decoded JSON of a manifest: its items, and the task -> classes it declares (``{"tasks": ..., "items": [...]}``).

    Declared tasks may have any name and any class names (your own label sets);
    they override the fixed vocabularies of ``emotion``, ``gender``, ``ethnicity``.
    """
    declared: dict[str, list[str]] = {}
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        declared = _declared_tasks(data.get("tasks"), where)
        data = data["items"]
    vocab = {**declared, **{t: list(c) for t, c in (classes or {}).items() if c}}
    return parse_items(data, where=where, base=base, classes=vocab, tasks=[*TASKS, *vocab]), declared


def parse_items(
    data: Any, *, where: str = "manifest", base: Path | None = None, classes: dict[str, Sequence[str]] | None = None, tasks: Sequence[str] = TASKS
) -> list[Item]:
    """Validate the decoded JSON of a manifest; labels are normalised (aliases, integer codes)."""
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return parse_manifest(data, where=where, base=base, classes=classes)[0]
    if not isinstance(data, list):
        raise ManifestError(f"a manifest is a JSON list of items, not a {type(data).__name__}", source=where)
    from ..io import is_url

    items = []
    for i, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise ManifestError(f"item {i} is a {type(raw).__name__}, not an object with an \"image\" key", source=where)
        image = raw.get("image")
        name = _item_name(where, i, image)
        if not isinstance(image, str) or not image.strip():
            raise ManifestError("has no \"image\" (a path or an http(s) URL)", source=name)
        src = image.strip()
        if not is_url(src) and base is not None and not os.path.isabs(src):
            src = str(base / src)
        labels: dict[str, str | float] = {}
        for task in dict.fromkeys(tasks):
            v = raw.get(task)
            if v is None or v == "":
                continue
            try:
                labels[task] = normalize_label(task, v, item=name, classes=(classes or {}).get(task))
            except LabelError as e:
                raise ManifestError(e.reason, source=name) from None
        items.append(Item(src, labels, name))
    return items


def load_manifest(path: str | os.PathLike[str], *, classes: dict[str, Sequence[str]] | None = None) -> list[Item]:
    """Read and validate a manifest file (see the module docstring)."""
    return read_manifest(path, classes=classes)[0]


def read_manifest(
    path: str | os.PathLike[str], *, classes: dict[str, Sequence[str]] | None = None, mapping: dict[str, str] | None = None
) -> tuple[list[Item], dict[str, list[str]]]:
    """A manifest file's items and declared tasks (:func:`parse_manifest`); a ``.jsonl`` labelling-tool export is imported (``mapping``)."""
    p = Path(path)
    if p.suffix.lower() == ".jsonl" and p.is_file():
        items, tasks, _ = import_label_export(p, mapping)
        if classes:
            items = parse_items([it.to_dict() for it in items], where=str(p), classes={**tasks, **classes}, tasks=[*tasks, *classes])
        return items, tasks
    if not p.is_file():
        raise ManifestError("no such manifest file", source=str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ManifestError("is not UTF-8 text", source=str(p)) from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"bad JSON at line {e.lineno} column {e.colno}: {e.msg}", source=str(p)) from None
    return parse_manifest(data, where=str(p), base=p.parent.resolve(), classes=classes)


def write_manifest(items: Iterable[Item], path: str | os.PathLike[str], *, tasks: dict[str, list[str]] | None = None) -> Path:
    """A manifest file: a JSON list of items, or ``{"tasks": ..., "items": [...]}`` when ``tasks`` declares label sets."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rows = [it.to_dict() for it in items]
    p.write_text(json.dumps({"tasks": tasks, "items": rows} if tasks else rows, indent=1))
    return p


def task_classes(items: Sequence[Item], declared: dict[str, list[str]] | None = None, wanted: Sequence[str] | None = None) -> dict[str, list[str]]:
    """The tasks a model trained on ``items`` gets, and their classes (``[]`` for ``age``, a regression).

    ``wanted`` (default: every known task) is cut to the tasks the items label.  Classes: the
    ``declared`` ones (your own label sets) first, then facelab's fixed vocabularies, then the
    values found in the items (sorted).  An unknown task, or none labelled, raise :class:`InputError`.
    """
    from .labels import FIXED_CLASSES

    declared = declared or {}
    known = list(dict.fromkeys([*TASKS, *declared]))
    wanted = list(wanted) if wanted else known
    bad = [t for t in wanted if t not in known]
    if bad:
        raise InputError(f"unknown task {bad[0]!r} (choose from: {', '.join(known)})")
    present = [t for t in wanted if any(t in it.labels for it in items)]
    if not present:
        raise InputError("the training items have no labels for the tasks asked for")
    out: dict[str, list[str]] = {}
    for t in present:
        if t in declared:
            out[t] = list(declared[t])
        elif t == "age":
            out[t] = []
        elif t in FIXED_CLASSES:
            out[t] = list(FIXED_CLASSES[t])
        else:
            out[t] = sorted({str(it.labels[t]) for it in items if t in it.labels})
    return out


# --- labelling-tool exports (Dataturks style) --------------------------------------------

#: Label -> task by prefix (longest first) or exact name, as in a Dataturks face-attributes export:
#: ``Emotion_Happy`` -> emotion, ``Age_20_30`` -> age_group, ``E_Hispanic`` -> ethnicity; ``Not_Face`` and
#: ``others`` (that export's catch-alls) go to emotion and age_group.
DEFAULT_LABEL_MAP: dict[str, str] = {"Emotion_": "emotion", "Not_Face": "emotion", "Age_": "age_group", "others": "age_group", "E_": "ethnicity"}


def parse_label_map(specs: Sequence[str]) -> dict[str, str]:
    """``["Emotion_=emotion", "Age_=age_group"]`` -> a label map (see :data:`DEFAULT_LABEL_MAP`)."""
    out = {}
    for s in specs:
        k, sep, v = s.partition("=")
        if not sep or not k or not v.strip() or v.strip() == "image":
            raise InputError(f"a label mapping is PREFIX=TASK (e.g. Emotion_=emotion), not {s!r}")
        out[k] = v.strip()
    return out


def task_of_label(label: str, mapping: dict[str, str]) -> str | None:
    """The task of a label: an exact key of ``mapping`` first, else its longest matching prefix."""
    if label in mapping:
        return mapping[label]
    hits = [k for k in mapping if label.startswith(k)]
    return mapping[max(hits, key=len)] if hits else None


def import_label_export(
    path: str | os.PathLike[str], mapping: dict[str, str] | None = None, *, base: Path | None = None
) -> tuple[list[Item], dict[str, list[str]], dict[str, Any]]:
    """Items, task -> classes (sorted, as found) and a summary of a labelling-tool export.

    One JSON object per line, ``{"content": "image URL or path", "annotation": {"labels": ["Emotion_Happy", "Age_20_30"]}}``
    (Dataturks' image-classification export; a JSON list of such objects is read too).  Each label
    goes to the task ``mapping`` gives it (:func:`task_of_label`); a label no mapping covers, or two
    labels of one task on one image, raise :class:`ManifestError` naming the line.  Lines without an
    annotation (not labelled yet) are skipped and counted.
    """
    from ..io import is_url

    p = Path(path)
    if not p.is_file():
        raise ManifestError("no such labelling export", source=str(p))
    mapping = dict(DEFAULT_LABEL_MAP if mapping is None else mapping)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError("is not UTF-8 text", source=str(p)) from None
    base = base or p.parent.resolve()
    rows: list[tuple[int, Any]] = []
    if text.lstrip().startswith("["):
        try:
            rows = list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as e:
            raise ManifestError(f"bad JSON at line {e.lineno} column {e.colno}: {e.msg}", source=str(p)) from None
    else:
        for ln, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((ln, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ManifestError(f"line {ln}: bad JSON ({e.msg} at column {e.colno})", source=str(p)) from None
    items: list[Item] = []
    found: dict[str, set[str]] = {}
    unlabelled = 0
    for ln, obj in rows:
        where = f"{p} line {ln}"
        if not isinstance(obj, dict):
            raise ManifestError(f"a {type(obj).__name__}, not an object with \"content\" and \"annotation\"", source=where)
        src = obj.get("content")
        if not isinstance(src, str) or not src.strip():
            raise ManifestError('has no "content" (the image URL or path)', source=where)
        src = src.strip()
        if not is_url(src) and not os.path.isabs(src):
            src = str(base / src)
        ann = obj.get("annotation")
        labels = ann.get("labels", ann.get("label")) if isinstance(ann, dict) else None
        if isinstance(labels, str):
            labels = [labels]
        if not labels:
            unlabelled += 1
            continue
        if not isinstance(labels, list) or not all(isinstance(v, str) and v.strip() for v in labels):
            raise ManifestError('"annotation.labels" must be a list of label names', source=where)
        lab: dict[str, str | float] = {}
        for v in labels:
            v = v.strip()
            t = task_of_label(v, mapping)
            if t is None:
                raise ManifestError(f"label {v!r} matches no task (mappings: {', '.join(f'{k}={t}' for k, t in mapping.items())}); add one such as --map {v.split('_')[0]}_=TASK", source=where)
            if t in lab and lab[t] != v:
                raise ManifestError(f"two {t} labels on one image: {lab[t]!r} and {v!r}", source=where)
            lab[t] = v
            found.setdefault(t, set()).add(v)
        items.append(Item(src, lab, f"{where} ({src})"))
    if not items:
        raise ManifestError(f"no labelled images ({unlabelled} line(s) without labels)", source=str(p))
    tasks = {t: sorted(v) for t, v in sorted(found.items())}
    summary = {"items": len(items), "unlabelled": unlabelled, "tasks": {t: {c: sum(it.labels.get(t) == c for it in items) for c in cl} for t, cl in tasks.items()}}
    return items, tasks, summary


# --- dataset importers -------------------------------------------------------------

FER_FOLDERS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral", "sad": "sad", "surprise": "surprise"}
_UTK_RE = re.compile(r"^(\d+)_(\d)_(\d)_")


def import_fer2013(root: str | os.PathLike[str], split: str = "train") -> list[Item]:
    """FER2013 as ``<root>/<split>/<emotion>/*.jpg`` (splits ``train`` and ``val``)."""
    from ..io import iter_image_paths

    base = Path(root) / split
    if not base.is_dir():
        raise InputError(f"not a FER2013 folder: {base} is missing (expected {split}/<emotion>/*.jpg)", source=str(root))
    items = []
    for folder in sorted(base.iterdir()):
        if not folder.is_dir():
            continue
        emo = normalize_label("emotion", folder.name, item=str(folder))
        for f in sorted(iter_image_paths(str(folder))):
            items.append(Item(f, {"emotion": emo}, f))
    if not items:
        raise InputError(f"no images under {base}/<emotion>/", source=str(root))
    return items


def parse_utkface_name(name: str) -> dict[str, str | float] | None:
    """Labels from a UTKFace file name ``age_gender_race_date.jpg.chip.jpg`` (None if it does not parse)."""
    m = _UTK_RE.match(os.path.basename(name))
    if not m:
        return None
    age, g, r = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if g > 1 or r > 4 or age > 130:
        return None
    from .labels import ETHNICITIES, GENDERS

    return {"age": float(age), "gender": GENDERS[g], "ethnicity": ETHNICITIES[r]}


def import_utkface(root: str | os.PathLike[str]) -> list[Item]:
    """UTKFace crops, labels from the file names (files whose names do not parse are skipped)."""
    from ..io import iter_image_paths

    if not Path(root).is_dir():
        raise InputError("not a folder", source=str(root))
    items = []
    for f in sorted(iter_image_paths(str(root))):
        lab = parse_utkface_name(f)
        if lab is not None:
            items.append(Item(f, lab, f))
    if not items:
        raise InputError("no UTKFace images (age_gender_race_date.jpg.chip.jpg) found", source=str(root))
    return items


def split_items(items: Sequence[Item], fractions: Sequence[float], seed: int = 0) -> list[list[Item]]:
    """A seeded random split of ``items`` into parts of the given fractions (the rest goes to the last part)."""
    idx = np.random.default_rng(seed).permutation(len(items))
    out, start = [], 0
    for i, f in enumerate(fractions):
        end = len(items) if i == len(fractions) - 1 else start + int(round(f * len(items)))
        out.append([items[j] for j in sorted(idx[start:end])])
        start = end
    return out


DATASETS = ("fer2013", "utkface")


def dataset_items(kind: str, root: Path, part: str) -> list:
    """Items of a dataset importer: ``part`` is train, val or test.

    fer2013: its train/ and val/ folders (test = val).  utkface: a seeded 80/10/10 split of the files.
    """
    kind = kind.lower()
    if kind == "fer2013":
        return import_fer2013(root, "train" if part == "train" else "val")
    if kind == "utkface":
        tr, va, te = split_items(import_utkface(root), [0.8, 0.1, 0.1], seed=0)
        return {"train": tr, "val": va, "test": te}[part]
    raise InputError(f"unknown dataset {kind!r} (choose from: {', '.join(DATASETS)})")


@dataclass
class ChipSet:
    """Face chips ``(N, H, W, C)`` uint8 and, per task, labels: class index (-1 = missing) or age (NaN = missing)."""

    images: np.ndarray
    labels: dict[str, np.ndarray]
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, idx: np.ndarray) -> ChipSet:
        return ChipSet(self.images[idx], {k: v[idx] for k, v in self.labels.items()}, [self.names[i] for i in idx] if self.names else [])


# --- fetching with a cache ------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path(os.environ.get("FACELAB_CACHE", Path.home() / ".cache" / "facelab")) / "downloads"


@dataclass
class Fetcher:
    """Loads item images: files directly, URLs through an on-disk cache (timeout, size cap, retries)."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    timeout: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    retries: int = 2
    backoff: float = 0.3

    def load(self, source: str) -> np.ndarray:
        from ..io import decode_image, is_url, load_image

        if not is_url(source):
            return load_image(source)
        return decode_image(self.fetch(source), source=source, max_bytes=self.max_bytes)

    def fetch(self, url: str) -> bytes:
        from ..io import fetch_url

        key = hashlib.sha256(url.encode()).hexdigest()
        path = self.cache_dir / key[:2] / key
        if path.is_file():
            return path.read_bytes()
        data = fetch_url(url, timeout=self.timeout, max_bytes=self.max_bytes, retries=self.retries, backoff=self.backoff)
        from ..io import decode_image

        decode_image(data, source=url, max_bytes=self.max_bytes)  # only images enter the cache
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return data


# --- chips ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChipSpec:
    """How a face becomes the network's input: ``size`` px square, grey (1) or RGB (3).

    ``faces="given"``: the images are face crops already (FER2013, UTKFace) and are
    used whole; ``"detect"``: the largest face is found (HOG) and cropped with
    ``padding`` (fraction of the box side added on each side).  At inference the
    detected face is always cropped with ``padding`` (measured on the training
    crops when they were given).
    """

    size: int = 48
    channels: int = 1
    faces: str = "given"
    padding: float = 0.25
    detector: str = "hog"
    shift_x: float = 0.0  # chip centre = box centre + shift * box side (measured framing of given crops)
    shift_y: float = 0.0
    input: str = "chip"  # or "embedding:dlib" (the face's 128-d dlib embedding) or "chip:dlib" (dlib's aligned 150-px chip)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size, "channels": self.channels, "faces": self.faces, "padding": round(self.padding, 4),
            "detector": self.detector, "shift_x": round(self.shift_x, 4), "shift_y": round(self.shift_y, 4), "input": self.input,
        }

    def cache_key(self) -> dict[str, Any]:
        """The fields that change a chip: the framing does not matter for given crops cut to chips whole."""
        d = self.to_dict()
        if self.input == "chip" and self.faces == "given":
            for k in ("padding", "shift_x", "shift_y", "detector"):
                d.pop(k)
        if self.input.startswith("embedding:"):
            d["flip"] = True  # embeddings are flip-averaged (facelab's default)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChipSpec:
        return cls(
            int(d.get("size", 48)), int(d.get("channels", 1)), str(d.get("faces", "given")), float(d.get("padding", 0.25)),
            str(d.get("detector", "hog")), float(d.get("shift_x", 0.0)), float(d.get("shift_y", 0.0)), str(d.get("input", "chip")),
        )


def finish_chip(rgb: np.ndarray, spec: ChipSpec) -> np.ndarray:
    """Resize an RGB crop to the spec's size and channels: (size, size, channels) uint8."""
    import cv2

    h, w = rgb.shape[:2]
    if (h, w) != (spec.size, spec.size):
        interp = cv2.INTER_AREA if max(h, w) > spec.size else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (spec.size, spec.size), interpolation=interp)
    if spec.channels == 1:
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    return np.ascontiguousarray(rgb)


def face_chip(image: np.ndarray, face, spec: ChipSpec) -> np.ndarray:
    """The network input for one detected face (crop with the spec's padding, resize, grey)."""
    import dataclasses

    from ..align import crop
    from ..detect.base import dlib_box

    if spec.detector == "hog" and face.detector != "hog":  # framing measured on HOG boxes: map other detectors' boxes there
        face = dataclasses.replace(face, box=dlib_box(face))
    if spec.shift_x or spec.shift_y:
        side = max(face.box.width, face.box.height)
        b = face.box
        dx, dy = spec.shift_x * side, spec.shift_y * side
        face = dataclasses.replace(face, box=type(b)(b.left + dx, b.top + dy, b.right + dx, b.bottom + dy))
    return finish_chip(crop(image, face, size=spec.size, padding=spec.padding), spec)


def measure_framing(images: Sequence[np.ndarray], detector: str = "hog", up: int = 192) -> tuple[float, float, float, int]:
    """How given face crops are framed relative to the detector's box: (padding, shift_x, shift_y, faces found).

    Each crop is scaled to ``up`` px, the detector is run, and the medians of
    ``(side / box side - 1) / 2`` and of the crop centre's offset from the box
    centre (in box sides) are returned, so that :func:`face_chip` on a detected
    face reproduces the framing the network was trained on.
    """
    import cv2

    from ..detect import detect

    pads, dxs, dys = [], [], []
    for im in images:
        if im.ndim == 3 and im.shape[2] == 1:
            im = np.repeat(im, 3, axis=2)
        h, w = im.shape[:2]
        s = up / max(h, w)
        im2 = cv2.resize(np.ascontiguousarray(im), (max(1, int(round(w * s))), max(1, int(round(h * s)))), interpolation=cv2.INTER_LINEAR)
        faces = detect(im2, detector, max_faces=1, rotate=False, min_face=up // 3)
        if not faces:
            continue
        b = faces[0].box
        side = max(b.width, b.height)
        pads.append((max(im2.shape[:2]) / side - 1) / 2)
        cx, cy = b.center
        dxs.append((im2.shape[1] / 2 - cx) / side)
        dys.append((im2.shape[0] / 2 - cy) / side)
    if not pads:
        return 0.25, 0.0, 0.0, 0
    return float(np.median(pads)), float(np.median(dxs)), float(np.median(dys)), len(pads)


def chip_from_image(image: np.ndarray, spec: ChipSpec) -> np.ndarray:
    """The network input of an image's face.

    Chips: the whole image when faces are given, else its largest detected face.
    Embeddings (and ``chip:dlib``, the 150-px chip dlib's ResNet embeds): the largest
    detected face's; for given crops where the detector finds nothing, the box the
    crop's padding implies.
    """
    from ..detect import detect
    from ..errors import NoFaceError

    if spec.input == "chip":
        if spec.faces == "given":
            return finish_chip(image, spec)
        faces = detect(image, spec.detector, max_faces=1)
        if not faces:
            raise NoFaceError("no face found")
        return face_chip(image, faces[0], spec)
    if spec.input not in ("embedding:dlib", "chip:dlib"):
        raise InputError(f"unknown model input {spec.input!r} (chip, embedding:dlib, chip:dlib)")
    from ..embed import get_embedder
    from ..types import Box, Face

    h, w = image.shape[:2]
    opts = {"min_face": max(20, min(h, w) // 3)} if spec.faces == "given" else {}  # a crop's face is large: no upsampling
    faces = detect(image, spec.detector, max_faces=1, rotate=False, **opts)
    if not faces:
        if spec.faces != "given":
            raise NoFaceError("no face found")
        side = min(h, w) / (1 + 2 * max(spec.padding, 0.0))
        faces = [Face(Box.from_center(w / 2 - spec.shift_x * side, h / 2 - spec.shift_y * side, side, side), 0.0, "given")]
    if spec.input == "chip:dlib":  # the aligned chip dlib's ResNet sees (a fine-tuned ResNet's input)
        return get_embedder("dlib").chips(image, faces[:1])[0]
    return get_embedder("dlib").embed(image, faces[:1])[0].vector


class ChipCache:
    """Chips of local files on disk, one ``.npz`` per :class:`ChipSpec`, keyed by path, size and mtime.

    A second run over the same files (another split, a resumed run) skips the
    decoding, detection and embedding work.  URLs are not cached here (their
    downloads are, by :class:`Fetcher`).
    """

    def __init__(self, spec: ChipSpec, root: Path | None = None):
        h = hashlib.sha256(json.dumps(spec.cache_key(), sort_keys=True).encode()).hexdigest()[:24]
        self.path = (root or default_cache_dir().parent / "chips") / f"{h}.npz"
        self._chips: dict[str, np.ndarray] = {}
        self._fails: dict[str, dict[str, str]] = {}
        self._dirty = False
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    self._chips = dict(zip(z["keys"].tolist(), z["chips"]))
                    self._fails = json.loads(str(z["failures"]))
            except (OSError, ValueError, KeyError):
                self._chips, self._fails = {}, {}

    @staticmethod
    def key(source: str) -> str | None:
        from ..io import is_url

        if is_url(source):
            return None
        try:
            st = os.stat(source)
        except OSError:
            return None
        return f"{os.path.abspath(source)}|{st.st_size}|{st.st_mtime_ns}"

    def get(self, source: str):
        k = self.key(source)
        if k is None:
            return None
        if k in self._chips:
            return self._chips[k], None
        if k in self._fails:
            f = self._fails[k]
            return None, Failure(f["item"], f["error"], f["code"])
        return None

    def put(self, source: str, chip: np.ndarray | None, fail: Failure | None) -> None:
        k = self.key(source)
        if k is None:
            return
        if chip is not None:
            self._chips[k] = chip
        elif fail is not None and fail.code not in ("url_timeout", "bad_url"):
            self._fails[k] = fail.to_dict()
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        keys = list(self._chips)
        np.savez(tmp, keys=np.array(keys, dtype=str), chips=np.stack([self._chips[k] for k in keys]) if keys else np.zeros((0,)),
                 failures=json.dumps(self._fails))
        os.replace(tmp, self.path)
        self._dirty = False


@dataclass
class Failure:
    item: str
    error: str
    code: str

    def to_dict(self) -> dict[str, str]:
        return {"item": self.item, "error": self.error, "code": self.code}

    def __str__(self) -> str:
        return f"{self.item}: {self.error}"


def build_chips(
    items: Sequence[Item],
    spec: ChipSpec,
    task_classes: dict[str, list[str]],
    *,
    fetcher: Fetcher | None = None,
    workers: int = 4,
    on_item: Callable[[], None] | None = None,
    cache: bool = False,
):
    """Chips and label arrays of ``items`` (a :class:`ChipSet`) and the failures skipped.

    Items that cannot be loaded (404, not an image, timeout, no face...) are listed
    in the failures and left out.  ``cache`` keeps the chips of local files on disk
    (:class:`ChipCache`) so a second run skips the work.  A label that is not among ``task_classes``
    raises :class:`ManifestError` naming the item.
    """
    fetcher = fetcher or Fetcher()
    for it in items:
        for t, classes in task_classes.items():
            v = it.labels.get(t)
            if classes and v is not None and v not in classes:
                raise ManifestError(f"{t} label {v!r} is not one of the model's classes ({', '.join(classes)})", source=it.name)
    store = ChipCache(spec, fetcher.cache_dir / "chips") if cache else None  # inside the cache folder, never beside it

    def work(it: Item):
        try:
            hit = store.get(it.source) if store is not None else None
            if hit is not None:
                return hit if hit[1] is None else (None, Failure(it.name or it.source, hit[1].error, hit[1].code))
            try:
                res = chip_from_image(fetcher.load(it.source), spec), None
            except FacelabError as e:
                res = None, Failure(it.name or it.source, e.reason, e.code)
            if store is not None:
                store.put(it.source, *res)
            return res
        finally:
            if on_item is not None:
                on_item()

    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        results = list(ex.map(work, items))
    if store is not None:
        store.save()
    chips, kept, failures = [], [], []
    for it, (chip, fail) in zip(items, results):
        if fail is not None:
            failures.append(fail)
        else:
            chips.append(chip)
            kept.append(it)
    empty = np.zeros((0, spec.size, spec.size, spec.channels), np.uint8) if spec.input.startswith("chip") else np.zeros((0, 128), np.float32)
    images = np.stack(chips) if chips else empty
    labels: dict[str, np.ndarray] = {}
    for t, classes in task_classes.items():
        if classes:
            labels[t] = np.array([classes.index(it.labels[t]) if t in it.labels else -1 for it in kept], np.int64)
        else:
            labels[t] = np.array([float(it.labels.get(t, np.nan)) for it in kept], np.float32)
    return ChipSet(images, labels, [it.name or it.source for it in kept]), failures
