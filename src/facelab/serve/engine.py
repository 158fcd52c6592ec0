"""The server's work, as plain blocking functions over the Python API (run in worker threads).

One :class:`Engine` per worker process: it opens the gallery and loads every
model once, at start-up (:meth:`Engine.prepare`), so requests never pay for it.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api import VERIFY_DETECTOR, VERIFY_MIN_FACE
from ..api import verify as api_verify
from ..errors import InputError
from ..gallery import EnrollResult, Gallery
from ..pipeline import FaceAnalysis
from ..types import Box, Face, ImageResult, Verification
from .settings import Settings

#: Annotated images are scaled down to at most this many pixels on their long side.
ANNOTATED_MAX_SIDE = 1280


class Engine:
    """Models, gallery and the operations the routes call."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.gallery = Gallery(settings.gallery_url, detector=settings.detector, min_face=settings.min_face)
        self.ready = False
        self.error: str | None = None
        self._lock = threading.Lock()

    # --- start-up ------------------------------------------------------------------

    def prepare(self) -> None:
        """Open the gallery and load every model (a dry run on a blank image warms each one up)."""
        from ..attributes import prepare_models
        from ..detect import detect

        self.gallery.store  # noqa: B018  (opens it: a bad --db fails at start, not on the first request)
        blank = np.full((64, 64, 3), 127, np.uint8)
        for det in self.settings.detectors:
            self.pipeline(det, landmarks=True, embed=True).prepare().get(blank)
        self.gallery.pipeline.prepare()
        detect(blank, VERIFY_DETECTOR, min_face=VERIFY_MIN_FACE, rotate=False)  # what /v1/verify uses
        if self.settings.preload_actions:
            prepare_models(self.settings.preload_actions)
        self.ready = True

    def close(self) -> None:
        self.gallery.close()

    # --- pipelines -------------------------------------------------------------------

    def check_detector(self, detector: str | None) -> str:
        det = detector or self.settings.detector
        if det not in self.settings.detectors:
            raise InputError(f"detector {det!r} is not offered by this server (choose from: {', '.join(self.settings.detectors)})")
        return det

    def pipeline(
        self, detector: str | None = None, *, landmarks: bool | str = False, embed: bool = False, actions: Sequence[str] = ()
    ) -> FaceAnalysis:
        """The pipeline for one request (cheap: models are shared per process).

        Embeddings are made the way the gallery makes them (its embedder and
        flip setting), so they can be identified against it.
        """
        lm = (landmarks if isinstance(landmarks, str) else self.settings.landmarks) if landmarks else None
        need_embedding = embed or bool(actions)  # utk-dlib attributes reuse the embedding
        return FaceAnalysis(
            detector=self.check_detector(detector),
            landmarks=lm,
            embedder=self.gallery.embedder_spec if need_embedding else None,
            flip=self.gallery.flip,
            attributes=tuple(actions),
            detector_options={"min_face": self.settings.min_face},
        )

    # --- operations -----------------------------------------------------------------

    def faces(self, image: np.ndarray, pipeline: FaceAnalysis, *, identify: bool | None = None, top_k: int = 3) -> list[Face]:
        """Faces of ``image``; ``identify``: True (an empty gallery is an error), None (only when the gallery has people), False."""
        faces = pipeline.get(image)
        if identify is None:
            identify = bool(faces) and pipeline.embedder is not None and len(self.gallery) > 0
        if identify:
            if pipeline.embedder is None:
                raise InputError("identification needs embeddings")
            self.gallery.check_ready()
            self.gallery.identify_faces(faces, top_k)
        return faces

    def identify(self, image: np.ndarray, top_k: int) -> list[Face]:
        return self.gallery.identify(image, top_k=top_k)

    def verify(self, a: np.ndarray, b: np.ndarray, threshold: float | None) -> Verification:
        return api_verify(a, b, threshold=threshold)

    def enroll(self, name: str, images: list[np.ndarray], labels: list[str], box: Box | None = None) -> list[EnrollResult]:
        """Enrol the largest face of each image (of the region around ``box`` when given) as ``name``."""
        if box is not None:
            images = [crop_around(img, box) for img in images]
        results = self.gallery.enroll(name, images)
        for r, label in zip(results, labels):
            r.source = label
        return results


def crop_around(image: np.ndarray, box: Box, margin: float = 1.0) -> np.ndarray:
    """The region of ``image`` around ``box``, grown by ``margin`` box sizes on every side (so the detector sees context)."""
    h, w = image.shape[:2]
    b = box.scaled(1.0 + 2.0 * margin).clipped(w, h)
    x0, y0, x1, y1 = int(b.left), int(b.top), int(np.ceil(b.right)), int(np.ceil(b.bottom))
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise InputError(f"box {box.to_dict()} is outside the {w}x{h} image or too small")
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def result_dict(source: str, image: np.ndarray, faces: list[Face], *, embeddings: bool = True, annotate: bool = False) -> dict[str, Any]:
    """``ImageResult.to_dict()`` (+ ``annotated_image``, a JPEG data URL, when asked)."""
    if not embeddings:
        for f in faces:
            f.embedding = None
    d = ImageResult(source, int(image.shape[1]), int(image.shape[0]), faces).to_dict()
    if annotate:
        d["annotated_image"] = annotated_data_url(image, faces)
    return d


def image_data_url(image: np.ndarray, fmt: str = "png") -> str:
    """An RGB image as a PNG or JPEG data URL (full size)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG" if fmt == "png" else "JPEG", **({} if fmt == "png" else {"quality": 90}))
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode()


def annotated_data_url(image: np.ndarray, faces: list[Face]) -> str:
    from PIL import Image

    from ..draw import draw_faces

    out = Image.fromarray(draw_faces(image, faces))
    if max(out.size) > ANNOTATED_MAX_SIDE:
        out.thumbnail((ANNOTATED_MAX_SIDE, ANNOTATED_MAX_SIDE))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


__all__ = ["ANNOTATED_MAX_SIDE", "Engine", "annotated_data_url", "crop_around", "image_data_url", "result_dict"]
