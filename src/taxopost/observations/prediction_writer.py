"""Store prediction records: images, capture sets, occurrences, detections and classifications, in bulk.

The records may come from any file format (:mod:`taxopost.io.predictions`); here they meet the
platform: each algorithm's category map fixes the length of its vectors and the taxon of each
class. A batch is checked as a whole before any of it is written, and costs a fixed number of
queries whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np
from django.utils import timezone

from taxopost.core.category_map import CategoryMap as CoreCategoryMap
from taxopost.core.vectors import winners
from taxopost.dbutils import insert_rows
from taxopost.errors import InputError
from taxopost.io.predictions import PredictionRecord
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import core_category_map
from taxopost.observations.edits import count_edit
from taxopost.observations.imports import DEFAULT_PROJECT, ImportSummary
from taxopost.observations.models import CaptureSet, Classification, Detection, Occurrence, Project, SourceImage
from taxopost.observations.vectors import rows_to_bytes
from taxopost.taxa.operations import DbTaxonomy, load_taxonomy


class PredictionWriter:
    """Writes batches of records, counting what it creates in ``summary``.

    Projects, capture sets and algorithms are looked up once per import, not once per batch;
    ``touched_occurrences`` collects the occurrences whose determination must be recomputed.
    """

    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        self.projects: dict[str, Project] = {}
        self.capture_sets: dict[str, CaptureSet] = {}
        self.algorithms: dict[str, tuple[Algorithm, CoreCategoryMap]] = {}
        self.touched_occurrences: set[int] = set()

    def write(self, batch: Sequence[PredictionRecord], extras: Sequence[ClassificationExtras] | None = None) -> None:
        """Check ``batch`` against the algorithms' category maps, then write all of it.

        ``extras`` (one per record) carry what a source knows beyond the record: the logits next
        to the scores, whether the classification is its chain's current answer, its provenance.
        """
        if extras is not None and len(extras) != len(batch):
            raise ValueError(f"extras: {len(extras)} for {len(batch)} records")
        taxonomy = load_taxonomy()
        outputs = self._checked_outputs(batch, taxonomy)
        projects = self._projects(batch)
        images = self._images({(_project(r), r.image_path): _image_of(r) for r in batch}, projects)
        self._capture_sets(batch, projects, images)
        occurrences = self._occurrences(batch, projects)
        detections = self._detections(batch, images, occurrences)
        self._classifications(batch, detections, outputs, extras)
        self.touched_occurrences.update(occurrences.values())

    def write_images(self, project: str, capture_set: str, images: Sequence[ImageRow]) -> None:
        """Add images to a capture set whether or not they hold detections (a source that lists a
        capture set's images, not only its predictions)."""
        projects = self._projects_named([project])
        found = self._images({(project, image.path): image for image in images}, projects)
        capture_set_obj = self._capture_set(capture_set, projects[project], where=capture_set)
        through = CaptureSet.images.through
        links = [through(captureset_id=capture_set_obj.pk, sourceimage_id=pk) for pk in found.values()]
        through.objects.bulk_create(links, ignore_conflicts=True)
        count_edit()  # a capture set's images changed, where no classification id need move

    def _checked_outputs(self, batch: Sequence[PredictionRecord], taxonomy: DbTaxonomy) -> dict[int, _Output]:
        """What each classified record (by position in the batch) stores, its vector checked against its category map.

        A detector-only record (no vector) stores its detection and no classification.
        """
        for record in batch:
            if record.algorithm is not None and record.algorithm not in self.algorithms:
                algorithm = Algorithm.objects.filter(key=record.algorithm).select_related("category_map").first()
                if algorithm is None or algorithm.category_map_id is None:
                    raise InputError(
                        "algorithm",
                        record.algorithm,
                        "unknown (import its category map first: taxopost import category-map --algorithm KEY)",
                        source=record.where,
                    )
                self.algorithms[record.algorithm] = (algorithm, core_category_map(algorithm.category_map_id, taxonomy))
        outputs: dict[int, _Output] = {}
        for key in dict.fromkeys((r.algorithm, r.logits) for r in batch if r.algorithm is not None):
            algorithm_key, logits = key
            members = [i for i, r in enumerate(batch) if (r.algorithm, r.logits) == key]
            category_map = self.algorithms[algorithm_key][1]
            field_name = "logits" if logits else "scores"
            for i in members:
                if batch[i].top_k is not None and batch[i].top_k[0].max() >= category_map.n_classes:
                    k = int(np.argmax(batch[i].top_k[0] >= category_map.n_classes))
                    raise InputError(
                        f"top_k[{k}]",
                        int(batch[i].top_k[0][k]),
                        f"class index outside the category map of {algorithm_key!r} ({category_map.n_classes} classes)",
                        source=batch[i].where,
                    )
            vectors = {i: _dense(batch[i], category_map.n_classes) for i in members}
            paired = [i for i in members if batch[i].paired_logits is not None]
            bad = next((i for i in paired if len(batch[i].paired_logits) != category_map.n_classes), None)
            if bad is not None:
                raise InputError(
                    "logits",
                    f"{len(batch[bad].paired_logits)} values",
                    f"the category map of {algorithm_key!r} has {category_map.n_classes} classes",
                    source=batch[bad].where,
                )
            bad = next((i for i in members if len(vectors[i]) != category_map.n_classes), None)
            if bad is not None:
                raise InputError(
                    field_name,
                    f"{len(vectors[bad])} values",
                    f"the category map of {algorithm_key!r} has {category_map.n_classes} classes",
                    source=batch[bad].where,
                )
            matrix = np.stack([vectors[i] for i in members])
            try:
                found = winners(matrix, category_map, logits=logits, field=field_name)
            except InputError as exc:
                if exc.row is None:
                    raise
                raise InputError(field_name, exc.value, exc.reason, source=batch[members[exc.row]].where) from None
            taxa = taxonomy.db_ids[category_map.class_taxa[found.classes]].tolist()
            scores = found.scores.tolist()
            blobs = rows_to_bytes(matrix, sparse=True)  # top-k rows are mostly zeros
            for n, i in enumerate(members):
                outputs[i] = _Output(blob=blobs[n], taxon_id=taxa[n], score=scores[n])
        return outputs

    def _projects(self, batch: Sequence[PredictionRecord]) -> dict[str, Project]:
        return self._projects_named(list(dict.fromkeys(_project(r) for r in batch)))

    def _projects_named(self, names: Iterable[str]) -> dict[str, Project]:
        for name in [name for name in names if name not in self.projects]:
            project, created = Project.objects.get_or_create(name=name)
            self.projects[name] = project
            self.summary.add("projects", int(created))
        return self.projects

    def _images(
        self, wanted: dict[tuple[str, str], ImageRow], projects: dict[str, Project]
    ) -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for project_name in dict.fromkeys(p for p, _ in wanted):
            project = projects[project_name]
            paths = [path for p, path in wanted if p == project_name]
            stored = list(
                SourceImage.objects.filter(project=project, path__in=paths).values_list("path", "id", "external_id")
            )
            existing = {path: pk for path, pk, _ in stored}
            # An image stored before its source's id was known (an older import) gets it now; one never changes.
            named = [
                SourceImage(pk=pk, external_id=wanted[(project_name, path)].external_id)
                for path, pk, known in stored
                if not known and wanted[(project_name, path)].external_id
            ]
            SourceImage.objects.bulk_update(named, ["external_id"])
            new = [
                SourceImage(
                    project=project,
                    path=path,
                    width=wanted[(project_name, path)].width,
                    height=wanted[(project_name, path)].height,
                    timestamp=wanted[(project_name, path)].timestamp,
                    external_id=wanted[(project_name, path)].external_id or "",
                )
                for path in paths
                if path not in existing
            ]
            SourceImage.objects.bulk_create(new)
            self.summary.add("images", len(new))
            existing.update({image.path: image.pk for image in new})
            found.update({(project_name, path): pk for path, pk in existing.items()})
        return found

    def _capture_sets(
        self, batch: Sequence[PredictionRecord], projects: dict[str, Project], images: dict[tuple[str, str], int]
    ) -> None:
        """Link images to their capture sets; a capture set holds the images of its own project only.

        Jobs on one project run one at a time (docs/jobs.md), which keeps overlapping jobs apart
        only if no scope reaches into another project.
        """
        through = CaptureSet.images.through
        links = []
        for record in batch:
            project = projects[_project(record)]
            capture_set = self._capture_set(record.capture_set, project, where=record.where)
            image = images[(project.name, record.image_path)]
            links.append(through(captureset_id=capture_set.pk, sourceimage_id=image))
        through.objects.bulk_create(links, ignore_conflicts=True)

    def _capture_set(self, name: str, project: Project, *, where: str) -> CaptureSet:
        capture_set = self.capture_sets.get(name)
        if capture_set is None:
            capture_set, created = CaptureSet.objects.get_or_create(name=name, defaults={"project": project})
            self.capture_sets[name] = capture_set
            self.summary.add("capture sets", int(created))
        if capture_set.project_id != project.pk:
            owner = Project.objects.get(pk=capture_set.project_id).name
            raise InputError(
                "capture_set",
                name,
                f"belongs to project {owner!r}, not {project.name!r}: a capture set holds one project's images",
                source=where,
            )
        return capture_set

    def _occurrences(
        self, batch: Sequence[PredictionRecord], projects: dict[str, Project]
    ) -> dict[tuple[str, str], int]:
        # In the order the batch first names them, so that ids follow the input, not string hashes.
        wanted = list(dict.fromkeys((_project(r), _occurrence_key(r)) for r in batch))
        found: dict[tuple[str, str], int] = {}
        for project_name in dict.fromkeys(p for p, _ in wanted):
            project = projects[project_name]
            keys = [key for p, key in wanted if p == project_name]
            existing = dict(Occurrence.objects.filter(project=project, key__in=keys).values_list("key", "id"))
            new = [Occurrence(project=project, key=key) for key in keys if key not in existing]
            Occurrence.objects.bulk_create(new)
            self.summary.add("occurrences", len(new))
            existing.update({o.key: o.pk for o in new})
            found.update({(project_name, key): pk for key, pk in existing.items()})
        return found

    def _detections(
        self,
        batch: Sequence[PredictionRecord],
        images: dict[tuple[str, str], int],
        occurrences: dict[tuple[str, str], int],
    ) -> dict[int, int]:
        """Detection id of each record (by position in the batch).

        An existing detection stored without the relative area or the detector confidence its
        record gives (imported before they were stored) gets them: one more query for the batch,
        only when needed.
        """
        keys = {(images[(_project(r), r.image_path)], r.detection) for r in batch}
        image_ids = {image for image, _ in keys}
        existing, known = {}, {}
        for pk, image, key, area, confidence in Detection.objects.filter(source_image_id__in=image_ids).values_list(
            "id", "source_image_id", "key", "relative_area", "confidence"
        ):
            existing[(image, key)] = pk
            known[pk] = (area, confidence)
        new, filled = {}, {}
        for record in batch:
            key = (images[(_project(record), record.image_path)], record.detection)
            if key in existing:
                area, confidence = known[existing[key]]
                missing = (area is None and record.relative_area is not None) or (
                    confidence is None and record.detection_confidence is not None
                )
                if missing:
                    filled[existing[key]] = Detection(
                        pk=existing[key],
                        relative_area=area if area is not None else record.relative_area,
                        confidence=confidence if confidence is not None else record.detection_confidence,
                    )
            elif key not in new:
                new[key] = Detection(
                    source_image_id=key[0],
                    key=record.detection,
                    bbox=record.bbox,
                    confidence=record.detection_confidence,
                    relative_area=record.relative_area,
                    occurrence_id=occurrences[(_project(record), _occurrence_key(record))],
                )
        Detection.objects.bulk_create(list(new.values()))
        if filled:
            Detection.objects.bulk_update(list(filled.values()), ["relative_area", "confidence"])
        self.summary.add("detections", len(new))
        existing.update({key: d.pk for key, d in new.items()})
        return {i: existing[(images[(_project(r), r.image_path)], r.detection)] for i, r in enumerate(batch)}

    def _classifications(
        self,
        batch: Sequence[PredictionRecord],
        detections: dict[int, int],
        outputs: dict[int, _Output],
        extras: Sequence[ClassificationExtras] | None,
    ) -> None:
        algorithm_ids = {self.algorithms[r.algorithm][0].pk for r in batch if r.algorithm is not None}
        existing = set(
            Classification.objects.filter(
                detection_id__in=set(detections.values()), algorithm_id__in=algorithm_ids, applied_to=None
            ).values_list("detection_id", "algorithm_id")
        )
        new = []
        now = timezone.now()
        for i, record in enumerate(batch):
            if record.algorithm is None:  # detector-only
                continue
            algorithm = self.algorithms[record.algorithm][0]
            key = (detections[i], algorithm.pk)
            if key in existing:
                continue
            existing.add(key)
            output = outputs[i]
            extra = extras[i] if extras is not None else _extras_of(record)
            new.append(
                (
                    detections[i],
                    output.taxon_id,
                    output.score,
                    None if record.logits else output.blob,
                    output.blob if record.logits else extra.logits,
                    algorithm.category_map_id,
                    algorithm.pk,
                    extra.terminal,
                    None,
                    None,
                    extra.details or {},
                    extra.created_at or now,
                )
            )
        # Streamed with COPY on PostgreSQL: the ORM's INSERT spells every 10 kB vector out as SQL text.
        insert_rows(Classification, _CLASSIFICATION_FIELDS, new)
        self.summary.add("classifications", len(new))


_CLASSIFICATION_FIELDS = (
    "detection", "taxon", "score", "scores", "logits", "category_map", "algorithm", "terminal", "applied_to",
    "job", "details", "created_at",
)  # fmt: skip


class ImageRow(NamedTuple):
    """An image as stored: its path within the project, size in pixels and time."""

    path: str
    width: int | None
    height: int | None
    timestamp: datetime | None
    external_id: str | None = None


class ClassificationExtras(NamedTuple):
    """What a record's classification stores beyond the record (see :meth:`PredictionWriter.write`).

    ``logits`` are float32 little-endian bytes of the same length as the scores, or None.
    ``created_at`` is when the source made the classification (None: now, the import's time).
    """

    logits: bytes | None = None
    terminal: bool = True
    details: dict | None = None
    created_at: datetime | None = None


_NO_EXTRAS = ClassificationExtras()


def _extras_of(record: PredictionRecord) -> ClassificationExtras:
    """What a record itself carries beyond its vector (an Antenna response's logits and time)."""
    if record.paired_logits is None and record.classified_at is None:
        return _NO_EXTRAS
    logits = record.paired_logits.astype("<f4").tobytes() if record.paired_logits is not None else None
    return ClassificationExtras(logits=logits, created_at=record.classified_at)


def _image_of(record: PredictionRecord) -> ImageRow:
    return ImageRow(record.image_path, record.width, record.height, record.timestamp, record.image_id)


class _Output(NamedTuple):
    """A record's classification: its vector as stored, the winning class's taxon and probability."""

    blob: bytes
    taxon_id: int
    score: float


def _dense(record: PredictionRecord, n_classes: int) -> np.ndarray:
    """A record's vector; top-k pairs densified over the category map (absent classes score 0)."""
    if record.top_k is None:
        return record.values
    vector = np.zeros(n_classes, dtype=np.float32)
    vector[record.top_k[0]] = record.top_k[1]
    return vector


def _project(record: PredictionRecord) -> str:
    return record.project or DEFAULT_PROJECT


def _occurrence_key(record: PredictionRecord) -> str:
    """The given occurrence, else one occurrence per detection."""
    return record.occurrence or f"{record.image_path}#{record.detection}"
