"""Identity classifiers on face embeddings: k-fold CV, grid search, open-set threshold, one model file.

Two ways to learn the user's people from their embeddings:

* **feature extraction**: the embedder stays frozen and a classifier learns
  the people: ``svm`` (linear SVM, the reference), ``logreg`` (multinomial
  logistic regression) or ``knn`` (k nearest neighbours);
* **fine-tuning**: ``mlp``, a small adapter network (standardised embedding ->
  hidden ReLU layer -> softmax over the people) trained on the user's
  identities: the hidden layer is a new, task-specific representation.

Training (scikit-learn, ``pip install 'facelab[identities]'``) runs a stratified
k-fold cross-validation; inside each training fold the hyper-parameters are
chosen from a small grid by an inner 3-fold CV (nested CV, so the outer
accuracies are not inflated by the choice).  The final model is fitted on
every image with the parameters the inner search picks on the whole set.

Open set: a face is ``unknown`` when its distance (in the frozen embedding
space) to the nearest training embedding of the predicted person is above a
threshold.  The threshold is chosen on the held-out folds: every held-out
image is tried once as a known person (distance to the predicted person) and
once as a stranger (its own person removed: distance to the nearest other
person), and the threshold maximising the accuracy of both is kept.

The model file (``.npz``, no pickle) holds plain arrays, so prediction needs
numpy only: :class:`IdentityModel`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..embed import distances, metric_of
from ..errors import InputError, ModelError
from ..types import Candidate, Face, Identity
from .balance import check_mode, class_counts, effective_counts
from .dataset import EmbeddedSet, Extra

KIND = "identities"
FORMAT_VERSION = 1
CLASSIFIERS = ("svm", "knn", "logreg", "mlp")
#: The frozen-embedding classifiers and the fine-tuned adapter, for reports.
APPROACH = {"svm": "frozen embeddings + linear SVM", "knn": "frozen embeddings + kNN", "logreg": "frozen embeddings + logistic regression", "mlp": "fine-tuned MLP adapter"}

#: Small hyper-parameter grids searched by default (override with ``grid=``).
GRIDS: dict[str, dict[str, list]] = {
    "svm": {"C": [0.1, 1.0, 10.0]},
    "knn": {"n_neighbors": [1, 3, 5], "weights": ["distance"]},
    "logreg": {"C": [1.0, 10.0, 100.0]},
    "mlp": {"hidden": [256], "alpha": [1e-4, 1e-2]},
}


def _grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    import itertools

    keys = sorted(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


# --- fitting (scikit-learn) and export to plain arrays ----------------------------------------


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ModelError("training identity classifiers needs scikit-learn: pip install 'facelab[identities]'") from None


def _fit(kind: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, seed: int = 0, balanced: bool = False) -> dict[str, np.ndarray]:
    """Fit ``kind`` on standardised ``X`` and return its parameters as arrays (see :func:`_scores`).

    ``balanced``: class-weighted loss (``n / (n_classes * n_class)``) for svm, logreg and mlp.
    """
    _sklearn()
    cw = "balanced" if balanced else None
    if kind == "svm":
        from sklearn.svm import SVC

        # libsvm's one-vs-one linear SVM: as accurate as LinearSVC here and ~40x faster on a few hundred faces
        clf = SVC(kernel="linear", C=float(params.get("C", 1.0)), class_weight=cw).fit(X, y)
        return {"coef": clf.coef_.astype(np.float32), "intercept": clf.intercept_.astype(np.float32), "classes": clf.classes_}
    if kind == "logreg":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=float(params.get("C", 10.0)), max_iter=2000, class_weight=cw).fit(X, y)
        coef, icpt = clf.coef_, clf.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row
            coef, icpt = np.vstack([-coef, coef]) / 2, np.array([-icpt[0], icpt[0]]) / 2
        return {"coef": coef.astype(np.float32), "intercept": icpt.astype(np.float32), "classes": clf.classes_}
    if kind == "knn":
        if balanced:
            raise InputError("balance 'weights' does not apply to knn (no loss to weight): use balance 'augment'")
        classes = np.unique(y)
        return {
            "train": X.astype(np.float32),
            "train_y": np.searchsorted(classes, y).astype(np.int32),
            "classes": classes,
            "k": np.array(int(params.get("n_neighbors", 1))),
            "distance_weights": np.array(params.get("weights", "distance") == "distance"),
        }
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(
            hidden_layer_sizes=(int(params.get("hidden", 256)),), alpha=float(params.get("alpha", 1e-3)), max_iter=int(params.get("max_iter", 400)), random_state=seed
        )
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if balanced:
                from sklearn.utils.class_weight import compute_sample_weight

                clf.fit(X, y, sample_weight=compute_sample_weight("balanced", y))
            else:
                clf.fit(X, y)
        w1, w2 = clf.coefs_
        b1, b2 = clf.intercepts_
        if w2.shape[1] == 1:  # two classes: logistic output
            w2, b2 = np.hstack([-w2, w2]) / 2, np.array([-b2[0], b2[0]]) / 2
        return {
            "w1": w1.astype(np.float32), "b1": b1.astype(np.float32), "w2": w2.astype(np.float32), "b2": b2.astype(np.float32), "classes": clf.classes_,
            "loss_curve": np.asarray(clf.loss_curve_, np.float32),
        }
    raise InputError(f"unknown classifier {kind!r}; choose one of {', '.join(CLASSIFIERS)}")


def _scores(kind: str, p: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Per-class scores ``(N, C)`` (higher is better) from exported parameters, numpy only."""
    X = np.asarray(X, np.float32)
    n_cls = len(p["classes"])
    if kind == "svm":
        dec = (X @ p["coef"].T + p["intercept"]).astype(np.float64)  # one column per pair (i, j), i < j, libsvm order
        ii, jj = np.triu_indices(n_cls, 1)
        first = np.zeros((len(ii), n_cls))
        first[np.arange(len(ii)), ii] = 1.0
        second = np.zeros((len(ii), n_cls))
        second[np.arange(len(ii)), jj] = 1.0
        pos = (dec > 0).astype(np.float64)
        votes = pos @ first + (1.0 - pos) @ second
        conf = dec @ first - dec @ second
        # sklearn's tie-breaking: votes plus a squashed sum of confidences (< 1/3 of a vote)
        return votes + conf / (3 * (np.abs(conf) + 1))
    if kind == "logreg":
        return _softmax(X @ p["coef"].T + p["intercept"])
    if kind == "knn":
        d = distances(X, p["train"], "euclidean")
        k = min(int(p["k"]), d.shape[1])
        nn = np.argsort(d, axis=1, kind="stable")[:, :k]
        w = 1.0 / np.maximum(np.take_along_axis(d, nn, 1), 1e-9) if bool(p["distance_weights"]) else np.ones(nn.shape)
        out = np.zeros((len(X), n_cls))
        np.add.at(out, (np.repeat(np.arange(len(X)), k), p["train_y"][nn].ravel()), w.ravel())
        return out / out.sum(1, keepdims=True)
    if kind == "mlp":
        h = np.maximum(X @ p["w1"] + p["b1"], 0.0)
        return _softmax(h @ p["w2"] + p["b2"])
    raise ModelError(f"unknown classifier {kind!r} in the model file")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@dataclass
