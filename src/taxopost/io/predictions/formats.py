"""Detector + classifier output files (MegaDetector, SpeciesNet, Antenna): one entrance to read, one to write.

The format is detected from the content or named. Readers return a :class:`DetectionFile`;
:func:`write_detection_file` puts a :class:`Revision` back in the file's own format, atomically;
:func:`detection_records` turns a file into the platform's prediction records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import msgspec
import numpy as np

from taxopost.core.size_filter import relative_box_areas
from taxopost.errors import TOO_DEEP, InputError
from taxopost.io.predictions.antenna import antenna_document, is_antenna, read_antenna
from taxopost.io.predictions.detections import (
    LISTED_ONCE,
    DetectionFile,
    check_once,
    decode,
    encode,
    not_valid_json,
    read_bytes,
    short,
)
from taxopost.io.predictions.megadetector import (
    is_megadetector,
    megadetector_chunks,
    megadetector_records,
    read_megadetector,
)
from taxopost.io.predictions.records import PredictionRecord, record_from_dict
from taxopost.io.predictions.revision import Revision
from taxopost.io.predictions.speciesnet import read_speciesnet, speciesnet_document
from taxopost.io.predictions.steps import check_task
from taxopost.io.results import write_atomically

FORMATS = ("megadetector", "speciesnet", "antenna")
_DETECT: dict[str, Callable[[dict], bool]] = {  # on the top-level keys
    "megadetector": is_megadetector,
    "speciesnet": lambda top: "predictions" in top,
    "antenna": lambda top: is_antenna(top) or {"request", "body"} <= set(top),
}
_CONTENT: dict[str, Callable[[DetectionFile, Revision], Iterable[bytes]]] = {
    "megadetector": megadetector_chunks,
    "speciesnet": lambda file, revision: [encode(speciesnet_document(file, revision))],
    "antenna": lambda file, revision: [encode(antenna_document(file, revision))],
}


def detect_format(path: Path | str) -> str | None:
    """The format of a MegaDetector, SpeciesNet or Antenna file, from its top-level keys; None for
    anything else (JSON Lines under a ``.json`` name, say). Parses the top level only.

    Refuses (InputError) an empty file, and one that is neither a JSON document nor JSON Lines
    (a ``NaN``, a cut-off file): read as records, it would be refused for the wrong reason.
    """
    path = Path(path)
    data = read_bytes(path)
    if not data.strip():
        raise InputError("file", str(path), "is empty: no predictions")
    try:
        top = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
    except msgspec.ValidationError:
        return None
    except msgspec.DecodeError as exc:
        first = next(line for line in data.splitlines() if line.strip())
        try:
            msgspec.json.decode(first, type=dict)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            raise not_valid_json(path, data, exc) from None
        return None  # its first line is a record of its own: JSON Lines
    except RecursionError:  # no format nests this deep: not worth trying another reader
        raise InputError("file", str(path), TOO_DEEP) from None
    return next((name for name, test in _DETECT.items() if test(top)), None)


def read_detection_file(
    path: Path | str,
    *,
    format: str | None = None,
    lineage_ranks: Sequence[str] | None = None,
    task: str | None = None,
) -> DetectionFile:
    """Read a MegaDetector, SpeciesNet or Antenna file; ``format`` None detects it from the content.

    ``lineage_ranks`` gives the ranks of a MegaDetector file's plain-lineage descriptions.
    ``task`` is the task about to run (``"rank_rollup"``, ``"class_masking"``): where a row's
    current output is that task's earlier output, the row is read from what that output
    replaced, and writing the file replaces (or, for a row the new run leaves unchanged, undoes)
    that output rather than stacking on it; another task's output is chained on. None (the
    importer): every row as it stands.
    """
    check_task(task)
    path = Path(path)
    if format is not None and format not in FORMATS:
        raise InputError("--format", format, f"must be one of {', '.join(FORMATS)}")
    data = read_bytes(path)
    if format is None:
        try:
            top = msgspec.json.decode(data, type=dict[str, msgspec.Raw])  # the top level only
        except msgspec.ValidationError:
            top = None
        except msgspec.DecodeError as exc:
            raise not_valid_json(path, data, exc) from None
        except RecursionError:
            raise InputError("file", str(path), TOO_DEEP) from None
        format = next((name for name, test in _DETECT.items() if top is not None and test(top)), None)
        if format is None:
            keys = sorted(top)[:8] if top is not None else type(decode(path, data)).__name__
            raise InputError(
                "file",
                str(path),
                f"not a MegaDetector (images, detection_categories), SpeciesNet (predictions) or Antenna "
                f"(source_images, detections) file: top-level keys {keys}",
            )
    if lineage_ranks and format != "megadetector":
        raise InputError("--lineage-ranks", ",".join(lineage_ranks), f"only MegaDetector files need it, not {format}")
    if format == "megadetector":
        return read_megadetector(path, lineage_ranks=lineage_ranks, data=data, task=task)
    if format == "speciesnet":
        return read_speciesnet(path, document=decode(path, data), task=task)
    return read_antenna(path, document=decode(path, data), task=task)


def check_writable(file: DetectionFile) -> None:
    """Refuse (InputError) a file whose format's own tools would refuse it written back, before any work."""
    problem = file.extra.get("unwritable")
    if problem is not None:
        raise problem


