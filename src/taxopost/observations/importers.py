"""Importers of predictions and identifications (formats in docs/formats.md).

Every import runs in one transaction: a bad record anywhere leaves the database unchanged.
Records are read and written in batches (bounded memory, a fixed number of queries per batch)
and matched on natural keys, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from taxopost.core._validation import check_logits, check_probabilities
from taxopost.core.category_map import CategoryMap as CoreCategoryMap
from taxopost.errors import InputError
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import core_category_map
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.models import (
    CaptureSet,
    Classification,
    Detection,
    Identification,
    Occurrence,
    Project,
    SourceImage,
)
from taxopost.observations.vectors import rows_to_bytes
from taxopost.taxa.operations import load_taxonomy

#: Records per batch: 1,000 vectors of 2,500 float32 classes are 10 MB in memory.
BATCH_SIZE = 1000
DEFAULT_PROJECT = "default"


@dataclass
class ImportSummary:
    records: int = 0
    created: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int) -> None:
        self.created[kind] = self.created.get(kind, 0) + n

    def __str__(self) -> str:
        made = ", ".join(f"{n} {kind}" for kind, n in self.created.items() if n) or "nothing new"
        return f"{self.records} records: {made}"


@dataclass
class Prediction:
    """One parsed prediction record."""

    line: int
    project: str
    capture_set: str
    image_path: str
    width: int | None
    height: int | None
    timestamp: datetime | None
    bbox: list[float] | None
    detection: str
    occurrence: str | None
    algorithm: str
    values: list[float] | np.ndarray
    logits: bool


def import_predictions(path: Path | str, *, progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Import model predictions from JSON Lines (``.jsonl``) or Parquet (``.parquet``)."""
    path = Path(path)
    reader = {".jsonl": _read_jsonl, ".json": _read_jsonl, ".parquet": _read_parquet}.get(path.suffix.lower())
    if reader is None:
        raise InputError("file", str(path), "predictions must be .jsonl or .parquet")
    if not path.exists():
        raise InputError("file", str(path), "no such file")
    summary = ImportSummary()
    context = _Context()
    with transaction.atomic():
        for batch in _batched(reader(path)):
            _write_predictions(batch, context, summary, str(path))
            summary.records += len(batch)
            if progress:
                progress(len(batch))
        recompute_determinations(context.touched_occurrences)
    if summary.records >= ANALYZE_AFTER:
        refresh_statistics()
    return summary


#: After an import of at least this many records, the planner's statistics are refreshed.
ANALYZE_AFTER = 1000