class _Fitted:
    """A classifier with its standardisation, usable on raw embeddings."""

    kind: str
    mean: np.ndarray
    scale: np.ndarray
    params: dict[str, np.ndarray]

    @classmethod
    def fit(cls, kind: str, hp: dict[str, Any], X: np.ndarray, y: np.ndarray, seed: int = 0, balanced: bool = False) -> _Fitted:
        mean = X.mean(0)
        scale = X.std(0)
        scale[scale < 1e-8] = 1.0
        return cls(kind, mean.astype(np.float32), scale.astype(np.float32), _fit(kind, hp, (X - mean) / scale, y, seed, balanced))

    @property
    def classes(self) -> np.ndarray:
        return self.params["classes"]

    def scores(self, X: np.ndarray) -> np.ndarray:
        return _scores(self.kind, self.params, (np.asarray(X, np.float32) - self.mean) / self.scale)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes[np.argmax(self.scores(X), 1)]


# --- cross-validation ---------------------------------------------------------------------------


def _folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _train_rows(X: np.ndarray, y: np.ndarray, rows: np.ndarray, extra: Extra | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training rows ``rows`` plus the extra (augmented) rows made from them: X, y and each row's original index."""
    if extra is None or not len(extra.source):
        return X[rows], y[rows], rows
    e = extra.of(rows)
    return np.concatenate([X[rows], extra.vectors[e]]), np.concatenate([y[rows], extra.labels[e]]), np.concatenate([rows, extra.source[e]])


def _select(
    kind: str, grid: dict[str, list], X: np.ndarray, y: np.ndarray, seed: int, inner: int = 3, *, extra: Extra | None = None, rows: np.ndarray | None = None,
    balanced: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The grid point with the best mean accuracy over an inner stratified CV (ties: the first).

    ``rows``: the original indices of ``X`` (so that the augmented copies in ``extra`` follow their originals into the inner training folds).
    """
    points = _grid_points(grid)
    if len(points) == 1:
        return points[0], [{"params": points[0], "accuracy": None}]
    smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
    if smallest < 2:  # no inner CV can hold out a photo of every person: the grid's first point, said in the rows
        note = "grid not searched (a person has a single training image; the search needs 2 per person): its first point was used"
        return points[0], [{"params": hp, "accuracy": None, "note": note} for hp in points]
    k = min(inner, smallest)
    splits = _folds(y, k, seed)
    rows = np.arange(len(y)) if rows is None else rows

    def fit_on(tr: np.ndarray) -> _Fitted:
        if extra is None:
            return _Fitted.fit(kind, hp, X[tr], y[tr], seed, balanced)
        e = extra.of(rows[tr])
        return _Fitted.fit(kind, hp, np.concatenate([X[tr], extra.vectors[e]]), np.concatenate([y[tr], extra.labels[e]]), seed, balanced)

    rows_out = []
    for hp in points:
        accs = [float((fit_on(tr).predict(X[te]) == y[te]).mean()) for tr, te in splits]
        rows_out.append({"params": hp, "accuracy": float(np.mean(accs))})
    best = max(range(len(rows_out)), key=lambda i: (rows_out[i]["accuracy"], -i))
    return rows_out[best]["params"], rows_out


def nearest_class_distances(X: np.ndarray, train: np.ndarray, train_y: np.ndarray, n_classes: int, metric: str) -> np.ndarray:
    """``(N, C)``: distance of each row of ``X`` to the nearest training embedding of each class (inf if none)."""
    d = distances(X, train, metric)
    out = np.full((len(X), n_classes), np.inf)
    for c in range(n_classes):
        m = train_y == c
        if m.any():
            out[:, c] = d[:, m].min(1)
    return out


@dataclass
class CVResult:
    """Outcome of k-fold cross-validation of one classifier."""

    classifier: str
    folds: int
    fold_accuracy: list[float]
    fold_params: list[dict[str, Any]]
    oof_pred: np.ndarray  # out-of-fold prediction of every image
    oof_dist: np.ndarray  # distance to the predicted person's nearest training embedding
    stranger_dist: np.ndarray  # distance to the nearest *other* person (the image's person removed)
    threshold: float = float("nan")
    open_set_accuracy: float = float("nan")
    grid_rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be done as asked (e.g. no grid search in a fold)

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.fold_accuracy))

    @property
    def std_accuracy(self) -> float:
        return float(np.std(self.fold_accuracy))

    def to_dict(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier,
            "approach": APPROACH.get(self.classifier, self.classifier),
            "folds": self.folds,
            "fold_accuracy": [round(a, 4) for a in self.fold_accuracy],
            "mean_accuracy": round(self.mean_accuracy, 4),
            "std_accuracy": round(self.std_accuracy, 4),
            "fold_params": self.fold_params,
            "open_set_threshold": round(self.threshold, 4),
            "open_set_accuracy": round(self.open_set_accuracy, 4),
        }


def cross_validate(
    es: EmbeddedSet, classifier: str = "svm", *, folds: int = 10, grid: dict[str, list] | None = None, seed: int = 0, progress=None,
    balance: str = "none", extra: Extra | None = None,
) -> CVResult:
    """Stratified k-fold CV with the hyper-parameters chosen inside each training fold; out-of-fold predictions and distances.

    ``balance="weights"`` fits class-weighted classifiers; ``extra`` (augmented copies, see
    :func:`facelab.train.dataset.augment_rows`) joins a training fold only with its original image,
    and is never scored.
    """
    _sklearn()
    from threadpoolctl import threadpool_limits

    from ..evaluate.identities import best_open_set_threshold

    if classifier not in CLASSIFIERS:
        raise InputError(f"unknown classifier {classifier!r}; choose one of {', '.join(CLASSIFIERS)}")
    y = es.labels
    classes, yi = np.unique(y, return_inverse=True)
    min_count = int(np.bincount(yi).min())
    if min_count < 2:
        few = [str(c) for c, n in zip(classes, np.bincount(yi)) if n < 2]
        raise InputError(f"every person needs at least 2 images for cross-validation; only 1 for: {', '.join(few[:5])}{'...' if len(few) > 5 else ''}")
    k = min(int(folds), min_count)
    if k < 2:
        raise InputError("need at least 2 folds")
    grid = grid if grid is not None else GRIDS[classifier]
    check_mode(balance)
    balanced = balance == "weights"
    metric = metric_of(es.model)
    X = es.vectors
    oof_pred = np.empty(len(y), dtype=classes.dtype)
    oof_dist = np.zeros(len(y))
    stranger = np.zeros(len(y))
    accs, fold_params, notes = [], [], []
    with threadpool_limits(1):  # tiny matrices: BLAS threads only fight over the cores
        for f, (tr, te) in enumerate(_folds(y, k, seed)):
            Xt, yt, _ = _train_rows(X, y, tr, extra)
            hp, rows = _select(classifier, grid, X[tr], y[tr], seed, extra=extra, rows=tr, balanced=balanced)
            if rows and rows[0].get("note") and f"in the CV folds: {rows[0]['note']}" not in notes:
                notes.append(f"in the CV folds: {rows[0]['note']}")
            m = _Fitted.fit(classifier, hp, Xt, yt, seed, balanced)
            pred = m.predict(X[te])
            ncd = nearest_class_distances(X[te], X[tr], yi[tr], len(classes), metric)
            pi = np.searchsorted(classes, pred)
            oof_pred[te] = pred
            oof_dist[te] = ncd[np.arange(len(te)), pi]
            own = ncd.copy()
            own[np.arange(len(te)), yi[te]] = np.inf
            stranger[te] = own.min(1)
            accs.append(float((pred == y[te]).mean()))
            fold_params.append(hp)
            if progress:
                progress(f + 1, k)
    res = CVResult(classifier, k, accs, fold_params, oof_pred, oof_dist, stranger, notes=notes)
    res.threshold, res.open_set_accuracy = best_open_set_threshold(oof_dist, oof_pred == y, stranger)
    return res


def learning_curve(
    es: EmbeddedSet, classifier: str, params: dict[str, Any], *, folds: int = 5, fractions: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0), seed: int = 0,
    balance: str = "none", extra: Extra | None = None,
) -> list[dict[str, float]]:
    """Training and held-out accuracy against the number of training images per person (k-fold, fixed ``params``).

    Each training fold is cut to the first ``fraction`` of every person's images (at least one);
    the held-out fold is always whole.  One row per fraction, means over the folds.
    """
    from threadpoolctl import threadpool_limits

    y = es.labels
    k = max(2, min(int(folds), int(np.bincount(np.unique(y, return_inverse=True)[1]).min())))
    rng = np.random.default_rng(seed)
    out = []
    with threadpool_limits(1):
        splits = _folds(y, k, seed)
        for frac in fractions:
            tr_acc, va_acc, per = [], [], []
            for tr, te in splits:
                keep = []
                for c in np.unique(y[tr]):
                    rows = rng.permutation(tr[y[tr] == c])
                    keep.extend(rows[: max(1, int(round(frac * len(rows))))])
                keep = np.sort(np.array(keep))
                if len(np.unique(y[keep])) < 2:
                    continue
                Xt, yt, _ = _train_rows(es.vectors, y, keep, extra)
                m = _Fitted.fit(classifier, params, Xt, yt, seed, balance == "weights")
                tr_acc.append(float((m.predict(es.vectors[keep]) == y[keep]).mean()))
                va_acc.append(float((m.predict(es.vectors[te]) == y[te]).mean()))
                per.append(len(keep) / len(np.unique(y[keep])))
            if per:
                out.append({"images_per_person": round(float(np.mean(per)), 2), "fraction": frac, "train_accuracy": float(np.mean(tr_acc)), "val_accuracy": float(np.mean(va_acc))})
    return out


# --- the model file -------------------------------------------------------------------------------


class IdentityModel:
    """A trained identity classifier (numpy only): ``identify_vectors``, ``identify_faces``.

    ``meta`` holds everything else: classes, classifier, hyper-parameters,
    embedder and detector settings, the CV scores, the open-set threshold.
    """

    def __init__(self, meta: dict[str, Any], fitted: _Fitted, train: np.ndarray, train_y: np.ndarray):
        self.meta = meta
        self.fitted = fitted
        self.train = np.asarray(train, np.float32)
        self.train_y = np.asarray(train_y, np.int32)
        self.path: str | None = None

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.fitted.classes]

    @property
    def model(self) -> str:
        return str(self.meta["model"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    def save(self, path: str | os.PathLike[str]) -> str:
        p = Path(path)
        arrays = {f"clf_{k}": np.asarray(v) for k, v in self.fitted.params.items()}
        arrays.update({"mean": self.fitted.mean, "scale": self.fitted.scale, "train": self.train, "train_y": self.train_y})
        arrays["meta"] = np.array(json.dumps(self.meta))
        tmp = p.with_name(p.name + ".tmp.npz")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, p)
        except OSError as e:
            raise InputError(f"cannot write the model ({e.strerror or e})", source=str(p)) from None
        self.path = str(p)
        return str(p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IdentityModel:
        p = Path(path)
        meta = read_model_meta(p)
        if meta.get("kind") != KIND:
            raise InputError(f"not an identities model (kind {meta.get('kind')!r})", source=str(p))
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise InputError(f"model format {meta.get('format_version')} is newer than this facelab reads ({FORMAT_VERSION})", source=str(p))
        with np.load(p, allow_pickle=False) as z:
            params = {k[4:]: z[k] for k in z.files if k.startswith("clf_")}
            fitted = _Fitted(meta["classifier"], z["mean"], z["scale"], params)
            out = cls(meta, fitted, z["train"], z["train_y"])
        out.path = str(p)
        return out

    def identify_vectors(self, X: np.ndarray, *, top_k: int = 3) -> list[Identity]:
        """Identity of each embedding: the classifier's person, or ``unknown`` beyond the threshold.

        ``distance`` is to the predicted person's nearest training embedding;
        candidates are the ``top_k`` people by classifier score, with their distances.
        """
        X = np.atleast_2d(np.asarray(X, np.float32))
        scores = self.fitted.scores(X)
        ncd = nearest_class_distances(X, self.train, self.train_y, len(self.classes), metric_of(self.model))
        order = np.argsort(-scores, axis=1, kind="stable")
        thr = self.threshold
        out = []
        for i in range(len(X)):
            best = int(order[i, 0])
            d = float(ncd[i, best])
            cands = [Candidate(self.classes[c], float(ncd[i, c])) for c in order[i, :top_k]]
            out.append(Identity(self.classes[best] if d <= thr else Identity.UNKNOWN, d, thr, cands))
        return out

    def identify_faces(self, faces: list[Face], top_k: int = 3) -> list[Face]:
        """Set ``face.identity`` on faces with embeddings (the protocol of :class:`facelab.gallery.KnownFaces`)."""
        from ..errors import ModelMismatchError

        with_emb = [f for f in faces if f.embedding is not None]
        for f in with_emb:
            if f.embedding.model != self.model:
                raise ModelMismatchError(f"model trained on {self.model!r} embeddings, got {f.embedding.model!r}")
        if with_emb:
            for f, ident in zip(with_emb, self.identify_vectors(np.stack([f.embedding.vector for f in with_emb]), top_k=top_k)):
                f.identity = ident
        return faces


def read_model_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a facelab ``.npz`` model file (``kind``, ...), with clear errors."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such model file", source=str(p))
    with open(p, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # .npz files are zip archives
            raise InputError(
                "not a facelab model file (expected an .npz from 'facelab train identities' or an .onnx from 'facelab train attributes')",
                source=str(p),
            )
    try:
        with np.load(p, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise InputError("not a facelab model file (no metadata)", source=str(p))
            return json.loads(str(z["meta"]))
    except InputError:
        raise
    except Exception as e:  # zip/npz/JSON errors
        raise InputError(f"not a facelab model file ({type(e).__name__}: {e})", source=str(p)) from None


@dataclass
class TrainResult:
    model: IdentityModel
    cv: CVResult
    final_params: dict[str, Any]
    grid_rows: list[dict[str, Any]]
    extra: Extra | None = None  # the augmented copies (balance="augment")
    balance: str = "none"

    def plots(self, es: EmbeddedSet, out_dir: str | os.PathLike[str], stem: str, *, folds: int = 5, seed: int = 0) -> list[str]:
        """PNGs ``<stem>.curves_*.png`` (learning curve: train / held-out accuracy vs images per person; the MLP's loss per epoch)
        and ``<stem>.balance.png`` (images per person before / after balancing)."""
        from .curves import plot_class_counts, plot_curves

        prefix = f"{stem}.curves"
        rows = learning_curve(es, self.cv.classifier, self.final_params, folds=folds, seed=seed, balance=self.balance, extra=self.extra)
        files = plot_curves(rows, out_dir, prefix=prefix, title=f"{self.cv.classifier}: learning curve", x="images_per_person")
        lc = self.model.fitted.params.get("loss_curve")
        if lc is not None and len(lc):
            files += plot_curves([{"epoch": i + 1, "loss": float(v)} for i, v in enumerate(lc)], out_dir, prefix=f"{prefix}_mlp", title="mlp adapter (final fit)")
        b = self.model.meta.get("balance", {})
        after = b.get("after") if b.get("mode", "none") != "none" else None
        files.append(plot_class_counts({"": b.get("before", {})}, {"": after} if after else None, Path(out_dir) / f"{stem}.balance.png", title=f"people ({b.get('mode', 'none')})"))
        return files


def train_identities(
    es: EmbeddedSet,
    classifier: str = "svm",
    *,
    folds: int = 10,
    grid: dict[str, list] | None = None,
    seed: int = 0,
    threshold: float | None = None,
    dataset: dict[str, Any] | None = None,
    progress=None,
    balance: str = "none",
    extra: Extra | None = None,
) -> TrainResult:
    """Cross-validate, then fit the final model on every image; the open-set threshold comes from the CV (unless given).

    ``balance``: ``"weights"`` (class-weighted fits) or ``"augment"`` (augmented copies of the
    images of small classes, ``extra``; computed with :func:`facelab.train.dataset.augment_rows` when not given).
    """
    from threadpoolctl import threadpool_limits

    from .. import __version__

    check_mode(balance)
    if balance == "augment" and extra is None:
        from .dataset import augment_rows

        extra = augment_rows(es, seed=seed)
    if balance != "augment":
        extra = None
    balanced = balance == "weights"
    cv = cross_validate(es, classifier, folds=folds, grid=grid, seed=seed, progress=progress, balance=balance, extra=extra)
    grid = grid if grid is not None else GRIDS[classifier]
    everything = np.arange(len(es))
    X_all, y_all, _ = _train_rows(es.vectors, es.labels, everything, extra)
    with threadpool_limits(1):
        hp, rows = _select(classifier, grid, es.vectors, es.labels, seed, extra=extra, rows=everything, balanced=balanced)
        fitted = _Fitted.fit(classifier, hp, X_all, y_all, seed, balanced)
    before = class_counts(es.labels)
    after = class_counts(y_all) if extra is not None else effective_counts(before, balance)
    classes = fitted.classes
    meta = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "classifier": classifier,
        "approach": APPROACH[classifier],
        "params": hp,
        "grid": grid,
        "grid_search": rows,
        "classes": [str(c) for c in classes],
        "model": es.model,
        "metric": metric_of(es.model),
        "embedding": es.settings,
        "threshold": float(cv.threshold if threshold is None else threshold),
        "threshold_source": "held-out folds (open-set accuracy)" if threshold is None else "given",
        "cv": cv.to_dict(),
        "oof": {"paths": [os.path.abspath(p) for p in es.paths], "pred": [str(p) for p in cv.oof_pred], "distance": [round(float(d), 5) for d in cv.oof_dist]},
        "dataset": dataset or {},
        "balance": {"mode": balance, "before": before, "after": after, "augmented_copies": 0 if extra is None else int(len(extra.source))},
        "trained": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "facelab_version": __version__,
        "seed": seed,
    }
    model = IdentityModel(meta, fitted, es.vectors, np.searchsorted(classes, es.labels))
    return TrainResult(model, cv, hp, rows, extra, balance)


__all__ = ["APPROACH", "CLASSIFIERS", "GRIDS", "KIND", "CVResult", "Extra", "learning_curve", "IdentityModel", "TrainResult", "cross_validate", "read_model_meta", "train_identities"]
