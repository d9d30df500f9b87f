"""Prediction files: each format's reader yields checked :class:`PredictionRecord` objects.

A format is one module with one reader, ``(path) -> Iterator[PredictionRecord]``, listed in
:data:`READERS` by file extension. Whoever stores the records (the platform's importer) neither
knows nor cares which format they came from.

Detector and classifier outputs (MegaDetector batch files, SpeciesNet predictions, Antenna
processing-service responses) are read whole into a :class:`DetectionFile` by
:func:`read_detection_file`, which the file commands post-process and
:func:`write_detection_file` writes back in its own format; :func:`detection_records` turns one
into records for the same importer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from taxopost.errors import InputError
from taxopost.io._text import check_file
from taxopost.io.predictions.detections import DetectionFile
from taxopost.io.predictions.formats import (
    FORMATS,
    detect_format,
    detection_records,
    read_detection_file,
    write_detection_file,
)
from taxopost.io.predictions.jsonl import read_jsonl
from taxopost.io.predictions.parquet import read_parquet
from taxopost.io.predictions.records import PredictionRecord, record_from_dict

#: The reader of each file extension.
READERS: dict[str, Callable[[Path], Iterator[PredictionRecord]]] = {
    ".jsonl": read_jsonl,
    ".json": read_jsonl,
    ".parquet": read_parquet,
}


def read_predictions(path: Path | str) -> Iterator[PredictionRecord]:
    """The records of a prediction file, read lazily (bounded memory for any size of file).

    The extension picks the format; an unknown extension or a missing file is refused at once,
    a fault in a record when the reader reaches it.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError("file", str(path), "predictions must be .jsonl or .parquet")
    check_file(path)
    return reader(path)


__all__ = [
    "FORMATS",
    "READERS",
    "DetectionFile",
    "PredictionRecord",
    "detect_format",
    "detection_records",
    "read_detection_file",
    "read_predictions",
    "record_from_dict",
    "write_detection_file",
]
