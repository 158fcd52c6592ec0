"""Training curves and class-count plots as PNG, shared by every ``facelab train`` command.

:func:`plot_curves` turns a JSON history (one dict per epoch) into
``<prefix>_loss.png`` and, when the history has them, ``<prefix>_accuracy.png``
(accuracy, recall, precision...) and ``<prefix>_metrics.png`` (errors such as
MAE or NME that are not the loss).  Nested dicts are flattened
(``{"val": {"recall": 0.9}}`` -> ``val_recall``); a series whose name starts with
``val`` is drawn dashed in the colour of its training twin (``loss`` /
``val_loss``, ``train_nme`` / ``val_nme``).

:func:`plot_class_counts` draws per-class counts before and after balancing.

matplotlib (``pip install 'facelab[train]'``) is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import FacelabError

#: Keys of an epoch record that are bookkeeping, not curves.
SKIP = frozenset({"epoch", "lr", "seconds", "s", "minutes", "score", "note", "msg", "step", "fraction"})
_ACC_WORDS = ("acc", "recall", "precision", "ap", "f1", "auc")


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise FacelabError("plots need matplotlib: pip install 'facelab[train]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of one epoch record, nested keys joined by ``_`` (bookkeeping keys skipped)."""
    out: dict[str, float] = {}
    for k, v in record.items():
        if k in SKIP:
            continue
        name = f"{prefix}_{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, name))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None and math.isfinite(float(v)):
            out[name] = float(v)
    return out


def _group(name: str) -> str:
    low = name.lower()
    if "loss" in low:
        return "loss"
    last = low.rsplit("_", 1)[-1]
    if any(w == last or last.startswith(w) for w in _ACC_WORDS):
        return "accuracy"
    return "metrics"


def _twin(name: str) -> str:
    """The name shared by a training series and its validation twin."""
    for p in ("val_", "train_", "val ", "train "):
        if name.startswith(p):
            return name[len(p):]
    return "loss" if name == "loss" else name


def plot_curves(
    history: Iterable[Mapping[str, Any]], out_dir: str | os.PathLike[str], *, prefix: str = "curves", title: str = "", x: str = "epoch"
) -> list[str]:
    """Per-epoch PNG curves of ``history`` in ``out_dir``; returns the files written (none for an empty history).

    ``x`` names the key of the horizontal axis (``epoch``; ``images_per_person`` for a learning curve).
    """
    rows = [r for r in history if isinstance(r, Mapping) and x in r and not r.get("msg")]
    if not rows:
        return []
    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        for k, v in flatten({kk: vv for kk, vv in r.items() if kk != x}).items():
            xs, ys = series.setdefault(k, ([], []))
            xs.append(float(r[x]))
            ys.append(v)
    groups: dict[str, list[str]] = {}
    for k in series:
        groups.setdefault(_group(k), []).append(k)
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for g in ("loss", "accuracy", "metrics"):
        names = sorted(groups.get(g, []), key=lambda n: (_twin(n), n.startswith("val")))
        if not names:
            continue
        twins = list(dict.fromkeys(_twin(n) for n in names))
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        for n in names:
            xs, ys = series[n]
            c = colours[twins.index(_twin(n)) % len(colours)]
            ax.plot(xs, ys, "--" if n.startswith("val") else "-", color=c, marker="o" if len(xs) < 30 else None, ms=3, label=n)
        if x == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(g)
        ax.set_title(f"{title}: {g}" if title else g)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{prefix}_{g}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(str(path))
    return written


def plot_class_counts(
    before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]] | None, path: str | os.PathLike[str], *, title: str = "class balance"
) -> str:
    """Bar plots of per-class counts, one panel per task: ``before`` and (if given) ``after`` balancing, side by side."""
    plt = _plt()
    tasks = [t for t in before if before[t]]
    if not tasks:
        raise FacelabError("no class counts to plot")
    fig, axes = plt.subplots(len(tasks), 1, figsize=(max(6.0, 0.6 * max(len(before[t]) for t in tasks) + 2), 3.0 * len(tasks)), dpi=100, squeeze=False)
    for ax, t in zip(axes[:, 0], tasks):
        names: Sequence[str] = list(before[t])
        xs = range(len(names))
        w = 0.4 if after else 0.8
        ax.bar([x - (w / 2 if after else 0) for x in xs], [before[t][n] for n in names], width=w, label="before")
        if after:
            ax.bar([x + w / 2 for x in xs], [after[t].get(n, 0.0) for n in names], width=w, label="after")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names, rotation=30 if max(len(n) for n in names) > 6 else 0, ha="right" if max(len(n) for n in names) > 6 else "center", fontsize=8)
        ax.set_ylabel("images (effective)" if after else "images")
        ax.set_title(f"{title}: {t}" if t else title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return str(p)


__all__ = ["flatten", "plot_class_counts", "plot_curves"]
