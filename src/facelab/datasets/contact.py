"""Contact sheets: one PNG and one self-contained HTML page per person, for a quick human look.

Every raw image gets a tile: its chip (or a thumbnail of the photo when no face
was found), framed green (kept), orange (review: likely another person) or
red (rejected), with the reason and the split underneath.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Sequence

import cv2
import numpy as np

from ..draw import save_image
from ..io import load_image
from .records import CACHE, STATUS_COLORS, ImageRecord, cache_file

TILE = 128
LABEL_H = 30


def _tile_image(r: ImageRecord, out: str) -> np.ndarray | None:
    candidates = [os.path.join(out, r.chip)] if r.chip else []
    candidates.append(cache_file(out, r.source, "thumbs", "jpg"))
    for path in candidates:
        if os.path.isfile(path):
            try:
                return load_image(path)
            except Exception:  # a damaged cache file: show an empty tile instead
                return None
    return None


def _caption(r: ImageRecord) -> tuple[str, str]:
    first = r.split if r.status == "kept" else (r.reason or r.status)
    second = os.path.basename(r.source)
    return first or "", second


def _tile(r: ImageRecord, out: str) -> np.ndarray:
    tile = np.full((TILE + LABEL_H, TILE, 3), 255, np.uint8)
    img = _tile_image(r, out)
    if img is not None:
        h, w = img.shape[:2]
        s = (TILE - 8) / max(h, w)
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        y0, x0 = 4 + (TILE - 8 - small.shape[0]) // 2, 4 + (TILE - 8 - small.shape[1]) // 2
        tile[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    cv2.rectangle(tile, (1, 1), (TILE - 2, TILE - 2), STATUS_COLORS[r.status], 3)
    first, second = _caption(r)
    cv2.putText(tile, first[:20], (4, TILE + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, STATUS_COLORS[r.status], 1, cv2.LINE_AA)
    cv2.putText(tile, second[:22], (4, TILE + 25), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (60, 60, 60), 1, cv2.LINE_AA)
    return tile


def person_sheet(recs: Sequence[ImageRecord], out: str, cols: int = 8) -> np.ndarray:
    """The contact sheet of one person's records as an RGB array."""
    tiles = [_tile(r, out) for r in recs]
    cols = max(1, min(cols, len(tiles)))
    rows = int(math.ceil(len(tiles) / cols))
    th, tw = TILE + LABEL_H, TILE
    sheet = np.full((rows * th, cols * tw, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = t
    return sheet


def _data_uri(img: np.ndarray | None) -> str:
    if img is None:
        return ""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def person_html(person: str, recs: Sequence[ImageRecord], out: str) -> str:
    counts = {s: sum(r.status == s for r in recs) for s in STATUS_COLORS}
    cells = []
    for r in recs:
        img = _tile_image(r, out)
        if img is not None and max(img.shape[:2]) > 160:
            s = 160 / max(img.shape[:2])
            img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        col = "#%02x%02x%02x" % STATUS_COLORS[r.status]
        first, _ = _caption(r)
        title = html.escape(f"{r.source}: {r.status} {r.reason} {r.detail} {r.rule}".strip())
        src = _data_uri(img)
        inner = f'<img src="{src}" alt="{html.escape(r.source)}">' if src else '<div class="none">unreadable</div>'
        cells.append(
            f'<figure title="{title}" style="border-color:{col}">{inner}'
            f'<figcaption><b style="color:{col}">{html.escape(first)}</b><br>{html.escape(os.path.basename(r.source))}</figcaption></figure>'
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(person)}: contact sheet</title><style>"
        "body{font-family:sans-serif;margin:16px}figure{display:inline-block;margin:4px;border:4px solid;padding:2px;width:164px;vertical-align:top}"
        "img{max-width:160px;max-height:160px;display:block;margin:auto}figcaption{font-size:11px;word-break:break-all}"
        ".none{width:160px;height:160px;background:#eee}</style></head><body>"
        f"<h1>{html.escape(person)}</h1><p>{counts['kept']} kept, {counts['review']} to review (likely another person), "
        f"{counts['rejected']} rejected. Hover a tile for details.</p>" + "".join(cells) + "</body></html>"
    )


def contact_sheets(recs: Sequence[ImageRecord], out: str, raw: str | None = None) -> list[str]:
    """Write ``contact/<person>.png`` and ``.html`` for every person; returns the PNG paths."""
    by_person: dict[str, list[ImageRecord]] = {}
    for r in recs:
        by_person.setdefault(r.person, []).append(r)
    folder = os.path.join(out, "contact")
    os.makedirs(folder, exist_ok=True)
    written = []
    for person, group in sorted(by_person.items()):
        png = save_image(person_sheet(group, out), os.path.join(folder, f"{person}.png"))
        with open(os.path.join(folder, f"{person}.html"), "w") as f:
            f.write(person_html(person, group, out))
        written.append(png)
    for fn in os.listdir(folder):  # sheets of people no longer in the raw folder
        if os.path.splitext(fn)[0] not in by_person:
            os.remove(os.path.join(folder, fn))
    return written


__all__ = ["CACHE", "contact_sheets", "person_html", "person_sheet"]
