"""Commands over images: ``detect``, ``landmarks``, ``embed``, ``verify``, ``analyze``, and ``models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import FacelabError, InputError, NoFaceError
from ..landmarks import LANDMARKERS
from ..pipeline import FaceAnalysis, IdentifyJob
from .common import (
    DEFAULT_DETECTOR,
    DEFAULT_MIN_FACE,
    DEFAULT_ROTATE,
    DetectorOpt,
    EmbedderOpt,
    JsonOpt,
    LimitOpt,
    MinFaceOpt,
    OutOpt,
    Paths,
    QuietOpt,
    RotateOpt,
    SaveCropsOpt,
    WorkersOpt,
    err,
    fail,
    face_label,
    guard,
    make_pipeline,
    print_json,
    rotate_value,
    run_images,
)

LandmarksOpt = Annotated[str, typer.Option("--landmarks", help=f"Landmark model: {', '.join(LANDMARKERS.names())}.")]
FlipOpt = Annotated[bool, typer.Option("--flip/--no-flip", help="Average with the mirrored face (default; thresholds assume it).")]
#: verify's own detection: the largest face per image, with the chain and minimum size its threshold was calibrated with
VERIFY_DETECTOR, VERIFY_MIN_FACE = "hog,hog@2,cnn", 80


@guard
def detect(
    paths: Paths,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
    save_crops: SaveCropsOpt = None,
    require_face: Annotated[bool, typer.Option("--require-face", help="Exit 1 if an image has no face.")] = False,
) -> None:
    """Find faces: boxes, scores and rotation."""
    job = make_pipeline(detector, rotate, min_face, None, None)
    run_images(paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, require_face=require_face, limit=limit, save_crops=save_crops)


@guard
def crop(
    paths: Paths,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the chips: <image>_face<i>.jpg, largest face first.")],
    size: Annotated[int, typer.Option("--size", min=16, max=1024, help="Chip side in pixels.")] = 150,
    padding: Annotated[float, typer.Option("--padding", min=0.0, max=2.0, help="Margin around the face (dlib and crop methods), as a fraction of its size.")] = 0.25,
    method: Annotated[str, typer.Option("--method", help="dlib (5-point alignment, what the embedder sees), arcface (the 112-px template) or crop (upright box crop).")] = "dlib",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    as_json: JsonOpt = False,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
) -> None:
    """Write an aligned chip of every face (detect --save-crops, with the chip's size and alignment)."""
    if method not in ("dlib", "arcface", "crop"):
        raise InputError(f"--method must be dlib, arcface or crop, not {method!r}")
    job = make_pipeline(detector, rotate, min_face, None, None)
    run_images(paths, job, out=None, workers=workers, quiet=quiet, as_json=as_json, limit=limit, save_crops=out,
               crop_options={"size": size, "padding": padding, "method": method})


@guard
def landmarks(
    paths: Paths,
    model: Annotated[str, typer.Option("--model", "-m", help=f"Landmark model: {', '.join(LANDMARKERS.names())}, or a .onnx file from `facelab train landmarks`.")] = "dlib68",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
) -> None:
    """Find faces and their landmarks."""
    LANDMARKERS.resolve(model)
    job = make_pipeline(detector, rotate, min_face, model, None)
    run_images(
        paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, limit=limit,
        extra=lambda f: f" {len(f.landmarks)} pts" if f.landmarks is not None else "",
    )  # fmt: skip


@guard
def embed(
    paths: Paths,
    model: EmbedderOpt = "dlib",
    flip: FlipOpt = True,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
) -> None:
    """Face embeddings (descriptors) for every face; --json prints the vectors."""
    from ..embed import EMBEDDERS

    EMBEDDERS.resolve(model)
    job = make_pipeline(detector, rotate, min_face, None, model, flip)
    run_images(
        paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, limit=limit, require_face=True,
        extra=lambda f: f" {len(f.embedding)}-d" if f.embedding is not None else "",
    )  # fmt: skip


@guard
def verify(
    image1: Annotated[str, typer.Argument(help="First image (its largest face is used, or see --pick).")],
    image2: Annotated[str, typer.Argument(help="Second image.")],
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Distance at or below which faces match (default: the model's calibrated one).")] = None,
    model: EmbedderOpt = "dlib",
    flip: FlipOpt = True,
    detector: Annotated[str, typer.Option("--detector", "-d", help="Detector (chain) finding the largest face; the default is the one the threshold was calibrated with.")] = VERIFY_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = VERIFY_MIN_FACE,
    pick: Annotated[str, typer.Option("--pick", help="Which face of each image: largest, or central (portraits centred on their subject, e.g. LFW).")] = "largest",
    as_json: JsonOpt = False,
) -> None:
    """Are the faces in two images the same person?  Exit 1 if either has no face."""
    from ..api import verify as api_verify

    if pick not in ("largest", "central"):
        fail(f"--pick must be largest or central, not {pick!r}")
    v = api_verify(image1, image2, model=model, threshold=threshold, flip=flip, detector=detector, rotate=rotate_value(rotate), min_face=min_face, pick=pick)
    if as_json:
        print_json({"image1": image1, "image2": image2, **v.to_dict()})
    else:
        verdict = "same person" if v.same else "different people"
        typer.echo(f"{verdict}: distance {v.distance:.4f} {'<=' if v.same else '>'} threshold {v.threshold:.4f} ({v.model}, {v.metric})")


@guard
def analyze(
    paths: Paths,
    known: Annotated[Optional[Path], typer.Option("--known", help="Folder of known people: <name>.jpg files or <name>/ sub-folders.")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Identification distance threshold.")] = None,
    landmarks_model: LandmarksOpt = "dlib68",
    model: EmbedderOpt = "dlib",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    rotate: RotateOpt = DEFAULT_ROTATE,
    min_face: MinFaceOpt = DEFAULT_MIN_FACE,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    workers: WorkersOpt = 1,
    quiet: QuietOpt = False,
    limit: LimitOpt = None,
    save_crops: SaveCropsOpt = None,
    actions: Annotated[Optional[str], typer.Option("--actions", "-a", help="Attributes per face: age,gender,emotion,ethnicity (or all).")] = None,
) -> None:
    """Everything for every face: box, landmarks, embedding, attributes (--actions), and a name when --known is given."""
    from ..attributes import parse_actions, prepare_models

    pipe = make_pipeline(detector, rotate, min_face, landmarks_model, model)
    pipe.attributes = parse_actions(actions)
    if pipe.attributes:
        prepare_models(pipe.attributes)  # a missing model fails here, once, not per image
    known_faces = load_known(known, pipe, threshold) if known is not None else None
    job = IdentifyJob(pipe, known_faces)
    run_images(paths, job, out=out, workers=workers, quiet=quiet, as_json=as_json, limit=limit, extra=face_label, save_crops=save_crops)


def load_known(folder: Path, pipe: FaceAnalysis, threshold: float | None):
    """KnownFaces from a folder of ``<name>.jpg`` files or ``<name>/`` sub-folders, embedded like ``pipe`` does."""
    from ..embed import get_embedder
    from ..gallery import KnownFaces, known_people_from_folder
    from ..io import load_image

    if not folder.is_dir():
        raise InputError("not a folder", source=str(folder))
    people = known_people_from_folder(folder)
    if not people:
        raise InputError("no images of known people found", source=str(folder))
    emb = get_embedder(pipe.embedder or "dlib")
    kf = KnownFaces(emb.name, emb.threshold if threshold is None else threshold)
    enroll = FaceAnalysis(detector=pipe.detector, landmarks=None, embedder=pipe.embedder, rotate=pipe.rotate, detector_options=pipe.detector_options, max_faces=1)
    for name, path in people:
        try:
            faces = enroll.get(load_image(path))
        except InputError as e:
            err(f"{e} (known face skipped)")
            continue
        if not faces:
            err(f"{path}: no face found (known face skipped)")
            continue
        kf.add(name, faces[0].embedding)
    if not len(kf):
        raise NoFaceError("no usable known faces", source=str(folder))
    return kf


def models(as_json: JsonOpt = False) -> None:
    """List the backends and check every model file (SHA-256)."""
    from ..attributes import ATTRIBUTE_MODELS  # also registers its model files
    from ..detect import DETECTORS
    from ..embed import EMBEDDERS
    from ..models import MODEL_FILES, licence_policy, licence_table, model_path, set_licence_policy
    from ..quality import QUALITY_MODEL  # noqa: F401  (registers its model file)

    lic = {r["key"]: r for r in licence_table()}
    policy = licence_policy()
    files = {}
    set_licence_policy("any")  # check every file, allowed under the policy or not
    try:
        for key in MODEL_FILES:
            try:
                files[key] = {"path": str(model_path(key)), "ok": True, "licence": lic.get(key)}
            except FacelabError as e:
                files[key] = {"ok": False, "error": str(e), "licence": lic.get(key)}
    finally:
        set_licence_policy(policy)
    info = {
        "detectors": DETECTORS.describe(), "landmarks": LANDMARKERS.describe(), "embedders": EMBEDDERS.describe(),
        "attributes": ATTRIBUTE_MODELS.describe(), "model_files": files,
    }  # fmt: skip
    if as_json:
        print_json(info)
        return
    for kind in ("detectors", "landmarks", "embedders", "attributes"):
        typer.echo(f"{kind}:")
        for n, h in info[kind].items():
            typer.echo(f"  {n:10s} {h}")
    typer.echo("model files:")
    for k, v in files.items():
        typer.echo(f"  {k:18s} {'ok  ' + v['path'] if v['ok'] else 'MISSING  ' + v['error']}")
    typer.echo(f"licences (commercial: weights and training data allow it; policy now: {policy}; sources in docs/privacy.md):")
    for k, v in files.items():
        li = v["licence"] or {"commercial": False, "weights": "?", "data": "?", "allowed": policy != "commercial"}
        note = "" if li["allowed"] else "  [unavailable under licence=commercial]"
        typer.echo(f"  {k:18s} {'commercial' if li['commercial'] else 'non-commercial':14s} weights: {li['weights']}; data: {li['data']}{note}")


def register(app: typer.Typer) -> None:
    for fn in (detect, crop, landmarks, embed, verify, analyze, models):
        app.command(fn.__name__)(fn)


__all__ = ["analyze", "crop", "detect", "embed", "landmarks", "load_known", "models", "register", "verify"]
