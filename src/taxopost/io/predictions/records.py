"""One prediction record, checked as far as a file alone allows.

What needs the platform (the algorithm's category map, hence the vector's length and whether it
holds probabilities) is checked by whoever stores the record; everything else is checked here,
so a reader of any format yields records that are sound on their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from taxopost.core.size_filter import relative_areas
from taxopost.errors import InputError
from taxopost.io.timestamps import parse_timestamp

#: The fields of a record (docs/formats.md); a reader maps its own format onto them.
FIELDS = frozenset(
    {
        "project",
        "capture_set",
        "image",
        "bbox",
        "detection",
        "detection_confidence",
        "occurrence",
        "algorithm",
        "scores",
        "logits",
        "top_k",
    }
)


@dataclass(frozen=True)
class PredictionRecord:
    """One classifier output for one detection, in plain Python and numpy types.

    ``values`` is a float32 vector of probabilities, or of logits when ``logits`` is true; its
    length is not checked yet (it must match the algorithm's category map). A top-k record holds
    ``top_k``, its ``(class indices, scores)`` pairs, instead (densified by whoever knows the
    category map). A detector-only record (a detection no classifier scored) has neither
    ``values``, ``top_k`` nor ``algorithm``.
    ``detection_confidence`` is the detector's confidence in the box (MegaDetector's ``conf``),
    if known: occurrence consensus can weigh detections by it.
    ``where`` locates the record for messages (``"path:line"``). ``relative_area`` is the box's
    share of its image for a detector of relative boxes without image sizes (MegaDetector).
    ``image_id`` is the image's id in the system the record came from (an Antenna capture id).
    ``paired_logits`` are the logits beside the scores of a source that gives both (an Antenna
    response), ``classified_at`` when the source made the classification.
    """

    where: str
    project: str | None
    capture_set: str
    image_path: str
    width: int | None
    height: int | None
    timestamp: datetime | None
    bbox: list[float] | None
    detection: str
    occurrence: str | None
    algorithm: str | None
    values: np.ndarray | None
    logits: bool
    top_k: tuple[np.ndarray, np.ndarray] | None = None
    detection_confidence: float | None = None
    relative_area: float | None = None
    image_id: str | None = None
    paired_logits: np.ndarray | None = None
    classified_at: datetime | None = None


#: How taxopost names an image in a file it writes when the image has no id of its source: not an
#: id of any other system (an Antenna capture's is a number), and never read back as one.
OWN_IMAGE_ID = "taxopost:"


def record_from_dict(data: object, *, where: str) -> PredictionRecord:
    """Check one record given as the JSON Lines object of docs/formats.md.

    Vectors may be lists of numbers or (from a columnar file) numeric arrays. Raises
    :class:`InputError` naming ``where``, the field and the value of the first fault.
    """
    if not isinstance(data, dict):
        raise InputError("record", type(data).__name__, "each line must be a JSON object", source=where)
    unknown = set(data) - FIELDS
    if unknown:
        raise InputError("record", sorted(unknown), f"unknown fields; expected {sorted(FIELDS)}", source=where)
    image = data.get("image")
    if isinstance(image, str):
        image = {"path": image}
    if not isinstance(image, dict) or not image.get("path"):
        raise InputError("image.path", image, "each record needs an image path", source=where)
    has_scores, has_logits = data.get("scores") is not None, data.get("logits") is not None
    top_k = _top_k(data["top_k"], where) if data.get("top_k") is not None else None
    if has_scores + has_logits + (top_k is not None) > 1:
        raise InputError("scores/logits/top_k", None, "give one of scores, logits or top_k, not several", source=where)
    classified = has_scores or has_logits or top_k is not None
    for key in ("capture_set", "algorithm") if classified else ("capture_set",):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InputError(key, data.get(key), "a non-empty string is required", source=where)
    if not classified and data.get("algorithm") is not None:
        raise InputError("scores/logits", None, "an algorithm's record needs its scores, logits or top_k", source=where)
    field = "scores" if has_scores else "logits"
    values = data.get(field)
    if not classified or top_k is not None:
        numeric = True
    elif isinstance(values, np.ndarray):  # from a columnar file
        numeric = values.ndim == 1 and (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_)
    else:
        numeric = isinstance(values, list) and bool(values) and all(isinstance(v, (int, float)) for v in values)
    if not numeric:
        raise InputError(field, str(values)[:60], "must be a list of numbers", source=where)
    width, height = (pixel_size(image.get(key), f"image.{key}", where) for key in ("width", "height"))
    bbox = data.get("bbox")
    if bbox is not None and not (isinstance(bbox, list) and len(bbox) == 4 and all(is_finite(v) for v in bbox)):
        raise InputError("bbox", bbox, "expected [x1, y1, x2, y2], four numbers", source=where)
    timestamp = parse_timestamp(image.get("timestamp"), field="image.timestamp", source=where)
    image_id = image.get("id")
    if image_id is not None and (isinstance(image_id, bool) or not isinstance(image_id, str | int)):
        raise InputError("image.id", image_id, "an image's id is a string or an integer", source=where)
    vector = _float32(values, field, where) if has_scores or has_logits else None
    box = [float(v) for v in bbox] if bbox is not None else None
    if box is not None:
        check_pixel_box(box, width, height, field="bbox", value=box, source=where)
    confidence = data.get("detection_confidence")
    if confidence is not None and not (_is_number(confidence) and 0 <= confidence <= 1):
        raise InputError(
            "detection_confidence", str(confidence)[:60], "a confidence must be a number in [0, 1]", source=where
        )
    detection = data.get("detection")
    if detection is None:
        detection = ",".join(f"{v:g}" for v in bbox) if bbox else "whole image"
    occurrence = data.get("occurrence")
    project = data.get("project")
    return PredictionRecord(
        where=where,
        project=str(project) if project else None,
        capture_set=data["capture_set"].strip(),
        image_path=str(image["path"]),
        image_id=str(image_id) if image_id is not None and not str(image_id).startswith(OWN_IMAGE_ID) else None,
        width=width,
        height=height,
        timestamp=timestamp,
        bbox=box,
        detection=str(detection),
        occurrence=str(occurrence) if occurrence is not None else None,
        algorithm=data["algorithm"].strip() if classified else None,
        values=vector,
        logits=has_logits,
        top_k=top_k,
        detection_confidence=float(confidence) if confidence is not None else None,
    )


def _top_k(pairs: object, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``[[class index, score], ...]`` as (int64 indices, float32 scores); each class at most once."""
    if not isinstance(pairs, list) or not pairs:
        raise InputError("top_k", str(pairs)[:60], "must be a list of [class index, score] pairs", source=where)
    for k, pair in enumerate(pairs):
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and isinstance(pair[0], int)
            and not isinstance(pair[0], bool)
            and pair[0] >= 0
            and _is_number(pair[1])
        ):
            raise InputError(f"top_k[{k}]", pair, "each pair is [class index >= 0, score]", source=where)
    indices = np.array([pair[0] for pair in pairs], dtype=np.int64)
    if np.unique(indices).size != indices.size:
        k = next(k for k in range(1, indices.size) if indices[k] in indices[:k])
        raise InputError(f"top_k[{k}]", pairs[k], "a class appears twice", source=where)
    return indices, np.array([pair[1] for pair in pairs], dtype=np.float32)


