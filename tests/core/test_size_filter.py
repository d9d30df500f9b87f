"""Small-size filter: relative area strictly below the threshold is too small; unknowns are skipped."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core.size_filter import (
    DEFAULT_SIZE_THRESHOLD,
    EDGE_TOLERANCE_PX,
    check_size_threshold,
    relative_areas,
    relative_box_areas,
    small_size_filter,
)
from taxopost.errors import InputError

NAN = float("nan")


def test_relative_areas_box_over_image():
    areas = relative_areas([[0, 0, 10, 10], [10, 20, 30, 60]], [[100, 100], [200, 100]])
    np.testing.assert_allclose(areas, [0.01, 800 / 20000])
    assert areas.dtype == np.float64


def test_small_size_filter_strictly_below_is_too_small():
    # 8 x 10 px on a 1000 x 100 image: relative area exactly 0.0008, the default threshold.
    boxes = [[0, 0, 8, 10], [0, 0, 7.9, 10], [0, 0, 9, 10]]
    result = small_size_filter(boxes, [[1000, 100]] * 3)
    assert DEFAULT_SIZE_THRESHOLD == 0.0008
    assert result.too_small.tolist() == [False, True, False]
    assert not result.skipped.any()


def test_small_size_filter_custom_threshold():
    result = small_size_filter([[0, 0, 50, 50], [0, 0, 40, 40]], [[100, 100]] * 2, size_threshold=0.2)
    assert result.too_small.tolist() == [False, True]


def test_small_size_filter_skips_missing_box_or_size():
    boxes = [[0, 0, 1, 1], [NAN] * 4, [0, 0, 1, 1], [0, 0, 50, 50]]
    sizes = [[100, 100], [100, 100], [NAN, 100], [100, 100]]
    result = small_size_filter(boxes, sizes)
    assert result.skipped.tolist() == [False, True, True, False]
    assert int(result.skipped.sum()) == 2  # counted
    assert result.too_small.tolist() == [True, False, False, False]  # skipped rows are never too small
    assert np.isnan(result.relative_area[[1, 2]]).all()


def test_small_size_filter_box_on_the_edge_within_tolerance():
    # A detector may round a corner one pixel past the image: tolerated, and clipped.
    result = small_size_filter([[-EDGE_TOLERANCE_PX, 0, 100 + EDGE_TOLERANCE_PX, 50]], [[100, 100]])
    np.testing.assert_allclose(result.relative_area, [0.5])


def test_small_size_filter_no_detections():
    result = small_size_filter(np.empty((0, 4)), np.empty((0, 2)))
    assert result.too_small.shape == (0,)


@pytest.mark.parametrize("value", [0.5, "0.25", 1e-9, 0.999])
def test_check_size_threshold_accepts_open_interval(value):
    assert check_size_threshold(value) == float(value)


def test_relative_box_areas_clip_overhang_and_skip_bad_boxes():
    boxes = [[0.1, 0.2, 0.3, 0.4], [0.9, 0.9, 0.2, 0.2], [0.1, 0.1, -0.1, 0.2], [np.nan, 0, 0.1, 0.1]]
    areas = relative_box_areas(boxes)
    np.testing.assert_allclose(areas[:2], [0.12, 0.01])
    assert np.isnan(areas[2:]).all()


def test_small_size_filter_uses_the_relative_area_where_box_or_size_is_missing():
    boxes = np.array([[0, 0, 10, 10], [np.nan] * 4, [np.nan] * 4, [0, 0, 500, 500]], dtype=float)
    sizes = np.array([[1000, 1000], [np.nan, np.nan], [np.nan, np.nan], [1000, 1000]], dtype=float)
    given = np.array([0.5, 1e-4, np.nan, 1e-5])  # a pixel box wins over a given area
    result = small_size_filter(boxes, sizes, relative_area=given)
    assert result.too_small.tolist() == [True, True, False, False]
    assert result.skipped.tolist() == [False, False, True, False]
    np.testing.assert_allclose(result.relative_area[[0, 1, 3]], [1e-4, 1e-4, 0.25])
    with pytest.raises(InputError, match="relative_area=3: one per box expected"):
        small_size_filter(boxes, sizes, relative_area=given[:3])
