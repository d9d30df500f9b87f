"""Prediction files: each format's reader yields checked :class:`PredictionRecord` objects.

A format is one module with one reader, ``(path) -> Iterator[PredictionRecord]``, listed in
:data:`READERS` by file extension. Whoever stores the records (the platform's importer) neither
knows nor cares which format they came from.

Detector and classifier outputs (MegaDetector batch files, SpeciesNet predictions, Antenna
processing-service responses) are read whole into a :class:`DetectionFile` by
:func:`read_detection_file`, which the file commands post-process and
:func:`write_detection_file` writes back in its own format; :func:`detection_records` turns one
into records for the same importer.

The names are imported on first use, so that a command's ``--help`` does not load the parsers.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from taxopost.errors import InputError
from taxopost.lazy import lazy_exports

if TYPE_CHECKING:
    from taxopost.io.predictions.records import PredictionRecord

#: The reader of each file extension: ``(module of this package, function)``.
READERS: dict[str, tuple[str, str]] = {
    ".jsonl": ("jsonl", "read_jsonl"),
    ".json": ("jsonl", "read_jsonl"),
    ".parquet": ("parquet", "read_parquet"),
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
    from taxopost.io._text import check_file

    check_file(path)
    module, function = reader
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)(path)


#: The modules behind the other public names, imported on first use of one of their names.
__getattr__, __dir__, _NAMES = lazy_exports(
    __name__,
    {
        "taxopost.io.predictions.detections": ("DetectionFile",),
        "taxopost.io.predictions.formats": (
            "FORMATS",
            "detect_format",
            "detection_records",
            "read_detection_file",
            "write_detection_file",
        ),
        "taxopost.io.predictions.records": ("PredictionRecord", "record_from_dict"),
    },
)
__all__ = sorted([*_NAMES, "READERS", "read_predictions"])
