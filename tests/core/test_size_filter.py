"""Small-size filter: relative area strictly below the threshold is too small; unknowns are skipped."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core.size_filter import (
    DEFAULT_SIZE_THRESHOLD,
    EDGE_TOLERANCE_PX,
    check_size_threshold,
    relative_areas,
    small_size_filter,
)

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
