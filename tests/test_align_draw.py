"""Aligned chips and annotated images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import facelab
from facelab.align import align, crop
from facelab.detect import rotate_image
from facelab.draw import COLORS, draw_faces, landmark_colors


@pytest.fixture(scope="module")
def small(obama):
    """obama.jpg at half size: the rotation sweep runs 7 detections, keep them cheap."""
    return cv2.resize(obama, (obama.shape[1] // 2, obama.shape[0] // 2), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("size,padding", [(150, 0.25), (256, 0.5), (112, 0.0)])
def test_align_sizes(obama, size, padding):
    face = facelab.detect(obama)[0]
    chip = align(obama, face, size=size, padding=padding)
    assert chip.shape == (size, size, 3) and chip.dtype == np.uint8


def test_aligned_chip_of_a_tilted_face_is_upright(small):
    """After alignment the eyes are level, whatever the tilt in the photo."""
    rotated, _ = rotate_image(small, 30)
    face = facelab.detect(rotated, rotate=True)[0]
    chip = align(rotated, face, size=200, padding=0.25)
    lm = facelab.landmarks(chip, facelab.detect(chip, rotate=False, min_face=40))[0].landmarks
    left, right = lm.eye_centers()
    angle = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    assert abs(angle) < 5


def test_crop_follows_rotation(small):
    rotated, _ = rotate_image(small, -30)
    face = facelab.detect(rotated, rotate=True)[0]
    chip = crop(rotated, face, size=160, padding=0.2)
    assert chip.shape == (160, 160, 3)
    assert len(facelab.detect(chip, rotate=False, min_face=40)) == 1  # the crop is upright again


def test_arcface_alignment_puts_eyes_on_the_template(obama):
    face = facelab.landmarks(obama)[0]
    chip = align(obama, face, size=112, method="arcface")
    lm = facelab.landmarks(chip, facelab.detect(chip, rotate=False, min_face=30))[0].landmarks
    left, right = lm.eye_centers()
    assert abs(left[0] - 38.3) < 6 and abs(right[0] - 73.5) < 6 and abs(left[1] - 51.7) < 6


def test_landmark_colours_are_fixed(obama):
    face = facelab.landmarks(obama)[0]
    cols = landmark_colors(face.landmarks)
    assert tuple(cols[36]) == COLORS["left_eye"] == (0, 0, 255)  # blue: eye on the image's left
    assert tuple(cols[45]) == COLORS["right_eye"] == (255, 0, 0)  # red
    assert tuple(cols[30]) == COLORS["nose"] == (0, 255, 0)  # green
    assert tuple(cols[60]) == COLORS["mouth"] == (255, 255, 255)  # white
    out = draw_faces(obama, [face])
    x, y = np.round(face.landmarks.points[36]).astype(int)
    assert tuple(out[y, x]) == (0, 0, 255)
    assert not np.array_equal(out, obama) and np.array_equal(obama, facelab.load_image(obama))  # input untouched


def test_draw_rotated_box_and_label(small):
    rotated, _ = rotate_image(small, 30)
    faces = facelab.detect(rotated, rotate=True)
    out = draw_faces(rotated, faces, labels=["someone"])
    assert out.shape == rotated.shape and (out != rotated).any()


LONG_LABEL = "Barack Obama (0.36) 43 male asian happy"


@pytest.mark.parametrize("edge", ["left", "right", "top", "bottom", "narrow"])
def test_labels_stay_inside_the_image_whole(obama, edge):
    """A face at each border (and an image narrower than its label): the label is shifted, wrapped or shrunk,
    never cut (issue 17 point 9)."""
    from facelab.draw import label_layout

    b = facelab.detect(obama)[0].box
    l, t, r, btm = (int(v) for v in (b.left, b.top, b.right, b.bottom))
    img = {
        "left": obama[:, l:], "right": obama[:, : r + 1], "top": obama[t:], "bottom": obama[: btm + 1],
        "narrow": obama[max(0, t - 10) : btm + 10, l : l + (r - l) // 2],
    }[edge]  # fmt: skip
    face = facelab.detect(obama)[0]
    dx, dy = {"left": (l, 0), "top": (0, t), "narrow": (l, max(0, t - 10))}.get(edge, (0, 0))
    face.box = type(b)(b.left - dx, b.top - dy, b.right - dx, b.bottom - dy)
    h, w = img.shape[:2]
    poly = face.polygon()
    scale, lines, (x0, y0, x1, y1) = label_layout(LONG_LABEL, w, h, int(poly[:, 0].min()), int(poly[:, 1].min()), int(poly[:, 1].max()))
    assert 0 <= x0 <= x1 < w and 0 <= y0 <= y1 < h
    assert "".join(s for s, _, _ in lines).replace(" ", "") == LONG_LABEL.replace(" ", "")  # every character is drawn
    for s, tx, ty in lines:
        (tw, th), _ = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        assert 0 <= tx and tx + tw <= w and ty - th >= 0 and ty < h, (s, tx, ty, w, h)
    if edge == "narrow":
        assert len(lines) > 1  # wrapped
    out = draw_faces(img, [face], labels=[LONG_LABEL])
    changed = np.argwhere((out != img).any(axis=2))
    assert len(changed)
