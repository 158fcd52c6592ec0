"""Options and helpers of the commands that read labelled data (``train`` and ``evaluate`` groups)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import NoFaceError
from .common import err

# attributes: manifests, dataset folders, URL fetching
ManifestOpt = Annotated[
    Optional[Path],
    typer.Option("--manifest", help="JSON list of {\"image\": path-or-URL, \"age\", \"gender\", \"emotion\", \"ethnicity\", \"age_group\"} (or {\"tasks\": your label sets, \"items\": [...]}, or a labelling-tool export .jsonl)."),
]

DatasetOpt = Annotated[Optional[tuple[str, Path]], typer.Option("--dataset", help="Import a dataset folder: fer2013 DIR or utkface DIR.")]

TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each URL.")]

MaxMbOpt = Annotated[float, typer.Option("--max-mb", help="Largest image to download, MiB.")]

RetriesOpt = Annotated[int, typer.Option("--retries", help="Retries for a URL that times out or fails with 5xx.")]

CacheOpt = Annotated[Optional[Path], typer.Option("--cache", help="Download cache folder (default ~/.cache/facelab/downloads).")]

# your own label sets: labelling-tool exports, kept epochs
LabelMapOpt = Annotated[
    Optional[list[str]],
    typer.Option("--map", help="Label prefix (or exact label) -> task for labelling-tool exports, e.g. Emotion_=emotion (repeatable; default: Emotion_, Not_Face -> emotion; Age_, others -> age_group; E_ -> ethnicity)."),
]
EpochOpt = Annotated[Optional[int], typer.Option("--epoch", min=1, help="Attributes: the weights of this epoch (kept by 'train attributes --keep all|best:K') instead of the best.")]
BalanceOpt = Annotated[str, typer.Option("--balance", help="Class balance: none, augment (small classes augmented more), weights (class-weighted loss).")]


def make_fetcher(timeout: float, max_mb: float, retries: int, cache: Path | None):
    """The URL fetcher (cache, timeout, size cap, retries) of the attributes commands."""
    from ..attributes.data import Fetcher, default_cache_dir

    return Fetcher(cache or default_cache_dir(), timeout=timeout, max_bytes=int(max_mb * 2**20), retries=retries)


# identities: labelled folders, the embedding cache
LabelRegexOpt = Annotated[
    Optional[str], typer.Option("--label-regex", help="Label = this regex's first group in each file name (flat folders such as Yale), instead of DIR/<name>/.")
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the embedding cache ($FACELAB_HOME/cache).")]


def embed_labelled(folder: Path, label_regex: str | None, settings: dict, no_cache: bool, quiet: bool, limit: int | None = None):
    """Embed a labelled folder (cached), reporting what was left out on stderr."""
    from ..train.dataset import embed_dataset, identity_dataset

    items = identity_dataset(folder, label_regex=label_regex, limit_per_class=limit)
    es = embed_dataset(items, cache=not no_cache, progress=not quiet, **settings)
    for path, why in es.failed:
        err(f"{path}: {why} (left out)")
    if es.fallback.any():
        err(f"{int(es.fallback.sum())} image(s) without a detected face were embedded whole (--whole-image)")
    if (es.n_faces > 1).any():
        err(f"{int((es.n_faces > 1).sum())} image(s) had several faces: the largest was used")
    if not len(es):
        raise NoFaceError(f"no usable image: all {len(items)} failed or had no face (see above; --whole-image embeds face crops whole)", source=str(folder))
    return es


__all__ = ["BalanceOpt", "CacheOpt", "DatasetOpt", "EpochOpt", "LabelMapOpt", "LabelRegexOpt", "ManifestOpt", "MaxMbOpt", "NoCacheOpt", "RetriesOpt", "TimeoutOpt", "embed_labelled", "make_fetcher"]