def refresh_statistics() -> None:
    """Let PostgreSQL's planner see the new rows at once (autovacuum would, some minutes later):
    stale statistics after a bulk load turn a 1 ms page query into a 25 ms one."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in (SourceImage, Detection, Occurrence, Classification)]
    tables.append(CaptureSet.images.through._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(table) for table in tables))


@dataclass
class _Context:
    projects: dict[str, Project] = field(default_factory=dict)
    capture_sets: dict[str, CaptureSet] = field(default_factory=dict)
    algorithms: dict[str, tuple[Algorithm, CoreCategoryMap]] = field(default_factory=dict)
    touched_occurrences: set[int] = field(default_factory=set)


def _write_predictions(batch: list[Prediction], context: _Context, summary: ImportSummary, source: str) -> None:
    taxonomy = load_taxonomy()
    # Validate the whole batch before writing any of it.
    for record in batch:
        if record.algorithm not in context.algorithms:
            algorithm = Algorithm.objects.filter(key=record.algorithm).select_related("category_map").first()
            if algorithm is None or algorithm.category_map_id is None:
                raise InputError(
                    "algorithm",
                    record.algorithm,
                    "unknown (import its category map first: taxopost import category-map --algorithm KEY)",
                    source=f"{source}:{record.line}",
                )
            context.algorithms[record.algorithm] = (algorithm, core_category_map(algorithm.category_map_id, taxonomy))
    vectors: dict[int, np.ndarray] = {}
    for key in {(r.algorithm, r.logits) for r in batch}:
        algorithm_key, logits = key
        members = [i for i, r in enumerate(batch) if (r.algorithm, r.logits) == key]
        category_map = context.algorithms[algorithm_key][1]
        lengths = {len(batch[i].values) for i in members}
        if lengths != {category_map.n_classes}:
            bad = next(i for i in members if len(batch[i].values) != category_map.n_classes)
            raise InputError(
                "logits" if logits else "scores",
                f"{len(batch[bad].values)} values",
                f"the category map of {algorithm_key!r} has {category_map.n_classes} classes",
                source=f"{source}:{batch[bad].line}",
            )
        field_name = "logits" if logits else "scores"
        try:
            matrix = np.asarray([batch[i].values for i in members], dtype=np.float32)
        except (OverflowError, ValueError):  # an integer beyond any float, a string in a Parquet vector
            bad = next(i for i in members if not _as_float32(batch[i].values))
            raise InputError(
                field_name,
                str(batch[bad].values)[:60],
                "values must be numbers within a float's range",
                source=f"{source}:{batch[bad].line}",
            ) from None
        try:
            if logits:
                check_logits(matrix, field=field_name)
            else:
                check_probabilities(matrix, field=field_name)
        except InputError as exc:
            row = int(exc.field.split("[", 1)[1].split("]")[0].split(",")[0])
            raise InputError(field_name, exc.value, exc.reason, source=f"{source}:{batch[members[row]].line}") from None
        for i, row in zip(members, matrix, strict=True):
            vectors[i] = row
    for record in batch:
        _check_box(record, source)

    projects = _projects(batch, context, summary)
    images = _images(batch, projects, summary)
    _capture_sets(batch, projects, images, context, summary, source)
    occurrences = _occurrences(batch, projects, summary)
    detections = _detections(batch, projects, images, occurrences, summary)
    _classifications(batch, detections, projects, vectors, context, summary)
    context.touched_occurrences.update(occurrences.values())


def _check_box(record: Prediction, source: str) -> None:
    if record.bbox is None:
        return
    box = record.bbox
    where = f"{source}:{record.line}"
    if len(box) != 4 or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in box):
        raise InputError("bbox", box, "expected [x1, y1, x2, y2], four finite numbers", source=where)
    if box[2] < box[0] or box[3] < box[1]:
        raise InputError("bbox", box, "needs x1 <= x2 and y1 <= y2", source=where)
    if record.width is not None and record.height is not None:
        from taxopost.core.size_filter import relative_areas

        try:
            relative_areas(np.array([box]), np.array([[record.width, record.height]]))
        except InputError as exc:
            raise InputError("bbox", box, exc.reason, source=where) from None


def _projects(batch, context: _Context, summary: ImportSummary) -> dict[str, Project]:
    for name in {r.project for r in batch} - set(context.projects):
        project, created = Project.objects.get_or_create(name=name)
        context.projects[name] = project
        summary.add("projects", int(created))
    return context.projects


def _images(batch, projects, summary) -> dict[tuple[str, str], int]:
    wanted = {(r.project, r.image_path): r for r in batch}
    found: dict[tuple[str, str], int] = {}
    for project_name in {p for p, _ in wanted}:
        project = projects[project_name]
        paths = [path for p, path in wanted if p == project_name]
        existing = dict(SourceImage.objects.filter(project=project, path__in=paths).values_list("path", "id"))
        new = [
            SourceImage(
                project=project,
                path=path,
                width=wanted[(project_name, path)].width,
                height=wanted[(project_name, path)].height,
                timestamp=wanted[(project_name, path)].timestamp,
            )
            for path in paths
            if path not in existing
        ]
        SourceImage.objects.bulk_create(new)
        summary.add("images", len(new))
        existing.update({image.path: image.pk for image in new})
        found.update({(project_name, path): pk for path, pk in existing.items()})
    return found


def _capture_sets(batch, projects, images, context: _Context, summary, source: str) -> None:
    """Link images to their capture sets; a capture set holds the images of its own project only.

    Jobs on one project run one at a time (docs/jobs.md), which keeps overlapping jobs apart
    only if no scope reaches into another project.
    """
    through = CaptureSet.images.through
    links = []
    for record in batch:
        capture_set = context.capture_sets.get(record.capture_set)
        if capture_set is None:
            capture_set, created = CaptureSet.objects.get_or_create(
                name=record.capture_set, defaults={"project": projects[record.project]}
            )
            context.capture_sets[record.capture_set] = capture_set
            summary.add("capture sets", int(created))
        if capture_set.project_id != projects[record.project].pk:
            owner = Project.objects.get(pk=capture_set.project_id).name
            raise InputError(
                "capture_set",
                record.capture_set,
                f"belongs to project {owner!r}, not {record.project!r}: a capture set holds one project's images",
                source=f"{source}:{record.line}",
            )
        links.append(through(captureset_id=capture_set.pk, sourceimage_id=images[(record.project, record.image_path)]))
    through.objects.bulk_create(links, ignore_conflicts=True)


def _occurrences(batch, projects, summary) -> dict[tuple[str, str], int]:
    wanted = {(r.project, _occurrence_key(r)) for r in batch}
    found: dict[tuple[str, str], int] = {}
    for project_name in {p for p, _ in wanted}:
        project = projects[project_name]
        keys = [key for p, key in wanted if p == project_name]
        existing = dict(Occurrence.objects.filter(project=project, key__in=keys).values_list("key", "id"))
        new = [Occurrence(project=project, key=key) for key in keys if key not in existing]
        Occurrence.objects.bulk_create(new)
        summary.add("occurrences", len(new))
        existing.update({o.key: o.pk for o in new})
        found.update({(project_name, key): pk for key, pk in existing.items()})
    return found


def _occurrence_key(record: Prediction) -> str:
    """The given occurrence, else one occurrence per detection."""
    return record.occurrence or f"{record.image_path}#{record.detection}"


def _detections(batch, projects, images, occurrences, summary) -> dict[int, int]:
    """Detection id of each record (by position in the batch)."""
    keys = {(images[(r.project, r.image_path)], r.detection) for r in batch}
    image_ids = {image for image, _ in keys}
    existing = {
        (image, key): pk
        for pk, image, key in Detection.objects.filter(source_image_id__in=image_ids).values_list(
            "id", "source_image_id", "key"
        )
    }
    new = {}
    for record in batch:
        key = (images[(record.project, record.image_path)], record.detection)
        if key not in existing and key not in new:
            new[key] = Detection(
                source_image_id=key[0],
                key=record.detection,
                bbox=record.bbox,
                occurrence_id=occurrences[(record.project, _occurrence_key(record))],
            )
    Detection.objects.bulk_create(list(new.values()))
    summary.add("detections", len(new))
    existing.update({key: d.pk for key, d in new.items()})
    return {i: existing[(images[(r.project, r.image_path)], r.detection)] for i, r in enumerate(batch)}


def _classifications(batch, detections, projects, vectors, context: _Context, summary) -> None:
    taxonomy = load_taxonomy()
    algorithm_ids = {context.algorithms[r.algorithm][0].pk for r in batch}
    existing = set(
        Classification.objects.filter(
            detection_id__in=set(detections.values()), algorithm_id__in=algorithm_ids, applied_to=None
        ).values_list("detection_id", "algorithm_id")
    )
    new = []
    for i, record in enumerate(batch):
        algorithm, category_map = context.algorithms[record.algorithm]
        key = (detections[i], algorithm.pk)
        if key in existing:
            continue
        existing.add(key)
        vector = vectors[i]
        if record.logits:
            shifted = np.exp(vector - vector.max())
            probabilities = shifted / shifted.sum()
        else:
            probabilities = vector
        winner = int(np.argmax(np.where(category_map.resolved, probabilities, -1)))
        blob = rows_to_bytes(vector[None, :])[0]
        new.append(
            Classification(
                detection_id=detections[i],
                taxon_id=int(taxonomy.db_ids[category_map.class_taxa[winner]]),
                score=float(probabilities[winner]),
                scores=None if record.logits else blob,
                logits=blob if record.logits else None,
                category_map_id=algorithm.category_map_id,
                algorithm=algorithm,
                terminal=True,
            )
        )
    Classification.objects.bulk_create(new)
    summary.add("classifications", len(new))


def _batched(records: Iterator[Prediction]) -> Iterator[list[Prediction]]:
    batch: list[Prediction] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


# -- readers -------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterator[Prediction]:
    with open(path, encoding="utf-8", errors="strict") as handle:
        try:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(
                        "line", line.strip()[:60], f"not valid JSON ({exc.msg})", source=f"{path}:{line_number}"
                    ) from None
                yield _prediction(data, line_number, str(path))
        except UnicodeDecodeError as exc:
            raise InputError("file", str(path), f"not UTF-8 text ({exc.reason})") from None


def _read_parquet(path: Path) -> Iterator[Prediction]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError("file", str(path), f"not a readable Parquet file ({exc})") from None
    line = 0
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_SIZE):
            # Vectors go to numpy in one step per batch; the few scalar columns go through Python.
            vectors = {
                name: _vector_column(batch.column(name)) for name in ("scores", "logits") if name in batch.schema.names
            }
            scalars = batch.drop_columns(list(vectors)).to_pylist()
            for i, row in enumerate(scalars):
                line += 1
                image = {
                    "path": row.get("image_path"),
                    "width": row.get("image_width"),
                    "height": row.get("image_height"),
                    "timestamp": row.get("image_timestamp"),
                }
                data = {k: v for k, v in row.items() if not k.startswith("image_")} | {"image": image}
                for name, (matrix, valid) in vectors.items():
                    data[name] = matrix[i] if valid[i] else None
                yield _prediction(data, line, str(path))
    except InputError:
        raise
    except Exception as exc:
        raise InputError("file", str(path), f"could not be read past row {line} ({exc})") from None


def _vector_column(column) -> tuple[list, np.ndarray]:
    """A list column as per-row float32 arrays (or None), and which rows have one."""
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    offsets = np.asarray(column.offsets) if hasattr(column, "offsets") else None
    flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    if offsets is None:  # fixed-size lists
        width = column.type.list_size
        rows = [flat[i * width : (i + 1) * width] for i in range(len(column))]
        return rows, valid
    starts = offsets[:-1] - offsets[0]
    ends = offsets[1:] - offsets[0]
    return [flat[a:b] for a, b in zip(starts, ends, strict=True)], valid


_FIELDS = {"project", "capture_set", "image", "bbox", "detection", "occurrence", "algorithm", "scores", "logits"}


def _prediction(data: object, line: int, source: str) -> Prediction:
    where = f"{source}:{line}"
    if not isinstance(data, dict):
        raise InputError("record", type(data).__name__, "each line must be a JSON object", source=where)
    unknown = set(data) - _FIELDS
    if unknown:
        raise InputError("record", sorted(unknown), f"unknown fields; expected {sorted(_FIELDS)}", source=where)
    image = data.get("image")
    if isinstance(image, str):
        image = {"path": image}
    if not isinstance(image, dict) or not image.get("path"):
        raise InputError("image.path", image, "each record needs an image path", source=where)
    for key in ("capture_set", "algorithm"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InputError(key, data.get(key), "a non-empty string is required", source=where)
    has_scores, has_logits = data.get("scores") is not None, data.get("logits") is not None
    if has_scores == has_logits:
        raise InputError("scores/logits", None, "give exactly one of scores or logits", source=where)
    values = data["scores"] if has_scores else data["logits"]
    if isinstance(values, np.ndarray):
        pass  # from a Parquet vector column: already numeric
    elif not isinstance(values, list) or not values or not all(isinstance(v, (int, float)) for v in values):
        raise InputError(
            "scores" if has_scores else "logits", str(values)[:60], "must be a list of numbers", source=where
        )
    width, height = (_size(image, key, where) for key in ("width", "height"))
    bbox = data.get("bbox")
    if bbox is not None and not (
        isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) and math.isfinite(v) for v in bbox)
    ):
        raise InputError("bbox", bbox, "expected [x1, y1, x2, y2], four numbers", source=where)
    detection = data.get("detection")
    if detection is None:
        detection = ",".join(f"{v:g}" for v in bbox) if bbox else "whole image"
    occurrence = data.get("occurrence")
    return Prediction(
        line=line,
        project=str(data.get("project") or DEFAULT_PROJECT),
        capture_set=data["capture_set"].strip(),
        image_path=str(image["path"]),
        width=width,
        height=height,
        timestamp=_timestamp(image.get("timestamp"), where, field="image.timestamp"),
        bbox=[float(v) for v in bbox] if bbox is not None else None,
        detection=str(detection),
        occurrence=str(occurrence) if occurrence is not None else None,
        algorithm=data["algorithm"].strip(),
        values=values,
        logits=has_logits,
    )


def _size(image: dict, key: str, where: str) -> int | None:
    value = image.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or value <= 0 or int(value) != value:
        raise InputError(f"image.{key}", value, "must be a positive whole number of pixels", source=where)
    return int(value)


def _as_float32(values) -> bool:
    try:
        np.asarray(values, dtype=np.float32)
    except (OverflowError, ValueError):
        return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _timestamp(value: object, where: str, *, field: str) -> datetime | None:
    """An ISO 8601 date and time; one without a time zone is taken as UTC."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError:  # well formed but impossible: month 13, February 30
            raise InputError(field, value, "not a valid date and time", source=where) from None
    if parsed is None:
        raise InputError(field, value, "expected an ISO 8601 date and time", source=where)
    return timezone.make_aware(parsed, UTC) if timezone.is_naive(parsed) else parsed


