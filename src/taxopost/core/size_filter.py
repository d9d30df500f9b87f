"""Small-size filter: detections too small to identify become "Not identifiable".

A detection's relative area is its bounding-box area over its image's area. Below
``size_threshold`` it is too small. A detector that gives relative boxes and no image size
(MegaDetector, SpeciesNet) gives the relative area itself (:func:`relative_box_areas`).
Detections with neither cannot be judged: they are skipped and counted, never guessed.
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


def relative_box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas of relative ``[x, y, width, height]`` boxes (MegaDetector's, in image units 0..1).

    Parameters
    ----------
    boxes : array-like of shape (n, 4)

    Returns
    -------
    ndarray of shape (n,), float64
        The box's area within the image (overhang clipped); NaN for a box that is not finite or
        has a negative width or height: such a box is not judged small, it is skipped.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        x1, y1 = np.clip(b[:, 0], 0.0, 1.0), np.clip(b[:, 1], 0.0, 1.0)
        x2, y2 = np.clip(b[:, 0] + b[:, 2], 0.0, 1.0), np.clip(b[:, 1] + b[:, 3], 0.0, 1.0)
        areas = (x2 - x1) * (y2 - y1)
    bad = ~np.isfinite(b).all(axis=1) | (b[:, 2] < 0) | (b[:, 3] < 0)
    areas[bad] = np.nan
    return areas


def small_size_filter(
    bboxes: np.ndarray,
    image_sizes: np.ndarray,
    *,
    relative_area: np.ndarray | None = None,
    size_threshold: float = DEFAULT_SIZE_THRESHOLD,
) -> SizeFilterResult:
    """Flag detections whose relative area is below ``size_threshold`` (see :func:`relative_areas`).

    ``relative_area`` (shape (n,), NaN where unknown) gives the area of detections whose box
    or image size is missing, as a detector of relative boxes reports it.
    """
    threshold = check_size_threshold(size_threshold)
    areas = relative_areas(bboxes, image_sizes)
    if relative_area is not None:
        given = np.asarray(relative_area, dtype=np.float64).reshape(-1)
        if given.shape != areas.shape:
            raise InputError("relative_area", given.shape[0], f"one per box expected ({areas.shape[0]} boxes)")
        fill = np.isnan(areas) & np.isfinite(given)
        areas[fill] = given[fill]
    skipped = np.isnan(areas)
    return SizeFilterResult(relative_area=areas, too_small=~skipped & (areas < threshold), skipped=skipped)


def _first_bad(index: np.ndarray, bad: np.ndarray, values: np.ndarray, field: str, reason: str) -> None:
    if bad.any():
        row = int(index[np.flatnonzero(bad)[0]])
        raise InputError(f"{field}[{row}]", values[row].tolist(), reason)
