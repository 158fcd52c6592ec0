"""A face tracker: stable IDs across frames from box overlap (IoU) and embeddings.

Each detection is matched to a track when

* its box overlaps the track's predicted box (IoU >= ``iou_min``) and, when both
  have embeddings, the faces are not clearly different people (distance <=
  ``max_distance_iou``); or
* without overlap (a fast move, or back after an occlusion of up to ``max_age``
  frames), its embedding is close to the track's (distance <= ``max_distance``):
  re-identification by appearance.

Pairs are assigned greedily, best first (IoU-backed pairs before appearance-only
ones).  A track's embedding is the running mean of its faces', so identification
and attributes are computed per track, on better evidence than one frame, and
only a few times per track (:meth:`Track.due`), not on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..embed import distances
from ..types import Attribute, Box, Face, Identity, Landmarks


@dataclass
class Track:
    """One person followed through the video."""

    id: int
    face: Face  # the last face matched (box, landmarks, score)
    first_frame: int
    last_frame: int
    hits: int = 1
    embedding: np.ndarray | None = None  # running mean of the faces' embeddings
    model: str | None = None
    velocity: tuple[float, float] = (0.0, 0.0)  # box centre motion, pixels per frame
    identity: Identity | None = None
    attributes: dict[str, Attribute] = field(default_factory=dict)
    best: Face | None = None  # the best shot so far (highest face.quality score), when quality is measured
    best_frame: int = -1
    _n_emb: int = 0
    _attr_acc: dict[str, dict[str, Any]] = field(default_factory=dict)
    _last_update: int = -1  # hits at the last identification/attributes update

    @property
    def name(self) -> str | None:
        return self.identity.name if self.identity is not None else None

    def predicted_box(self, frame: int) -> Box:
        """The box moved along the track's velocity to ``frame``."""
        dt = frame - self.last_frame
        b = self.face.box
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        return Box(b.left + dx, b.top + dy, b.right + dx, b.bottom + dy)

    def predicted_face(self, frame: int) -> Face:
        """The last face moved to ``frame`` (box and landmarks), with the track's identity and attributes, for drawing."""
        dt = frame - self.last_frame
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        f = self.face
        lm = f.landmarks
        if lm is not None and dt:
            pts = lm.points.copy()
            pts[:, :2] += np.array([dx, dy], np.float32)
            lm = Landmarks(pts, lm.model, lm.scheme)
        return Face(
            self.predicted_box(frame),
            f.score,
            f.detector,
            f.rotation,
            landmarks=lm,
            identity=self.identity,
            attributes=dict(self.attributes),
        )

    def add(self, face: Face, frame: int) -> None:
        (cx0, cy0), (cx1, cy1) = self.face.box.center, face.box.center
        dt = max(1, frame - self.last_frame)
        v = ((cx1 - cx0) / dt, (cy1 - cy0) / dt)
        self.velocity = (0.5 * self.velocity[0] + 0.5 * v[0], 0.5 * self.velocity[1] + 0.5 * v[1])
        self.face, self.last_frame, self.hits = face, frame, self.hits + 1
        self._add_embedding(face)

    def _add_embedding(self, face: Face) -> None:
        if face.embedding is None:
            return
        v = face.embedding.vector.astype(np.float64)
        if self.embedding is None:
            self.embedding, self.model, self._n_emb = v, face.embedding.model, 1
        elif face.embedding.model == self.model:
            self._n_emb += 1
            self.embedding = self.embedding + (v - self.embedding) / self._n_emb

    def due(self) -> bool:
        """Time to (re)identify and (re)estimate attributes: at the 1st, 2nd, 4th, 8th... hit (log2 of the frames, not every frame)."""
        return self.hits != self._last_update and (self.hits & (self.hits - 1)) == 0

    def mark_updated(self) -> None:
        self._last_update = self.hits

    def add_attributes(self, attrs: dict[str, Attribute]) -> None:
        """Average attribute estimates over the track: mean of numbers (age), mean class probabilities (others)."""
        for key, a in attrs.items():
            acc = self._attr_acc.setdefault(key, {"n": 0, "num": 0.0, "probs": {}, "model": a.model})
            acc["n"] += 1
            if isinstance(a.value, (int, float)) and not isinstance(a.value, bool):
                acc["num"] += float(a.value)
                self.attributes[key] = Attribute(acc["num"] / acc["n"], a.model, None, a.confidence)
            elif a.probabilities:
                for k, p in a.probabilities.items():
                    acc["probs"][k] = acc["probs"].get(k, 0.0) + float(p)
                probs = {k: v / acc["n"] for k, v in acc["probs"].items()}
                best = max(probs, key=probs.get)
                self.attributes[key] = Attribute(best, a.model, probs, probs[best])
            else:
                self.attributes[key] = a

    def to_dict(self, fps: float | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "track": self.id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "hits": self.hits,
            "name": self.name,
        }
        if fps:
            d["first_time"] = round(self.first_frame / fps, 3)
            d["last_time"] = round(self.last_frame / fps, 3)
        if self.identity is not None:
            d["identity"] = self.identity.to_dict()
        if self.attributes:
            d["attributes"] = {k: a.to_dict() for k, a in self.attributes.items()}
        if self.best is not None and self.best.quality is not None:
            d["best_shot"] = {"frame": self.best_frame, "quality": round(self.best.quality.score, 4), "box": self.best.box.to_dict()}
        return d

    def consider(self, face: Face, frame: int) -> None:
        """Keep ``face`` as the best shot when its quality score beats the best so far."""
        if face.quality is not None and (self.best is None or face.quality.score > self.best.quality.score):
            self.best, self.best_frame = face, frame


