"""Faces at any angle: the roll measured from the face itself, quarter-turn search, orientation check.

Conventions (as in :mod:`facelab.detect.rotate`): :attr:`Face.rotation` is the
angle (degrees, counter-clockwise on screen, in (-180, 180]) by which the image
must be turned so the face is upright.  A photo turned by ``t`` degrees with
``PIL.Image.rotate(t)`` holds faces of rotation ``-t``.

* :func:`roll_from_points`: the roll of a face from its keypoints or landmarks
  (eyes -> mouth/nose direction, checked against the eye line).  It cannot tell
  an upside-down face a detector took for an upright one: that needs
* :func:`orient_faces`: with a detector that can score a small crop
  (:meth:`SSDFaceDetector.probe`, the BlazeFace family; :func:`checker` lends
  ``blazeface_ft`` to the detectors that cannot), each face is cut out
  turned by 0, 90, 180 and 270 degrees from its current estimate, all crops run
  as one batch; the turn scoring clearly best wins, and the keypoints found in
  that crop give the fine roll (``rotate="auto"``'s first look cuts a face out at the
  other three turns only when its own-roll crop is not sure, :data:`QUICK_LOGIT`).
* :func:`search`: the whole image turned by the quarter turns (plus finer steps
  for detectors that only see near-frontal, upright faces), faces mapped back,
  duplicates across angles merged in the original frame, preferring the view in
  which the face is most upright.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ..types import Box, Face, Landmarks
from .rotate import apply_affine, invert_affine, rotate_image, same_face, upright_crop

#: Faces whose measured roll is below this are processed as upright (landmark models and
#: alignment tolerate it); above it they are turned upright first.
UPRIGHT_TOLERANCE = 12.0
#: ``rotate="auto"`` searches the whole image at other angles when a face is rolled more than this.
AUTO_TRIGGER = 30.0
#: a turned crop must beat the current orientation by this many logits to change it
TURN_MARGIN = 1.0
#: crop side = this x the face box side, resized to the detector's ``probe_size`` (default :data:`PROBE_SIZE`) px
PROBE_CONTEXT = 2.5
PROBE_SIZE = 128


def wrap_angle(a: float) -> float:
    """``a`` in (-180, 180]."""
    a = math.fmod(float(a), 360.0)
    if a <= -180.0:
        a += 360.0
    elif a > 180.0:
        a -= 360.0
    return a


def angle_diff(a: float, b: float) -> float:
    """Smallest absolute difference between two angles (degrees)."""
    return abs(wrap_angle(a - b))


def roll_from_points(lm: Landmarks | None) -> float | None:
    """The rotation that levels the face, from its points (None when the scheme has no eyes).

    The main cue is the direction from the middle of the eyes down to the mouth
    (or the nose) says which way up the face is (it points down on an upright
    face); the eye line gives the angle (a turned head moves the mouth
    sideways, the eye line stays level).
    """
    if lm is None:
        return None
    try:
        le, re_ = (r[:, :2].astype(np.float64).mean(0) for r in (lm.region("left_eye"), lm.region("right_eye")))
    except KeyError:
        return None
    regions = lm.regions()
    low = regions.get("mouth")
    if low is None:
        low = regions.get("nose")
    eyes = (le + re_) / 2.0
    e = re_ - le
    a_eye = -math.degrees(math.atan2(-e[1], e[0])) if np.hypot(*e) > 1e-6 else None
    if low is None:
        return None if a_eye is None else wrap_angle(a_eye)
    d = low[:, :2].astype(np.float64).mean(0) - eyes
    if np.hypot(*d) < 1e-6:
        return None if a_eye is None else wrap_angle(a_eye)
    a_down = -math.degrees(math.atan2(d[0], d[1]))
    if a_eye is None:
        return wrap_angle(a_down)
    # the eye line measures the roll (a turned head moves the mouth sideways, not the eyes);
    # the eyes -> mouth direction only says which way up the face is
    return wrap_angle(a_eye if angle_diff(a_eye, a_down) <= 90.0 else a_eye + 180.0)


def measure_roll(face: Face) -> Face:
    """``face.rotation`` set from its keypoints (kept when it has none)."""
    r = roll_from_points(face.keypoints)
    if r is not None:
        face.rotation = r
    return face


_SP5 = None


def _shape_predictor5():
    """dlib's 5-point model (None when dlib or its model file is missing: the keypoints' roll is kept)."""
    global _SP5
    if _SP5 is None:
        try:
            import dlib

            from ..models import model_path

            _SP5 = dlib.shape_predictor(str(model_path("dlib_sp5")))
        except Exception:  # noqa: BLE001 - optional refinement
            _SP5 = False
    return _SP5 or None


def fine_roll(image: np.ndarray, face: Face, rounds: int = 3) -> Face:
    """``face.rotation`` refined with dlib's 5-point model on the face levelled at its current estimate.

    Detector keypoints are pulled towards the upright pose they were trained on
    (BlazeFace's eyes on a face rolled 15° measure ~5°); the eye corners of the
    5-point model on the levelled crop are accurate to a few degrees.  The
    quarter (which way up) is never changed here: a correction over 45° is ignored.
    """
    sp = _shape_predictor5()
    if sp is None or face.box.width < 8 or face.box.height < 8:
        return face
    import dlib

    from .base import dlib_box

    for _ in range(rounds):
        crop, _m, box = upright_crop(image, face, margin=0.5)
        b = dlib_box(Face(box, face.score, face.detector))
        shape = sp(np.ascontiguousarray(crop), dlib.rectangle(int(round(b.left)), int(round(b.top)), int(round(b.right)), int(round(b.bottom))))
        p = np.array([(q.x, q.y) for q in shape.parts()], np.float64)
        e = p[0:2].mean(0) - p[2:4].mean(0)  # image-left eye -> image-right eye
        r = -math.degrees(math.atan2(-e[1], e[0]))
        if abs(r) > 45.0:
            break
        face.rotation = wrap_angle(face.rotation + r)
        if abs(r) < 1.0:
            break
    return face


#: after a whole-image search, faces whose best turned crop scores below this logit are dropped.  Chosen on
#: the face-boxes *training* photos (30, turned 45° and 90°): 0.85 -> recall 0.899, precision 0.85/0.83;
#: 2.0 -> 0.87-0.89, 0.84-0.88; 1.5 in between (the benchmark scores the validation photos)
SEARCH_MIN_LOGIT = 1.5
#: a face whose best turned crop scores at least this logit is sure enough to decide ``rotate="auto"``
SURE_LOGIT = 4.5


#: a sure face below this logit is also probed half-way between quarter turns (``rotate="auto"``): a face
#: turned ~45° is read by the upright pass as a less sure face of small roll (see :func:`needs_search`) ...
CONFIDENT_LOGIT = 7.0
#: ... and counts as turned when a half-turn crop scores above its own logit minus this.  Both chosen on 300
#: LFW *DevTrain* photos (upright and turned ±45°/±135°): misread faces left unsearched 17 -> 3 of 1,200
#: photos, upright photos searched 3 -> 5 of 300 (7.0/0.0; 8.0/1.5 searched 16 of 300 upright)
HALF_TURN_GAP = 0.0


def needs_search(faces: list[Face]) -> bool:
    """``rotate="auto"``: search the whole image at other angles?

    Yes when nothing was found, when a sure face (orientation check logit >=
    :data:`SURE_LOGIT`) is rolled more than :data:`AUTO_TRIGGER` or its
    orientation is ambiguous, and when no face is sure (a sideways photo's
    upright pass returns weak boxes whose keypoints look upright).  A sure face
    below :data:`CONFIDENT_LOGIT` is also cut out turned 45° either way
    (:func:`orient_faces` with ``half_turns``): a photo turned ~45° shows the upright pass a box of
    the face read at a small roll, and the half-turn crop scores about as well
    (an upright face usually scores lower there).  The photo is
    searched when that holds for at least half its sure faces.  Without the check (no :func:`checker`):
    when nothing was found or a face is rolled.
    """
    if not faces:
        return True
    info = [getattr(f, "_orient", None) for f in faces]
    if all(i is None for i in info):
        return any(abs(f.rotation) > AUTO_TRIGGER for f in faces)
    sure = [(f, i) for f, i in zip(faces, info) if i is not None and i[0] >= SURE_LOGIT]
    if not sure:
        return True
    if any(abs(f.rotation) > AUTO_TRIGGER or i[1] for f, i in sure):
        return True
    # a turned photo turns all its faces alike: at least half the sure faces must look half a quarter off
    votes = sum(getattr(f, "_half", -math.inf) > i[0] - HALF_TURN_GAP for f, i in sure if i[0] < CONFIDENT_LOGIT)
    return 2 * votes >= len(sure)


def can_probe(det) -> bool:
    return callable(getattr(det, "probe", None))


#: frontal detectors (HOG, the MMOD CNN) also fire on upside-down faces, e.g. on the eyes and brows of a face turned
#: 180° read as a face, and the check (BlazeFace crops) may score such a box 5-8 at its own roll, sure enough for
#: :func:`needs_search`.  ``rotate="auto"`` also looks for a frontal detector's faces in the photo turned 180°
#: when one scores below this logit (None: never); the search's check and :func:`dedupe` then keep the surer read.
#: Chosen on 600 LFW *DevTrain* photos (the central face, the ``hog,hog@2,cnn`` chain of facelab.verify): turned
#: 180°, embeddings misread (> 0.2 from the upright one) 6 -> 1 (7.0: 5, 9.0: 1); upright, 36 of 600 photos get the
#: extra look (9.0: 201) and no embedding moves by more than 0.2.  The BlazeFace family checks itself: unaffected.
UPSIDE_DOWN_LOGIT: float | None = 8.0


def doubt_upside_down(det, faces: list[Face]) -> bool:
    """Should ``rotate="auto"`` also look at the photo turned 180° (see :data:`UPSIDE_DOWN_LOGIT`)?"""
    if UPSIDE_DOWN_LOGIT is None or can_probe(det):
        return False
    return any(i is not None and i[0] < UPSIDE_DOWN_LOGIT for i in (getattr(f, "_orient", None) for f in faces))


#: ``rotate="auto"`` with the BlazeFace family: a photo not searched whose sure faces (:data:`SURE_LOGIT`) lean
#: alike, their median roll at least this many degrees, is also looked at levelled at that roll (a tilted photo: the
#: upright pass misses its small faces); its faces are added, and a face found both ways keeps the levelled read
#: (its box drawn on the face upright; upright-pass boxes it lies inside go too); None: never.
#: Chosen on the 204 face-boxes *training* photos turned 0-180° (with :data:`WIDE_BETWEEN`): recall against upright
#: at 15° 0.958 -> 0.967, 30° 0.958 -> 0.965, 45° 0.959 -> 0.967, precision unchanged (0.866-0.904); every value
#: from 3.0 to 12.5 gives that recall there (15.0: 15° 0.963), and the largest looks at the fewest upright photos
#: (300 LFW *DevTrain* photos: 3.0: 69, 7.5: 19, 10.0: 9, 12.5: 6 extra looks).  Keeping the levelled read of a face
#: found both ways (the upright read stayed before), same photos: 30° recall 0.913 -> 0.916, precision 0.878 -> 0.883,
#: 15° precision 0.876 -> 0.877, 0°, 45°, 60° and 135° unchanged (keeping the surer read by the check: the same at 0-45°)
LEVEL_ROLL: float | None = 12.5


def photo_tilt(det, faces: list[Face]) -> float | None:
    """The roll at which ``rotate="auto"`` also looks at a photo whose sure faces lean alike (:data:`LEVEL_ROLL`), or None."""
    if LEVEL_ROLL is None or not can_probe(det):
        return None
    rolls = [f.rotation for f in faces if (i := getattr(f, "_orient", None)) is not None and i[0] >= SURE_LOGIT]
    if not rolls:
        return None
    tilt = float(np.median(rolls))
    return tilt if abs(tilt) >= LEVEL_ROLL else None


#: detectors that cannot score a crop themselves (HOG, the MMOD CNN, Haar, a user's ONNX, fallback chains of
#: these) have their faces' orientation checked by this one: HOG fires on upside-down faces and the 5-point
#: model's eye line cannot tell which way up a face is, so without the check a face turned 180° was embedded
#: upside down and a sideways photo's faces got the roll of a view 30-60° off
ORIENT_CHECKER = "blazeface_ft"


def checker(det):
    """The detector whose :meth:`probe` checks ``det``'s faces: ``det`` itself when it can, else
    :data:`ORIENT_CHECKER` (None when its model file is missing: no check, as before)."""
    if can_probe(det):
        return det
    from ..errors import ModelError
    from .base import DETECTORS

    try:
        chk = DETECTORS.get(ORIENT_CHECKER)
        chk.prepare()
    except ModelError:
        return None
    return chk


def _crop_matrix(face: Face, angle: float, size: int = PROBE_SIZE, context: float = PROBE_CONTEXT) -> np.ndarray:
    cx, cy = face.box.center
    side = max(face.box.width, face.box.height, 1.0) * context
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[0, 2] += size / 2.0 - cx
    m[1, 2] += size / 2.0 - cy
    return m


def _probe(det, image: np.ndarray, jobs: list[tuple[Face, float]]) -> list[tuple[float, np.ndarray, np.ndarray] | None]:
    """Run the detector's probe on crops of ``(face, angle)``; results with the crop matrices."""
    size = int(getattr(det, "probe_size", PROBE_SIZE))
    mats = [_crop_matrix(f, a, size) for f, a in jobs]
    crops = [cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) for m in mats]
    return list(zip(det.probe(crops), mats))


