"""Small-size filter: detections too small to identify become "Not identifiable".

A detection's relative area is its bounding-box area over its image's area. Below
``size_threshold`` it is too small. Detections without a box or an image size cannot be judged:
they are skipped and counted, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxopost.errors import InputError

DEFAULT_SIZE_THRESHOLD = 0.0008
#: The name and rank of the label the filter writes.
NOT_IDENTIFIABLE = "Not identifiable"
#: Detectors round box corners; a box may overhang its image by this many pixels.
EDGE_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class SizeFilterResult:
    """Per-detection outcome; arrays of shape (n,).

    ``relative_area`` is NaN where ``skipped``; ``too_small`` is False there.
    """

    relative_area: np.ndarray
    too_small: np.ndarray
    skipped: np.ndarray


def check_size_threshold(value: object, *, field: str = "size_threshold") -> float:
    """A relative area in the open interval (0, 1)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(field, value, "must be a number in (0, 1)") from None
    if not (0.0 < number < 1.0):
        raise InputError(field, value, "must be in the open interval (0, 1): a share of the image area")
    return number


def relative_areas(bboxes: np.ndarray, image_sizes: np.ndarray, *, field: str = "bbox") -> np.ndarray:
    """Bounding-box area over image area.

    Parameters
    ----------
    bboxes : array-like of shape (n, 4)
        ``x1, y1, x2, y2`` in pixels; a row of NaN means "no box".
    image_sizes : array-like of shape (n, 2)
        ``width, height`` in pixels; NaN means "unknown size".

    Returns
    -------
    ndarray of shape (n,), float64
        NaN where the box or the size is missing. Raises :class:`InputError` for a box with
        ``x2 < x1`` or ``y2 < y1``, a box outside its image, or a size that is not positive.
    """
    boxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    if boxes.shape[0] != sizes.shape[0]:
        raise InputError("image_sizes", sizes.shape[0], f"one size per box expected ({boxes.shape[0]} boxes)")
    known = ~np.isnan(boxes).any(axis=1) & ~np.isnan(sizes).any(axis=1)
    b, s = boxes[known], sizes[known]
    index = np.flatnonzero(known)
    _first_bad(index, ~np.isfinite(b).all(axis=1) | ~np.isfinite(s).all(axis=1), boxes, field, "must be finite")
    _first_bad(index, (s <= 0).any(axis=1), sizes, "image size", "width and height must be positive")
    _first_bad(index, (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]), boxes, field, "needs x1 <= x2 and y1 <= y2")
    tol = EDGE_TOLERANCE_PX
    outside = (b[:, :2] < -tol).any(axis=1) | (b[:, 2] > s[:, 0] + tol) | (b[:, 3] > s[:, 1] + tol)
    _first_bad(index, outside, boxes, field, f"lies outside its image (by more than {tol:g} px)")
    areas = np.full(boxes.shape[0], np.nan)
    clipped = np.clip(b, 0.0, np.concatenate([s, s], axis=1))
    areas[known] = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) / (s[:, 0] * s[:, 1])
    return areas


def small_size_filter(
    bboxes: np.ndarray, image_sizes: np.ndarray, *, size_threshold: float = DEFAULT_SIZE_THRESHOLD
) -> SizeFilterResult:
    """Flag detections whose relative area is below ``size_threshold`` (see :func:`relative_areas`)."""
    threshold = check_size_threshold(size_threshold)
    areas = relative_areas(bboxes, image_sizes)
    skipped = np.isnan(areas)
    return SizeFilterResult(relative_area=areas, too_small=~skipped & (areas < threshold), skipped=skipped)


def _first_bad(index: np.ndarray, bad: np.ndarray, values: np.ndarray, field: str, reason: str) -> None:
    if bad.any():
        row = int(index[np.flatnonzero(bad)[0]])
        raise InputError(f"{field}[{row}]", values[row].tolist(), reason)