# -- identifications -----------------------------------------------------------------------


_BOOLEANS = {"": False, "0": False, "false": False, "no": False, "1": True, "true": True, "yes": True}

#: Identifications without a date sort before every dated one.
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


def import_identifications(path: Path | str, *, project: str = DEFAULT_PROJECT) -> ImportSummary:
    """Import human identifications from CSV (docs/formats.md): validated as a whole, then written.

    Columns: ``taxon`` (name or external id) and either ``occurrence`` (its key) or ``image`` +
    ``detection`` (the detection's key); optional ``who``, ``created_at`` (ISO 8601),
    ``withdrawn``, ``comment``. Idempotent: the same row imported twice is stored once.
    """
    import csv

    path = Path(path)
    if not path.exists():
        raise InputError("file", str(path), "no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM is no column name
            reader = csv.DictReader(handle)
            rows, lines = [], []  # and the line each row ends on: blank lines are skipped
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError("file", str(path), f"not a readable CSV file ({exc})") from None
    if not rows:
        raise InputError("file", str(path), "no identifications")
    header = set(rows[0])
    if "taxon" not in header or not ({"occurrence"} <= header or {"image", "detection"} <= header):
        reason = "needs taxon and either occurrence or image + detection"
        raise InputError("header", sorted(header), reason, source=str(path))
    project_obj = Project.objects.filter(name=project).first()
    if project_obj is None:
        raise InputError("project", project, "no project has this name (import predictions first)")
    taxonomy = load_taxonomy()
    by_key = dict(
        Occurrence.objects.filter(
            project=project_obj, key__in={r.get("occurrence") for r in rows} - {None, ""}
        ).values_list("key", "id")
    )
    by_detection = {
        (image, key): occurrence
        for image, key, occurrence in Detection.objects.filter(
            source_image__project=project_obj, source_image__path__in={r.get("image") for r in rows} - {None, ""}
        ).values_list("source_image__path", "key", "occurrence_id")
    }
    new, touched = [], set()
    for line, row in zip(lines, rows, strict=True):
        where = f"{path}:{line}"
        taxon = taxonomy.core.find(row.get("taxon") or "")
        if taxon < 0:
            raise InputError("taxon", row.get("taxon"), "resolves to no taxon", source=where)
        if row.get("occurrence"):
            occurrence_id = by_key.get(row["occurrence"])
            if occurrence_id is None:
                reason = f"no occurrence of project {project!r} has this key (another project: --project)"
                raise InputError("occurrence", row["occurrence"], reason, source=where)
        else:
            occurrence_id = by_detection.get((row.get("image"), row.get("detection")))
            if occurrence_id is None:
                detection = f"{row.get('image')}#{row.get('detection')}"
                reason = f"no detection of project {project!r} matches (another project: --project)"
                raise InputError("detection", detection, reason, source=where)
        created_at = _timestamp(row.get("created_at") or None, where, field="created_at") or UNDATED
        withdrawn = _BOOLEANS.get(str(row.get("withdrawn") or "").strip().lower())
        if withdrawn is None:
            raise InputError("withdrawn", row.get("withdrawn"), "must be true or false (or empty)", source=where)
        new.append(
            Identification(
                occurrence_id=occurrence_id,
                taxon_id=int(taxonomy.db_ids[taxon]),
                who=(row.get("who") or "").strip(),
                comment=(row.get("comment") or "").strip(),
                withdrawn=withdrawn,
                created_at=created_at,
            )
        )
        touched.add(occurrence_id)
    summary = ImportSummary(records=len(rows))
    with transaction.atomic():
        before = Identification.objects.count()
        # The same identification again (occurrence, taxon, who, when) updates it: withdrawing an
        # identification is importing it again with withdrawn=true.
        Identification.objects.bulk_create(
            new,
            update_conflicts=True,
            unique_fields=["occurrence", "taxon", "who", "created_at"],
            update_fields=["withdrawn", "comment"],
        )
        summary.add("identifications", Identification.objects.count() - before)
        recompute_determinations(touched)
    return summary
