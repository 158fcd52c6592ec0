"""A rich progress bar around any iterable (on stderr, gone when done)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def track(items: Iterable[T], total: int, what: str, show: bool = True) -> Iterator[T]:
    """Yield ``items``, advancing a bar of ``total`` steps when ``show`` and there is more than one."""
    if not show or total < 2:
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as p:
        task = p.add_task(what, total=total)
        for it in items:
            yield it
            p.advance(task)
