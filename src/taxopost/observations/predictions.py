"""Import model predictions from a file (formats in docs/formats.md and :mod:`taxopost.io.predictions`).

The import runs in one transaction: a bad record anywhere leaves the database unchanged.
Records are read and written in batches (bounded memory, a fixed number of queries per batch)
and matched on natural keys, so importing the same file twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from django.db import connection, transaction

from taxopost.io.predictions import PredictionRecord, read_predictions
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.imports import ImportSummary
from taxopost.observations.models import CaptureSet, Classification, Detection, Occurrence, SourceImage
from taxopost.observations.prediction_writer import PredictionWriter

#: Records per batch: 1,000 vectors of 2,500 float32 classes are 10 MB in memory.
BATCH_SIZE = 1000
#: After an import of at least this many records, the planner's statistics are refreshed.
ANALYZE_AFTER = 1000


def import_predictions(path: Path | str, *, progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Import model predictions from JSON Lines (``.jsonl``) or Parquet (``.parquet``)."""
    records = read_predictions(path)
    summary = ImportSummary()
    writer = PredictionWriter(summary)
    with transaction.atomic():
        for batch in _batched(records):
            writer.write(batch)
            summary.records += len(batch)
            if progress:
                progress(len(batch))
        recompute_determinations(writer.touched_occurrences)
    if summary.records >= ANALYZE_AFTER:
        refresh_statistics()
    return summary


def refresh_statistics() -> None:
    """Let PostgreSQL's planner see the new rows at once (autovacuum would, some minutes later):
    stale statistics after a bulk load turn a 1 ms page query into a 25 ms one."""
    if connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in (SourceImage, Detection, Occurrence, Classification)]
    tables.append(CaptureSet.images.through._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(table) for table in tables))


def _batched(records: Iterable[PredictionRecord]) -> Iterator[list[PredictionRecord]]:
    batch: list[PredictionRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch
