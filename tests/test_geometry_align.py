"""IoU/NMS and the 5-point alignment on a real face."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.align import ARCFACE_TEMPLATE, align_face, alignment_matrix, similarity_transform
from maskface.detect import create_detector
from maskface.geometry import crop_padded, iou_matrix, nms, square_crop_box, xywh_to_xyxy


def test_iou_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    np.testing.assert_allclose(iou_matrix(a, b)[0], [1.0, 50 / 150, 0.0, 0.25])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)


def test_nms_keeps_best_of_overlapping():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    keep = nms(boxes, np.array([0.5, 0.9, 0.7]), 0.4)
    assert keep.tolist() == [1, 2]


def test_box_helpers():
    np.testing.assert_allclose(xywh_to_xyxy([[1, 2, 3, 4]]), [[1, 2, 4, 6]])
    np.testing.assert_allclose(square_crop_box([0, 0, 10, 20], 1.0), [-5, 0, 15, 20])
    img = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    crop = crop_padded(img, np.array([-2, -2, 3, 3]))
    assert crop.shape == (5, 5, 3)
    assert np.array_equal(crop[2:, 2:], img[:3, :3])


def test_similarity_transform_recovers_known_warp():
    angle, scale, t = np.deg2rad(17), 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE.astype(np.float64)
    dst = src @ rot.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)


@pytest.mark.parametrize("angle", [0, 10, 25])
def test_alignment_puts_landmarks_on_template(astronaut, angle):
    import cv2

    h, w = astronaut.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    img = cv2.warpAffine(astronaut, rot, (w, h))
    det = create_detector().detect(img)
    assert len(det) == 1
    lm = det.landmarks[0]
    m = alignment_matrix(lm)
    mapped = lm @ m[:, :2].T + m[:, 2]
    # The detector's 5 points on a real (smiling) face land within a few pixels of the template
    # after the warp; without alignment they would be tens of pixels off.
    err = np.linalg.norm(mapped - ARCFACE_TEMPLATE, axis=1)
    assert err.mean() < 7 and err.max() < 10
    crop = align_face(img, lm)
    assert crop.shape == (112, 112, 3)
    # The aligned crops of the straight and rotated photo look alike where the face is:
    # alignment undid the roll.
    straight = align_face(astronaut, create_detector().detect(astronaut).landmarks[0])
    a, b = (cv2.GaussianBlur(x, (0, 0), 2)[30:100, 25:87].astype(float).ravel()
            for x in (crop, straight))
    ncc = np.corrcoef(a, b)[0, 1]
    assert ncc > 0.85  # an unaligned 25-degree roll scores about 0.5