class Tracker:
    """Assigns every detected face to a track (see the module docstring).

    ``max_age``: frames a track survives unseen (occlusions, missed detections);
    ``min_hits``: detections before a track is reported (filters one-frame false positives).
    """

    def __init__(
        self,
        *,
        iou_min: float = 0.2,
        max_distance: float = 0.5,
        max_distance_iou: float = 0.75,
        max_age: int = 30,
        min_hits: int = 1,
        metric: str = "euclidean",
    ):
        self.iou_min, self.max_distance, self.max_distance_iou = iou_min, max_distance, max_distance_iou
        self.max_age, self.min_hits, self.metric = max_age, min_hits, metric
        self.tracks: list[Track] = []  # alive
        self.ended: list[Track] = []
        self._next_id = 1

    def _distance(self, t: Track, f: Face) -> float | None:
        if t.embedding is None or f.embedding is None or f.embedding.model != t.model:
            return None
        return float(distances(f.embedding.vector[None].astype(np.float32), t.embedding[None].astype(np.float32), self.metric)[0, 0])

    def update(self, faces: list[Face], frame: int) -> list[Track]:
        """Match the faces detected in ``frame``; returns the tracks seen in this frame (new ones included)."""
        self._expire(frame)
        pairs: list[tuple[float, int, int]] = []
        for ti, t in enumerate(self.tracks):
            pb = t.predicted_box(frame)
            for fi, f in enumerate(faces):
                iou = pb.iou(f.box)
                d = self._distance(t, f)
                if iou >= self.iou_min and (d is None or d <= self.max_distance_iou):
                    pairs.append(((1.0 - iou) + (d if d is not None else 0.5), ti, fi))
                elif d is not None and d <= self.max_distance:
                    pairs.append((2.0 + d, ti, fi))  # appearance only: after every overlap-backed pair
        pairs.sort()
        used_t: set[int] = set()
        used_f: set[int] = set()
        seen: list[Track] = []
        for _, ti, fi in pairs:
            if ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            self.tracks[ti].add(faces[fi], frame)
            seen.append(self.tracks[ti])
        for fi, f in enumerate(faces):
            if fi not in used_f:
                t = Track(self._next_id, f, frame, frame)
                t._add_embedding(f)
                self._next_id += 1
                self.tracks.append(t)
                seen.append(t)
        return [t for t in seen if t.hits >= self.min_hits]

    def _expire(self, frame: int) -> None:
        alive = []
        for t in self.tracks:
            (alive if frame - t.last_frame <= self.max_age else self.ended).append(t)
        self.tracks = alive

    def finish(self) -> list[Track]:
        """End every track; returns all reported tracks (``min_hits`` reached), by id."""
        self.ended.extend(self.tracks)
        self.tracks = []
        return sorted((t for t in self.ended if t.hits >= self.min_hits), key=lambda t: t.id)

    def visible(self, frame: int, within: int) -> list[Track]:
        """Tracks seen in the last ``within`` frames (drawn on frames between detections)."""
        return [t for t in self.tracks if frame - t.last_frame < within and t.hits >= self.min_hits]


__all__ = ["Track", "Tracker"]