def _float32(values: list | np.ndarray, field: str, where: str) -> np.ndarray:
    """The vector as float32, as it is stored; finiteness is checked with the category map's checks."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float32, copy=False)  # from a columnar file: already numeric
    try:
        return np.asarray(values, dtype=np.float32)
    except (OverflowError, ValueError):  # an integer beyond any float
        raise InputError(
            field, str(values)[:60], "values must be numbers within a float's range", source=where
        ) from None


#: Largest image side taken, in pixels: a JSON integer has no limit, the arrays these go into do.
_MAX_PIXELS = 2**31 - 1


def is_finite(value: object) -> bool:
    """A number (not a boolean) that a float holds finitely: JSON allows 1 followed by 400 zeros."""
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def check_pixel_box(
    box: list[float], width: int | None, height: int | None, *, field: str, value: object, source: str
) -> None:
    """A pixel box ``[x1, y1, x2, y2]`` has ``x1 <= x2``, ``y1 <= y2`` and, given the image's size, lies in it.

    Shared with the readers of formats with pixel boxes, so every entrance refuses the same box;
    ``field`` and ``value`` are what the message names (a JSON path and the box as the file has it).
    """
    if box[2] < box[0] or box[3] < box[1]:
        raise InputError(field, value, "needs x1 <= x2 and y1 <= y2", source=source)
    if width is not None and height is not None:
        try:
            relative_areas(np.array([box]), np.array([[width, height]]))
        except InputError as exc:
            raise InputError(field, value, exc.reason, source=source) from None


def pixel_size(value: object, field: str, source: str) -> int | None:
    """An image's width or height: a positive whole number of pixels (None when not given); shared like
    :func:`check_pixel_box`."""
    if value is None:
        return None
    if not is_finite(value) or value <= 0 or value > _MAX_PIXELS or int(value) != value:
        raise InputError(field, value, "must be a positive whole number of pixels", source=source)
    return int(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
