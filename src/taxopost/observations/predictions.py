"""Import model predictions from a file (formats in docs/formats.md and :mod:`taxopost.io.predictions`).

The import runs in one transaction: a bad record anywhere leaves the database unchanged.
Records are read and written in batches (bounded memory, a fixed number of queries per batch)
and matched on natural keys, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from django.db import connection, transaction

from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import InputError
from taxopost.io.predictions import PredictionRecord, read_predictions
from taxopost.io.predictions.detections import DetectionFile
from taxopost.io.predictions.formats import detect_format, detection_records, read_detection_file
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import get_or_create_algorithm, import_category_map
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.imports import ImportSummary
from taxopost.observations.models import CaptureSet, Classification, Detection, Occurrence, SourceImage
from taxopost.observations.prediction_writer import PredictionWriter
from taxopost.taxa.operations import import_taxonomy, load_taxonomy

#: Records per batch: 1,000 vectors of 2,500 float32 classes are 10 MB in memory.
BATCH_SIZE = 1000
#: After an import of at least this many records, the planner's statistics are refreshed.
ANALYZE_AFTER = 1000


def import_predictions(
    path: Path | str,
    *,
    format: str | None = None,
    capture_set: str | None = None,
    algorithm: str | None = None,
    project: str | None = None,
    lineage_ranks: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import model predictions from JSON Lines (``.jsonl``), Parquet (``.parquet``), or a
    MegaDetector, SpeciesNet or Antenna file (``format``, or detected in a ``.json`` file).

    A MegaDetector, SpeciesNet or Antenna file names no capture set: ``capture_set`` is
    required. Its classifier is ``algorithm`` (default: named after the file's classifier).
    When the file carries its taxonomy (SpeciesNet labels, MegaDetector descriptions), the
    taxonomy is merged into the platform's and the file's label space registered; otherwise the
    algorithm must be registered with a category map in the file's class order.
    """
    path = Path(path)
    detection_file = _detection_file(path, format, lineage_ranks)
    summary = ImportSummary()
    writer = PredictionWriter(summary)
    with transaction.atomic():
        if detection_file is None:
            records = read_predictions(path)
        else:
            if not capture_set or not capture_set.strip():
                raise InputError(
                    "--capture-set", capture_set, f"a {detection_file.format} file names no capture set: give one"
                )
            key = algorithm or _default_algorithm(detection_file)
            if detection_file.taxonomy is not None and detection_file.class_keys:  # detector-only files have none
                _register(detection_file, key)
            elif detection_file.class_keys:
                _check_class_order(detection_file, key)
            records = detection_records(detection_file, capture_set=capture_set.strip(), algorithm=key, project=project)
        for batch in _batched(records):
            writer.write(batch)
            summary.records += len(batch)
            if progress:
                progress(len(batch))
        recompute_determinations(writer.touched_occurrences)
    if summary.records >= ANALYZE_AFTER:
        refresh_statistics()
    return summary


def _detection_file(path: Path, format: str | None, lineage_ranks: Sequence[str] | None) -> DetectionFile | None:
    """The file as a MegaDetector, SpeciesNet or Antenna file, or None for a records file."""
    if format is not None:
        return read_detection_file(path, format=format, lineage_ranks=lineage_ranks)
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    format = detect_format(path)  # None: JSON Lines under a .json name
    return None if format is None else read_detection_file(path, format=format, lineage_ranks=lineage_ranks)


def _default_algorithm(file: DetectionFile) -> str:
    """The classifier's key: named in the file, and for a label space read off a file, by its digest."""
    if file.format == "antenna":
        return str(file.extra.get("algorithm") or "antenna-classifier")
    if file.format == "megadetector":
        name = str(file.extra["info"].get("classifier") or "megadetector-classifier")
    else:
        versions = {str(entry.get("model_version")) for entry in file.detections if entry.get("model_version")}
        name = f"speciesnet-{sorted(versions)[0]}" if versions else "speciesnet"
    digest = hashlib.sha256("\n".join(file.class_keys).encode()).hexdigest()[:8]
    return f"{name}-{digest}" if file.format == "speciesnet" else name


def _register(file: DetectionFile, key: str) -> None:
    """Merge the file's taxonomy into the platform's and register its label space under ``key``."""
    import_taxonomy(file.taxonomy)
    names = file.taxonomy.names
    labels = [names[t] if t != NO_TAXON else label for t, label in zip(file.class_taxa, file.labels, strict=True)]
    try:
        category_map, _ = import_category_map(labels, on_unresolved="exclude")
        get_or_create_algorithm(key, category_map=category_map)
    except InputError as exc:
        raise exc.with_source(str(file.path)) from None


def _check_class_order(file: DetectionFile, key: str) -> None:
    """Refuse a file whose classes name other taxa than the registered category map's, class by class.

    A file without its taxonomy is stored over the algorithm's registered map by class index:
    labels in another order would give every score to another species, silently. Classes are
    compared by taxon (a name and a GBIF key of one species agree); a label that resolves to
    no taxon, on either side, is not compared.
    """
    algorithm = Algorithm.objects.filter(key=key).select_related("category_map").first()
    if algorithm is None or algorithm.category_map is None:
        return  # the writer refuses it, naming the algorithm
    registered = algorithm.category_map
    if list(file.labels) == registered.labels:
        return
    taxonomy = load_taxonomy()
    try:
        mine = file.category_map(taxonomy.core).class_taxa
    except InputError:  # labels the taxonomy cannot read as one label space: nothing to compare by
        return
    for i, (taxon, theirs) in enumerate(zip(mine.tolist(), registered.taxa, strict=False)):
        if taxon != NO_TAXON and theirs is not None and int(taxonomy.db_ids[taxon]) != theirs:
            megadetector = file.format == "megadetector"
            raise InputError(
                f"classification_categories[{file.class_keys[i]!r}]" if megadetector else f"class {i}",
                file.labels[i],
                f"is {registered.labels[i]!r} in the category map of algorithm {key!r}: the file's classes are "
                "in another order (import it under another --algorithm, or register one with the file's labels)",
                source=str(file.path),
            )


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