#: ``rotate="auto"``'s first look (:func:`orient_faces` with ``quick``) scores each face's crop at its own roll
#: first and cuts out the other three quarter turns only for faces scoring below this logit.  A face the first look
#: finds best at its own roll and at least :data:`CONFIDENT_LOGIT` sure is neither probed again nor half-turned, so
#: the other crops only matter when one of them wins or comes within :data:`TURN_MARGIN`; on the tuning photos no
#: face this sure at its own roll had such a crop.  Chosen on the quarter-turn logits of the upright pass's
#: faces in 300 LFW *DevTrain* photos (0, ±45, ±90, ±135, 180°; 2,631 faces) and the 204 face-boxes *training*
#: photos (0-180°, 9 angles; 3,691 faces): the surest face whose four crops said "turned" or "ambiguous" scored
#: 7.08 at its own roll (an LFW portrait turned 180°), so 8.0 leaves a margin of 0.9; 76 % of the upright
#: DevTrain faces score at least 8.0 (one crop instead of four: ~2.1 ms instead of ~6 ms); None: always four crops
QUICK_LOGIT: float | None = 8.0


def _quick_probe(det, image: np.ndarray, jobs: list[tuple[Face, float]]) -> list:
    """:func:`_probe` of four quarter-turn crops per face, the three other turns only for faces whose own-roll
    crop scores below :data:`QUICK_LOGIT` (the rest get no hit there: ``-inf``)."""
    if QUICK_LOGIT is None:
        return _probe(det, image, jobs)
    at_roll = _probe(det, image, jobs[0::4])
    doubtful = {i for i, (hit, _m) in enumerate(at_roll) if hit is None or hit[0] < QUICK_LOGIT}
    more = iter(_probe(det, image, [jobs[4 * i + t] for i in sorted(doubtful) for t in (1, 2, 3)]) if doubtful else [])
    size = int(getattr(det, "probe_size", PROBE_SIZE))
    hits: list = []
    for i, first in enumerate(at_roll):
        if i in doubtful:
            hits += [first, next(more), next(more), next(more)]
        else:
            hits += [first] + [(None, _crop_matrix(*jobs[4 * i + t], size)) for t in (1, 2, 3)]
    return hits


def _turn_logits(hits: list, i: int) -> list[float]:
    """The probe logits of face ``i``'s four quarter-turn crops (``-inf`` where a crop holds no face)."""
    return [h[0] if h is not None else -math.inf for h, _ in hits[4 * i : 4 * i + 4]]


def _face_from_probe(face: Face, angle: float, hit, m: np.ndarray, det_name: str, keypoint_model: str, scheme: str) -> Face:
    """The face as seen in a crop turned by ``angle`` (box, keypoints mapped back, measured roll)."""
    logit, box, kps = hit
    inv = invert_affine(m)
    scale = math.hypot(m[0, 0], m[0, 1])
    (cx, cy), = apply_affine(inv, [((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)])
    b = Box.from_center(float(cx), float(cy), float(box[2] - box[0]) / scale, float(box[3] - box[1]) / scale)
    lm_crop = Landmarks(kps, keypoint_model, scheme)
    roll = roll_from_points(lm_crop) or 0.0
    lm = Landmarks(apply_affine(inv, kps), keypoint_model, scheme)
    return Face(b, face.score, det_name, rotation=wrap_angle(angle + roll), keypoints=lm)


#: turns scoring within this many logits of a face's best turn are probed again, centred on what they found
REPROBE_MARGIN = 4.0


def _second_probe(det, image: np.ndarray, faces: list[Face], jobs: list[tuple[Face, float]], hits: list, scheme: str, half_turns: bool) -> tuple[list[list[float]], list[float]]:
    """Second look at each face, all crops in one batch: contending turns re-centred, and half turns.

    * A face read the wrong way up has its box shifted (towards the chin or the
      forehead), so the crop of the true turn is off-centre and scores low: the
      true turn can lose to the wrong one.  Turns scoring at least 0 and within
      :data:`REPROBE_MARGIN` of the best are cut again around the face found in
      them; a second probe that finds the same face (centre within half its
      side) and scores better replaces the first (``hits`` is updated).
    * ``half_turns`` (the upright pass of ``rotate="auto"``): a face whose best
      turn scores below :data:`CONFIDENT_LOGIT` is also cut out turned 45° either
      way from it (see :func:`needs_search`).  In that pass faces below
      :data:`SURE_LOGIT` (they do not decide) and faces sure at their upright
      turn are not probed again.

    Returns the first probe's logits per face (what :func:`orient_faces` filters
    on: a second chance must not turn a false box into a face) and each face's
    best half-turn logit (``-inf`` where not probed).
    """
    first = [_turn_logits(hits, i) for i in range(len(faces))]
    again: list[int] = []
    half_of: list[int] = []
    new_jobs: list[tuple[Face, float]] = []
    for i, logits in enumerate(first):
        best = max(logits)
        top = int(np.argmax(logits))
        if half_turns and ((top == 0 and best >= CONFIDENT_LOGIT) or best < SURE_LOGIT):
            continue  # the upright pass: sure enough, or too weak to decide anything
        close = [t for t in range(4) if logits[t] >= 0.0 and logits[t] > best - REPROBE_MARGIN]
        if len(close) > 1:
            for t in close:
                (hit, m), (f, angle) = hits[4 * i + t], jobs[4 * i + t]
                again.append(4 * i + t)
                new_jobs.append((_face_from_probe(f, angle, hit, m, f.detector, det.keypoint_model, scheme), angle))
        if half_turns and best < CONFIDENT_LOGIT:
            f, angle = jobs[4 * i + top]
            half_of += [i, i]
            new_jobs += [(f, wrap_angle(angle + 45.0)), (f, wrap_angle(angle - 45.0))]
    half = [-math.inf] * len(faces)
    if not new_jobs:
        return first, half
    results = _probe(det, image, new_jobs)
    for j, (g, angle), (hit, m) in zip(again, new_jobs, results):
        if hit is not None and hit[0] > hits[j][0][0]:
            if same_face(g, _face_from_probe(g, angle, hit, m, g.detector, det.keypoint_model, scheme)):
                hits[j] = (hit, m)
    for i, (hit, _m) in zip(half_of, results[len(again) :]):
        if hit is not None:
            half[i] = max(half[i], float(hit[0]))
    return first, half


def orient_faces(
    det,
    image: np.ndarray,
    faces: list[Face],
    *,
    keep_box_if_unturned: bool = True,
    min_logit: float | Sequence[float] | None = None,
    half_turns: bool = False,
    quick: bool = False,
) -> list[Face]:
    """Decide each face's orientation with turned crops (see the module docstring).

    Faces the check leaves at their current quarter keep their box and
    keypoints (``keep_box_if_unturned``) and get the roll measured from them.
    ``min_logit``: drop faces whose best crop scores below it (false boxes from
    turned copies of the image; one value, or one per face); None keeps all.  ``half_turns``: also score the
    doubtful faces half a quarter off (for :func:`needs_search`).  ``quick``: faces sure at their own roll
    (:data:`QUICK_LOGIT`) are not cut out at the other quarter turns, when the detector checks itself (the rule
    was chosen on the BlazeFace family's own boxes; HOG's boxes of upside-down faces can score 5-8 at their own
    roll, see :data:`UPSIDE_DOWN_LOGIT`).
    """
    chk = checker(det) if faces else None
    if chk is None:
        return [measure_roll(f) for f in faces]
    own = chk is det  # else a face the check turns gets the checker's box and keypoints, and its name
    for f in faces:
        measure_roll(f)
    turns = (0.0, 90.0, 180.0, 270.0)
    jobs = [(f, wrap_angle(f.rotation + t)) for f in faces for t in turns]
    hits = _quick_probe(chk, image, jobs) if quick and own else _probe(chk, image, jobs)
    scheme = getattr(chk, "keypoint_scheme", "blazeface6")
    first, half = _second_probe(chk, image, faces, jobs, hits, scheme, half_turns)
    floors = list(min_logit) if isinstance(min_logit, Sequence) else [min_logit] * len(faces)
    out: list[Face] = []
    for i, f in enumerate(faces):
        res = hits[4 * i : 4 * i + 4]
        logits = _turn_logits(hits, i)
        best = int(np.argmax(logits))
        if logits[best] == -np.inf or (floors[i] is not None and max(first[i]) < floors[i]):
            if floors[i] is None:
                out.append(f)
            continue
        ambiguous = best == 0 and max(logits[1:]) > logits[0] - TURN_MARGIN
        if best != 0 and logits[best] < logits[0] + TURN_MARGIN:
            best, ambiguous = 0, True
        f._orient = (float(logits[best]), ambiguous)  # type: ignore[attr-defined]
        f._half = half[i]  # type: ignore[attr-defined]
        if best == 0 and keep_box_if_unturned:
            out.append(f)
            continue
        hit, m = res[best]
        g = _face_from_probe(f, jobs[4 * i + best][1], hit, m, f.detector if own else chk.name, chk.keypoint_model, scheme)
        g.score = max(f.score, 1.0 / (1.0 + math.exp(-min(max(hit[0], -80.0), 80.0))))
        g._orient = (float(logits[best]), ambiguous)  # type: ignore[attr-defined]
        g._half = half[i]  # type: ignore[attr-defined]
        out.append(g)
    return out


def check_logits(det, image: np.ndarray, faces: list[Face]) -> list[float]:
    """The orientation check's best logit of each face over its four quarter turns (``-inf`` where no crop
    holds a face; ``+inf`` for every face when there is no check, see :func:`checker`): low for false boxes
    from turned copies."""
    chk = checker(det) if faces else None
    if chk is None:
        return [math.inf] * len(faces)
    turns = (0.0, 90.0, 180.0, 270.0)
    jobs = [(f, wrap_angle(measure_roll(f).rotation + t)) for f in faces for t in turns]
    hits = _probe(chk, image, jobs)
    return [max(_turn_logits(hits, i)) for i in range(len(faces))]


#: ``rotate=True`` (and ``"auto"`` once triggered): angles besides 0 searched for detectors that tolerate
#: ~45° of roll (the BlazeFace family: small faces are lost half-way between quarter turns, so 45° steps) ...
WIDE_TURNS: tuple[float, ...] = (90.0, -90.0, 180.0, 45.0, -45.0, 135.0, -135.0)
#: ... then the 30° steps between them (small faces are also lost 15-30° from a view), whose faces must convince
#: the check more (:data:`OFF_GRID_MIN_LOGIT`) ...
WIDE_BETWEEN: tuple[float, ...] = (30.0, -30.0, 60.0, -60.0, 120.0, -120.0, 150.0, -150.0)
#: ... and for frontal detectors (HOG, CNN, Haar) that need finer steps: every 15° up to 45° (the old sweep),
#: then every 30°
FRONTAL_TURNS: tuple[float, ...] = (-15.0, 15.0, -30.0, 30.0, -45.0, 45.0, 60.0, -60.0, 90.0, -90.0, 120.0, -120.0, 150.0, -150.0, 180.0)
#: ``rotate="full"``: every 15° (every detector)
FULL_TURNS: tuple[float, ...] = tuple(float(a) for a in range(-165, 181, 15) if a != 0)
#: the check's logit a face found only in a BlazeFace-family view off the 45° grid must reach (others:
#: :data:`SEARCH_MIN_LOGIT`).  The extra views find small faces the 45° grid misses, and more false boxes.  Chosen on
#: the 204 face-boxes *training* photos turned 0-180° (9 angles): the lowest threshold whose precision at every angle
#: stays at least the 45° grid's lowest (0.865): 4.5 (4.0: 0.864; 1.5, the plain threshold: 0.829).  Recall there
#: against upright, 45° grid -> with the 30° steps: 15° 0.954 -> 0.958, 30° 0.947 -> 0.958, 45° 0.956 -> 0.959,
#: 60° 0.948 -> 0.958, 135° 0.967 -> 0.974; precision 0.865-0.909 -> 0.866-0.904.  A searched photo costs about
#: twice as much (15 views instead of 7)
OFF_GRID_MIN_LOGIT = 4.5


def search_angles(det, full: bool = False) -> tuple[float, ...]:
    """The angles :func:`search` tries for ``det`` (``full``: denser)."""
    if full:
        return FULL_TURNS
    return WIDE_TURNS + WIDE_BETWEEN if can_probe(det) else FRONTAL_TURNS


def view_min_logit(det, view: float) -> float:
    """The check's logit a face found in the image turned by ``view`` needs to stay after a search:
    :data:`OFF_GRID_MIN_LOGIT` in a BlazeFace-family view off the 45° grid, else :data:`SEARCH_MIN_LOGIT`."""
    if can_probe(det) and math.fmod(float(view), 45.0) != 0.0:
        return OFF_GRID_MIN_LOGIT
    return SEARCH_MIN_LOGIT


def search(det, image: np.ndarray, angles: Sequence[float], upright: list[Face] | None = None) -> list[Face]:
    """Detect in the image turned by each angle, map faces back, merge duplicates across angles.

    Each detection's rotation is its view's angle plus the roll measured in that
    view; of several detections of one face the one from the view nearest the
    face's consensus rotation (where it is most upright) is kept.
    """
    return merge_views(search_views(det, image, angles, upright))


def search_views(det, image: np.ndarray, angles: Sequence[float], upright: list[Face] | None = None, *, through_canvas: bool = False) -> list[tuple[float, Face]]:
    """Every detection of the image turned by each angle, mapped back: ``(view angle, face)`` pairs.
    ``through_canvas``: see ``detect_turned`` (:meth:`facelab.detect.blazeface.SSDFaceDetector.detect_turned`)."""
    found: list[tuple[float, Face]] = []
    for f in upright if upright is not None else det.detect(image):
        r = roll_from_points(f.keypoints)
        if r is not None and abs(f.rotation) < 1e-9:
            f.rotation = r
        found.append((0.0, f))
    for angle in angles:
        if angle % 360 == 0:
            continue
        rotated, m = rotate_image(image, angle)
        inv = invert_affine(m)
        turned = det.detect_turned(rotated, image, through_canvas=through_canvas) if hasattr(det, "detect_turned") else det.detect(rotated)
        for f in turned:
            r = roll_from_points(f.keypoints)
            (cx, cy), = apply_affine(inv, [f.box.center])
            kps = None
            if f.keypoints is not None:
                kps = Landmarks(apply_affine(inv, f.keypoints.points[:, :2]), f.keypoints.model, f.keypoints.scheme)
            g = Face(Box.from_center(float(cx), float(cy), f.box.width, f.box.height), f.score, f.detector, rotation=wrap_angle(angle + (r or 0.0)), keypoints=kps)
            found.append((float(angle), g))
    return found


def merge_views(found: list[tuple[float, Face]]) -> list[Face]:
    """One face per cluster of detections (centres within half a box side), from the view where it is most upright.

    The cluster's rotation is the score-weighted circular mean of its members'
    estimates (each view's keypoints are pulled towards that view's upright, so
    their consensus is better than any one of them); the member whose view angle
    is nearest to it wins, the better score breaking ties.  Detections scoring
    well below the cluster's best do not compete.
    """
    order = sorted(found, key=lambda vf: -vf[1].score)
    clusters: list[list[tuple[float, Face]]] = []
    for vf in order:
        for c in clusters:
            if same_face(vf[1], c[0][1]):
                c.append(vf)
                break
        else:
            clusters.append([vf])
    out = []
    for c in clusters:
        top = c[0][1].score
        cands = [vf for vf in c if vf[1].score >= top - 0.15]
        x = sum(f.score * math.cos(math.radians(f.rotation)) for _, f in cands)
        y = sum(f.score * math.sin(math.radians(f.rotation)) for _, f in cands)
        consensus = math.degrees(math.atan2(y, x))
        out.append(min(cands, key=lambda vf: (round(angle_diff(vf[0], consensus) / 15.0), -vf[1].score))[1])
    return out


def drop_inner(faces: list[Face]) -> list[Face]:
    """Drop faces whose centre lies inside a face's box at least 3x their area: a turned copy shows
    parts of a face (an eye, the mouth and chin) that a detector takes for a small face."""
    by_size = sorted(faces, key=lambda f: -f.box.area)
    kept: list[Face] = []
    for f in by_size:
        cx, cy = f.box.center
        if not any(k.score >= f.score and k.box.area >= 3.0 * f.box.area and k.box.left < cx < k.box.right and k.box.top < cy < k.box.bottom for k in kept):
            kept.append(f)
    return kept


def overlap_small(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    iw = min(a.right, b.right) - max(a.left, b.left)
    ih = min(a.bottom, b.bottom) - max(a.top, b.top)
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / max(min(a.area, b.area), 1e-9)


#: a face next to a surer one whose roll differs by more than :data:`GHOST_ROLL` is a misread of it when
#: the check is this many logits less sure of it (200 LFW *DevTrain* portraits at 0/45/90/135/180/-90°: the misread
#: boxes kept beside the real face at a roll over 30° off scored 1.6-5.7, the real faces 8.0-15.0)
GHOST_GAP = 3.0
GHOST_ROLL = 30.0
#: boxes of faces whose rolls agree (within :data:`SAME_ROLL`) are one face when the smaller is at least this much
#: inside the other; other rolls (a face read the wrong way up or askew: a shifted, larger box) already at 0.3.  Chosen
#: on the face-boxes *training* photos turned 0-180° (crowds: neighbours' boxes overlap in a turned photo): recall
#: +0.001 to +0.007 at every angle (60°: 0.890 -> 0.897), precision -0.000 to -0.001 against 0.3 for every pair;
#: a window of 20° keeps the recall of 30° with the precision of 15° (and still merges an LFW portrait's misread box
#: 28° off, tests/test_rotation.py)
SAME_ROLL_OVERLAP = 0.5
OTHER_ROLL_OVERLAP = 0.3
SAME_ROLL = 20.0


def _ghost(f: Face, k: Face) -> bool:
    """Is ``f`` a misread of the surer face ``k``?  BlazeFace reads a face upside down as a face whose eyes are
    the real eyes and whose chin is the forehead, and a turned face's eye and mouth as a face at another roll:
    a box of another roll right next to the real one (centres within 1.2 box sides), either opposite or much
    less sure (:data:`GHOST_GAP` logits)."""
    d = angle_diff(f.rotation, k.rotation)
    if d < GHOST_ROLL:
        return False
    (fx, fy), (kx, ky) = f.box.center, k.box.center
    if math.hypot(fx - kx, fy - ky) >= 1.2 * max(k.box.width, k.box.height):
        return False
    fi, ki = getattr(f, "_orient", None), getattr(k, "_orient", None)
    weaker = fi is not None and ki is not None and ki[0] - fi[0] >= GHOST_GAP
    return d >= 120.0 or weaker


def _inside(f: Face, k: Face) -> bool:
    """Is one box mostly inside the other (:data:`SAME_ROLL_OVERLAP` / :data:`OTHER_ROLL_OVERLAP`)?"""
    limit = SAME_ROLL_OVERLAP if angle_diff(f.rotation, k.rotation) <= SAME_ROLL else OTHER_ROLL_OVERLAP
    return overlap_small(f.box, k.box) >= limit


def clash(f: Face, k: Face) -> bool:
    """Are ``f`` and the (surer) ``k`` one face: same place, one box mostly inside the other, or ``f`` a misread of ``k``?"""
    return same_face(f, k) or _inside(f, k) or _ghost(f, k)


def dedupe(faces: list[Face]) -> list[Face]:
    """One face per place after the orientation check.

    Faces at the same spot (centres close, or one box mostly inside the other:
    a face read the wrong way up gets a shifted, larger box) keep the one that
    agrees with the photo's dominant orientation (a turned photo turns all its
    faces alike), then the one the check is surest of; a face of opposite roll right next to a surer one
    is that face read the wrong way up (:func:`_ghost`).
    """

    def sureness(f: Face) -> float:
        info = getattr(f, "_orient", None)
        return info[0] if info is not None else f.score

    mass = [0.0, 0.0, 0.0, 0.0]
    for f in faces:
        mass[int(round(wrap_angle(f.rotation) / 90.0)) % 4] += max(sureness(f), 0.0)
    dominant = 90.0 * int(np.argmax(mass))

    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: (angle_diff(f.rotation, dominant) > 60.0, -sureness(f))):
        if not any(clash(f, k) for k in kept):
            kept.append(f)
    return kept