def write_detection_file(path: Path | str, file: DetectionFile, revision: Revision, *, field: str = "--output") -> None:
    """Write ``file`` with ``revision`` applied, in its own format; a failed write leaves no partial file.

    ``file`` must have been read for ``revision.task`` (or for no task).
    """
    if file.task not in (None, revision.task):
        raise ValueError(f"the file was read for {file.task!r}, not for {revision.task!r}")
    check_writable(file)
    chunks = _CONTENT[file.format](file, revision)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)

    write_atomically(path, write, field=field)


def detection_records(
    file: DetectionFile,
    *,
    capture_set: str,
    algorithm: str,
    project: str | None = None,
) -> Iterator[PredictionRecord]:
    """One record per detection, in file order; a detection without a classification is a detector-only record.

    A classification is the detection's top-k pairs, densified by the importer over the
    algorithm's category map (absent classes score 0, so top-k rows are partial). Boxes:
    MegaDetector and SpeciesNet files give relative boxes and no image size, so their detections
    are stored whole-image, keyed by the relative box, with the box's relative area (what the
    small-size filter needs); Antenna's pixel boxes and image sizes are kept. A detection's key is
    its box, with ``#`` and its position in the image for a box an earlier detection of the image
    has: the platform keys detections by image and key, so a shared key would drop one. For the
    same reason an image listed twice (a repeated ``file`` or ``filepath``) is refused.
    """
    row_of = np.full(file.n_detections, -1, dtype=np.intp)
    row_of[file.classified] = np.arange(file.classified.size)
    if file.format == "megadetector":
        detections = megadetector_records(file)
    else:
        detections = ((d, file.images[d], det) for d, det in enumerate(file.detections))
    if file.format == "speciesnet":
        first: dict[str, str] = {}
        for d, entry in enumerate(file.detections):
            check_once(first, entry["filepath"], f"predictions[{d}]", "filepath", LISTED_ONCE, file.path)
    used: set[str] = set()  # the keys given so far in the current image
    used_at: dict[str, set[str]] = {}  # Antenna's, per image path: its detections need not be adjacent
    owners: dict[str, str] = {}  # Antenna's image id of each path
    current = None
    for d, image, det in detections:
        if image is not current:
            current, used = image, set()
        row = int(row_of[d])
        relative = None
        data: dict = {"capture_set": capture_set, "project": project}
        if file.format == "antenna":
            box = det["bbox"]
            data["image"] = {
                "path": str(image.get("url") or image.get("path") or image.get("id")),
                "width": image.get("width"),
                "height": image.get("height"),
                "timestamp": image.get("timestamp"),
                "id": image.get("id"),
            }
            data["bbox"] = [box.get("x1"), box.get("y1"), box.get("x2"), box.get("y2")]
            owner = owners.setdefault(data["image"]["path"], str(image.get("id")))
            if owner != str(image.get("id")):  # two captures, one path: their detections would be merged
                raise InputError(
                    f"{file.path_of(d)}.source_image_id", short(image.get("id")),
                    f"its image has the url of image {owner!r} ({data['image']['path']!r}): the import keys an "
                    "image by its url, so two images cannot share one", source=str(file.path),
                )  # fmt: skip
            seen = used_at.setdefault(data["image"]["path"], set())  # one key per detection so far
            data["detection"] = _unique_key(",".join(f"{v:g}" for v in data["bbox"]), len(seen), seen)
        elif file.format == "megadetector":
            data["image"] = {"path": image["file"]}
            data["detection"] = _relative_key(det, int(file.extra["pos_of"][d]), used)
            data["detection_confidence"] = det.get("conf")
            relative = _relative_area(det)
        elif row < 0:
            continue  # a SpeciesNet image without a classification: only its boxes, below
        else:
            data["image"] = {"path": image["filepath"]}
            data["detection"] = "classification"  # SpeciesNet classifies the image (its top crop)
        if row >= 0:
            a, b = int(file.scores.indptr[row]), int(file.scores.indptr[row + 1])
            pairs = zip(file.scores.indices[a:b].tolist(), file.scores.values[a:b].tolist(), strict=True)
            data["algorithm"] = algorithm
            data["top_k"] = [list(pair) for pair in pairs]
        record = record_from_dict(data, where=f"{file.path}: {file.path_of(d)}")
        if row >= 0 and file.format == "antenna":  # what the response says beside the scores
            extra = file.extra
            record = replace(record, paired_logits=extra["logits"][row], classified_at=extra["classified_at"][row])
        yield record if relative is None else replace(record, relative_area=relative)
    if file.format == "speciesnet":
        for d, entry in enumerate(file.detections):  # SpeciesNet's boxes: detector-only detections of the image
            used = set()
            for j, det in enumerate(entry.get("detections") or []):
                data = {"capture_set": capture_set, "project": project, "image": {"path": entry["filepath"]}}
                data["detection"] = _relative_key(det, j, used)
                data["detection_confidence"] = det.get("conf")
                record = record_from_dict(data, where=f"{file.path}: predictions[{d}].detections[{j}]")
                relative = _relative_area(det)
                yield record if relative is None else replace(record, relative_area=relative)


def _relative_area(det: dict) -> float | None:
    """A relative ``[x, y, width, height]`` box's area (None without a usable box)."""
    box = det.get("bbox")
    if not isinstance(box, list) or len(box) != 4:
        return None
    area = float(relative_box_areas(np.array([box], dtype=np.float64))[0])
    return None if np.isnan(area) else area


def _relative_key(det: dict, position: int, used: set[str]) -> str:
    """A detection's key within its image: its relative box (and video frame), unique among ``used``
    (:func:`_unique_key`, with the detection's position in the image)."""
    box = det.get("bbox")
    key = ",".join(f"{v:g}" for v in box) if isinstance(box, list) else "whole image"
    frame = det.get("frame_number")
    if frame is not None:
        key = f"{key}@{frame}"
    return _unique_key(key, position, used)


def _unique_key(key: str, position: int, used: set[str]) -> str:
    """``key``, or ``key#position`` when an earlier detection of the image has it (no box, or the same box).

    The key stays the same whenever the file is imported, and a file whose boxes are all distinct
    keeps the keys it had before such keys existed.
    """
    if key in used:
        key = f"{key}#{position}"
    used.add(key)
    return key
