"""Import one Antenna capture set: taxa, category maps, images, detections, occurrences,
classifications with their vectors (the models' outputs and the chains Antenna's
post-processing derived from them), and identifications.

Everything goes through the importers the files use (the taxonomy importer, the category-map
registration, :class:`PredictionWriter`), in **one transaction**: a network error, a refusal or
Ctrl-C leaves the database as it was, and the next run does the whole import again. Rows are
matched on natural keys (Antenna's ids as detection, occurrence and identification keys, image
paths, algorithm keys), so a re-run adds only what is new, and fetches the detail of a
classification only when it is not stored yet. Memory is bounded by one page of occurrences,
whatever the capture set's size.

A classification Antenna derived from another (``applied_to`` set: its rank roll-up, class
masking, ...) is stored ``applied_to`` the imported one, under an algorithm whose ``task_type``
is the taxopost task of the same key and whose ``source_algorithm`` is its input's; its natural
key is Antenna's id, kept in ``details["antenna"]["classification"]`` as for every imported row.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from django.db import transaction
from django.db.models import Q

from taxopost.core.ranks import RANK_LEVELS
from taxopost.core.taxonomy import Taxonomy, TaxonRecord
from taxopost.core.vectors import winners
from taxopost.errors import InputError
from taxopost.io.antenna import (
    MISSING_SOURCE,
    AntennaAlgorithm,
    AntennaClassification,
    AntennaDetection,
    AntennaIdentification,
    AntennaImage,
    AntennaSource,
    AntennaTaxon,
    ClassificationRef,
    ConnectorError,
    chain_order,
    prefetched,
)
from taxopost.io.predictions import PredictionRecord, record_from_dict
from taxopost.ml.models import Algorithm, CategoryMap
from taxopost.ml.operations import core_category_map, get_or_create_algorithm, import_category_map
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.edits import count_edit
from taxopost.observations.identifications import UNDATED
from taxopost.observations.imports import ImportSummary
from taxopost.observations.models import CaptureSet, Classification, Identification, Occurrence, Project
from taxopost.observations.prediction_writer import ClassificationExtras, ImageRow, PredictionWriter
from taxopost.observations.predictions import ANALYZE_AFTER, BATCH_SIZE, refresh_statistics
from taxopost.observations.vectors import rows_to_bytes
from taxopost.tasks.registry import task_keys
from taxopost.taxa.models import Taxon
from taxopost.taxa.operations import import_taxonomy

_ANTENNA_SET = re.compile(r"Antenna capture set (\d+) ")

#: Capture details read at once when looking for detections that belong to no occurrence.
CAPTURE_CHUNK = 100

# Why something was left out (the summary counts each reason; docs/formats.md explains them).
OUTSIDE = "detections on images outside the capture set (their occurrence spans it)"
SOURCELESS = "outputs of Antenna's post-processing that name no source (applied_to null: its small-size filter)"
TAKEN_OVER = "classifications Antenna derived from one that taxopost's own post-processing has built on since"
DERIVED_TAXON = "derived classifications whose taxon could not be imported"
DERIVED_SCORE = "derived classifications without a finite score"
SOURCE_DIFFERS = "derived classifications whose detail names another source (applied_to) than their detection lists"
DERIVED_VECTOR = (
    "derived classifications with vectors but no category map to read them over (stored with taxon and score only)"
)
NO_OUTPUT = "detections with no model classification"
DUPLICATE_OUTPUT = (
    "model outputs of an algorithm that has another on the same detection (kept: the one whose chain Antenna "
    "marks terminal, else the latest)"
)
NO_VECTOR = "classifications without scores or logits"
BAD_LOGITS = "logits of the wrong length or not finite (the classification is stored with its scores alone)"
OTHER_TAXON = "Antenna taxa that differ from the argmax class (the argmax is stored)"
UNRANKED = "taxa of a rank taxopost does not know (their children hang from the next one up)"
UNIDENTIFIED_OCCURRENCE = "identifications of occurrences with no imported detection"
LOST_TAXON = "identifications of a taxon that could not be imported"


@dataclass
class AntennaImportSummary:
    """What an import read, created and skipped (with the reason), and what it cost in requests."""

    project: str = ""
    capture_set: str = ""
    created: ImportSummary = field(default_factory=ImportSummary)
    fetched: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    withdrawn: int = 0  # identifications imported earlier that Antenna no longer lists
    requests: int = 0
    retried: int = 0

    def lines(self) -> list[str]:
        made = ", ".join(f"{n} {kind}" for kind, n in self.created.created.items() if n) or "nothing new"
        lines = [
            f"capture set {self.capture_set!r} of project {self.project!r}",
            "read: " + (", ".join(f"{n} {kind}" for kind, n in self.fetched.items() if n) or "nothing"),
            f"created: {made}",
        ]
        if any(self.unchanged.values()):
            lines.append("already imported: " + ", ".join(f"{n} {kind}" for kind, n in self.unchanged.items() if n))
        if self.withdrawn:
            lines.append(f"withdrawn: {self.withdrawn} identifications Antenna no longer lists")
        lines.extend(f"skipped {n}: {reason}" for reason, n in sorted(self.skipped.items()))
        lines.append(f"{self.requests} requests ({self.retried} retried)")
        return lines


def import_antenna(
    source: AntennaSource,
    *,
    project_name: str | None = None,
    capture_set_name: str | None = None,
    every_capture: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> AntennaImportSummary:
    """Import ``source``'s capture set; ``progress(done, total)`` counts occurrences.

    The project and capture set take Antenna's names unless given; a project of that name that
    was not imported from the same Antenna project is refused (name another one), and so is a
    capture set of that name that holds another Antenna capture set.
    Detections that belong to no occurrence are looked for on the captures whose
    ``detections_count`` exceeds what their occurrences held; Antenna caches that count and it
    can lag, so ``every_capture`` reads every capture's detail instead (one request per image).
    """
    info = source.describe()
    summary = AntennaImportSummary(
        project=project_name or info.project_name, capture_set=capture_set_name or info.capture_set_name
    )
    origin = f"Imported from Antenna: {source.client.base_url}/projects/{info.project_id}/"
    with transaction.atomic():
        project = _project(summary.project, origin)
        _check_capture_set(summary.capture_set, info.capture_set_id)
        run = _Import(source, summary, project)
        run.images()
        run.occurrences(progress)
        run.loose_detections(every_capture)
        capture_set = CaptureSet.objects.get(name=summary.capture_set)
        if not capture_set.description:
            capture_set.description = f"Antenna capture set {info.capture_set_id} ({info.capture_set_name})"
            capture_set.save(update_fields=["description"])
        recompute_determinations(run.writer.touched_occurrences | run.identified | run.touched)
    summary.requests, summary.retried = source.client.requests, source.client.retried
    if summary.created.records >= ANALYZE_AFTER:
        refresh_statistics()
    return summary


def antenna_capture_set_id(capture_set: CaptureSet) -> int | None:
    """The Antenna id of a capture set this importer created (kept in its description), else None."""
    match = _ANTENNA_SET.match(capture_set.description or "")
    return int(match.group(1)) if match else None


def _project(name: str, origin: str) -> Project:
    project, created = Project.objects.get_or_create(name=name, defaults={"description": origin})
    if not created and project.description != origin:
        raise InputError(
            "project",
            name,
            "a project of this name exists and was not imported from this Antenna project; "
            "give another name with --project-name",
        )
    return project


def _check_capture_set(name: str, capture_set_id: int) -> None:
    """Refuse to merge Antenna capture set ``capture_set_id`` into a capture set of the same name
    holding another one (or none imported from Antenna): two sets' images would become one."""
    existing = CaptureSet.objects.filter(name=name).first()
    if existing is None:
        return
    held = antenna_capture_set_id(existing)
    if held == capture_set_id:
        return
    holds = f"holds Antenna capture set {held}" if held is not None else "was not imported from Antenna"
    raise InputError(
        "capture_set",
        name,
        f"a capture set of this name exists and {holds}, not {capture_set_id}; "
        "give another name with --capture-set-name",
    )


class _Import:
    """One import's state: what is known of the taxa, algorithms and images so far."""

    def __init__(self, source: AntennaSource, summary: AntennaImportSummary, project: Project) -> None:
        self.source = source
        self.summary = summary
        self.project = project
        self.writer = PredictionWriter(summary.created)
        self.images_by_id: dict[int, AntennaImage] = {}
        self.detections_per_image: Counter = Counter()
        self.seen_detections: set[int] = set()
        self.algorithms: dict[int, tuple[str, list[str]] | None] = {}  # Antenna id -> (key, labels)
        self.category_maps: dict[int, tuple[CategoryMap, list[str]]] = {}  # Antenna id -> (stored, labels)
        self.derived_algorithms: dict[tuple[int, int], Algorithm] = {}  # (Antenna id, source algorithm) -> it
        self.touched: set[int | None] = set()  # occurrences whose chains changed outside the writer
        self.taxa_done: set[int] = set()
        self.identified: set[int] = set()
        self.pending: tuple | None = None  # a batch whose classifications are being fetched

    # -- images ---------------------------------------------------------------------------------

    def images(self) -> None:
        paths: dict[str, int] = {}
        for page in self.source.image_pages():
            for image in page:
                other = paths.setdefault(image.path, image.id)
                if other != image.id:
                    raise ConnectorError(
                        "path", image.path, f"captures {other} and {image.id} share it; images are matched by path"
                    )
                self.images_by_id[image.id] = image
            rows = [ImageRow(i.path, i.width, i.height, i.timestamp, str(i.id)) for i in page]
            self.writer.write_images(self.project.name, self.summary.capture_set, rows)
            self.summary.fetched["images"] += len(page)
        if not self.images_by_id:
            self.writer.write_images(self.project.name, self.summary.capture_set, [])

    # -- occurrences, detections, classifications ---------------------------------------------------

    def occurrences(self, progress: Callable[[int, int], None] | None) -> None:
        """Page by page; the next page is fetched while this one is stored."""
        done = 0
        with closing(prefetched(self.source.occurrence_batches())) as batches:
            for page, detections in batches:
                self.summary.fetched["occurrences"] += len(page.occurrence_ids)
                self.detections(detections, page.identifications, page.listed)
                done += len(page.occurrence_ids)
                if progress:
                    progress(done, max(done, page.total or 0))
        self.flush()

    def loose_detections(self, every_capture: bool) -> None:
        """Detections in no occurrence: on the captures that hold more than the occurrences showed."""
        held = self.detections_per_image
        short = [pk for pk, image in self.images_by_id.items() if every_capture or image.detections_count > held[pk]]
        for start in range(0, len(short), CAPTURE_CHUNK):
            self.detections(self.source.capture_detections(short[start : start + CAPTURE_CHUNK], self.seen_detections))
        self.flush()

    def detections(
        self,
        detections: list[AntennaDetection],
        identifications: Sequence[AntennaIdentification] = (),
        listed: Sequence[int] = (),
    ) -> None:
        """Start fetching the classifications these detections lack, then store the previous batch
        while they arrive (:meth:`flush` stores the last). ``listed``: the occurrences whose
        identifications were read (all of them are in ``identifications``)."""
        kept = []
        for detection in detections:
            if detection.id in self.seen_detections:
                continue
            if detection.capture_id not in self.images_by_id:
                self.summary.skipped[OUTSIDE] += 1
                continue
            self.seen_detections.add(detection.id)
            self.detections_per_image[detection.capture_id] += 1
            kept.append(detection)
        self.summary.fetched["detections"] += len(kept)
        wanted: list[_Item] = []
        for detection in kept:
            items = self._chains(detection)
            if not any(item.depth == 0 for item in items):
                self.summary.skipped[NO_OUTPUT] += 1
            wanted.extend(items)
        stored = self._stored(kept, built_on=any(item.depth for item in wanted))
        fresh, taken = [], set()
        for item in wanted:  # each detection's sources come before what derives from them
            if item.depth and (item.ref.applied_to in taken or self._taken_over(item, stored)):
                taken.add(item.ref.id)  # decided before fetching its detail: a re-run fetches it no more
                self.summary.skipped[TAKEN_OVER] += 1
            elif stored.holds(item):
                self.summary.unchanged["classifications"] += 1
            else:
                fresh.append(item)
        batch = self.source.classifications([item.ref.id for item in fresh]) if fresh else None
        try:
            self.flush()
        except BaseException as exc:
            if batch is not None:
                batch.cancel(interrupted=not isinstance(exc, Exception))
            raise
        self.pending = (fresh, batch, list(identifications), list(listed), kept)

    def _chains(self, detection: AntennaDetection) -> list[_Item]:
        """The detection's classifications to import, sources first: the models' outputs and what
        Antenna derived from them with a step taxopost has a task for."""
        ordered, left_out = chain_order(detection.classifications)
        self.summary.skipped.update(left_out)
        dropped = {ref.id for ref in detection.classifications} - {ref.id for ref, _ in ordered}
        duplicates = _duplicate_outputs(ordered)
        items = []
        for ref, depth in ordered:
            if ref.id in duplicates:
                reason = DUPLICATE_OUTPUT
            elif depth and ref.applied_to in dropped:
                reason = MISSING_SOURCE
            elif depth == 0 and ref.task is not None:
                reason = SOURCELESS
            elif depth and self._task_key(ref.task) is None:
                named = f" ({ref.task})" if ref.task else ""
                reason = f"classifications derived by {ref.algorithm_key!r}, which is no taxopost task{named}"
            else:
                items.append(_Item(detection, ref, depth))
                continue
            dropped.add(ref.id)
            self.summary.skipped[reason] += 1
        return items

    @staticmethod
    def _taken_over(item: _Item, stored: _Stored) -> bool:
        """Whether taxopost's own post-processing has built on this derived row's (stored) source."""
        source = stored.rows.get(item.ref.applied_to)
        return source is not None and source.pk in stored.built_on

    @staticmethod
    def _task_key(antenna_task: str | None) -> str | None:
        """The taxopost task of an Antenna post-processing task: the same key (both registries
        name rank_rollup, class_masking and small_size_filter alike), else None."""
        return antenna_task if antenna_task is not None and antenna_task in task_keys() else None

    def flush(self) -> None:
        """Store the pending batch: the models' outputs, what was derived from them (sources first),
        the terminal states, then the identifications (whose occurrences the classifications create)."""
        if self.pending is None:
            return
        fresh, batch, identifications, listed, detections = self.pending
        self.pending = None
        details = batch.results() if batch is not None else []
        self.summary.fetched["classifications"] += len(details)
        roots = [(item, detail) for item, detail in zip(fresh, details, strict=True) if item.depth == 0]
        derived = [(item, detail) for item, detail in zip(fresh, details, strict=True) if item.depth > 0]
        for start in range(0, len(roots), BATCH_SIZE):
            chunk = roots[start : start + BATCH_SIZE]
            self._classifications([item for item, _ in chunk], [detail for _, detail in chunk])
        if any(ref.applied_to is not None for item in fresh for ref in item.detection.classifications):
            stored = self._stored(detections)  # with the rows just written: the sources' ids
            self._derived(derived, stored)
            self._settle(fresh, stored)
        self.identifications(identifications, listed)

    def _stored(self, detections: list[AntennaDetection], *, built_on: bool = False) -> _Stored:
        """What is stored of these detections' classifications: the models' outputs and the rows
        imported from Antenna (one query; taxopost's own jobs' outputs are not read), and with
        ``built_on`` the sources those jobs' live outputs are applied to (a second)."""
        stored = _Stored()
        if not detections:
            return stored
        mine = Classification.objects.filter(
            detection__source_image__project=self.project, detection__key__in=[str(d.id) for d in detections]
        )
        rows = mine.filter(Q(applied_to=None) | Q(job=None)).values_list(
            "id", "detection__key", "algorithm__key", "applied_to_id", "details__antenna__classification",
            "detection_id", "detection__occurrence_id", "algorithm_id", "category_map_id",
        )  # fmt: skip
        for pk, key, algorithm, applied_to, antenna_id, detection, occurrence, algorithm_id, cm in rows:
            if applied_to is None:
                stored.outputs.add((key, algorithm))
            if isinstance(antenna_id, int):
                stored.rows[antenna_id] = _Row(pk, detection, occurrence, algorithm_id, cm)
        if built_on:
            live = mine.filter(job__isnull=False, replaced_by=None, applied_to__isnull=False)
            stored.built_on = set(live.values_list("applied_to_id", flat=True))
        return stored

    def _classifications(self, items: list, details: list[AntennaClassification]) -> None:
        records: list[PredictionRecord] = []
        extras: list[ClassificationExtras] = []
        base = self.source.client.base_url
        for item, detail in zip(items, details, strict=True):
            detection, terminal = item.detection, item.ref.terminal
            algorithm = self._algorithm(detail.algorithm)
            if algorithm is None:
                continue
            key, labels = algorithm
            values, logits = detail.scores, detail.logits
            if values is None and logits is None:
                self.summary.skipped[NO_VECTOR] += 1
                continue
            image = self.images_by_id[detection.capture_id]
            where = f"{base}/classifications/{detail.id}/"
            problem = _logits_problem(logits, labels) if logits is not None else None
            if problem is not None:
                if values is None:  # the only vector: nothing to store the classification from
                    raise InputError(*problem, source=where)
                self.summary.skipped[BAD_LOGITS] += 1  # the scores are what the model said: keep them
                logits = None
            data = {
                "project": self.project.name,
                "capture_set": self.summary.capture_set,
                "image": {
                    "path": image.path,
                    "width": image.width,
                    "height": image.height,
                    "timestamp": image.timestamp,
                },
                "bbox": detection.bbox,
                "detection": str(detection.id),
                "occurrence": str(detection.occurrence_id) if detection.occurrence_id is not None else None,
                "algorithm": key,
                **({"scores": values} if values is not None else {"logits": logits}),
            }
            if detection.occurrence_id is None:
                del data["occurrence"]
            records.append(record_from_dict(data, where=where))
            extras.append(
                ClassificationExtras(
                    logits=logits.astype("<f4").tobytes() if values is not None and logits is not None else None,
                    terminal=terminal,
                    details={"antenna": {"classification": detail.id, "detection": detection.id}},
                    created_at=detail.created_at,  # when the model said it: what a determination's time is
                )
            )
            self._check_taxon(detail.taxon_id, values if values is not None else logits, labels)
        if records:
            try:
                self.writer.write(records, extras)
            except InputError as exc:
                if _LOGITS_HINT not in exc.reason:
                    raise
                raise InputError(exc.field, exc.value, _without_hint(exc.reason), source=exc.source) from None
            self.summary.created.records += len(records)

    def _check_taxon(self, taxon_id: int | None, vector: np.ndarray, labels: list[str]) -> None:
        taxon = self.source.taxa().get(taxon_id) if taxon_id is not None else None
        if taxon is not None and len(vector) == len(labels) and labels[int(np.argmax(vector))] != taxon.name:
            self.summary.skipped[OTHER_TAXON] += 1

    # -- algorithms and taxa ------------------------------------------------------------------------

    def _algorithm(self, algorithm: AntennaAlgorithm) -> tuple[str, list[str]] | None:
        """The algorithm's key and labels, its category map and taxa registered on first sight."""
        if algorithm.id in self.algorithms:
            found = self.algorithms[algorithm.id]
            if found is None:
                self.summary.skipped[f"classifications of {algorithm.key!r}, which has no category map"] += 1
            return found
        if algorithm.category_map_id is None:
            self.algorithms[algorithm.id] = None
            self.summary.skipped[f"classifications of {algorithm.key!r}, which has no category map"] += 1
            return None
        stored, labels = self._category_map(algorithm.category_map_id, algorithm.key)
        _, new = get_or_create_algorithm(
            algorithm.key, name=algorithm.name, version=algorithm.version, category_map=stored
        )
        self.summary.created.add("algorithms", int(new))
        self.algorithms[algorithm.id] = (algorithm.key, labels)
        return self.algorithms[algorithm.id]

    def _category_map(self, category_map_id: int, algorithm_key: str) -> tuple[CategoryMap, list[str]]:
        """An Antenna category map, stored with the taxa of its labels (read once per import:
        Antenna's class masking writes under the map of the algorithm it masks)."""
        if category_map_id in self.category_maps:
            return self.category_maps[category_map_id]
        category_map = self.source.category_map(category_map_id)
        by_name = {taxon.name: taxon.id for taxon in self.source.taxa().values()}
        label_taxa = {by_name[label] for label in category_map.labels if label in by_name}
        unmatched = sum(label not in by_name for label in category_map.labels)
        if unmatched:
            self.summary.skipped[f"labels of {algorithm_key!r} that match no taxon of the project (excluded)"] += (
                unmatched
            )
        self.ensure_taxa(label_taxa)
        stored, created = import_category_map(category_map.labels, on_unresolved="exclude")
        self.summary.created.add("category maps", int(created))
        self.summary.fetched["category maps"] += 1
        self.category_maps[category_map_id] = (stored, category_map.labels)
        return self.category_maps[category_map_id]

    # -- derived classifications ---------------------------------------------------------------------

    def _derived(self, items: list[tuple[_Item, AntennaClassification]], stored: _Stored) -> None:
        """Store what Antenna derived (if anything), a level of the chains at a time (a row's source is stored
        before it: its id is the row's ``applied_to``), and demote the sources Antenna demoted."""
        if not items:
            return
        self.ensure_taxa({detail.taxon_id for _, detail in items if detail.taxon_id is not None})
        taxa = self.source.taxa()
        names = {taxa[d.taxon_id].name for _, d in items if d.taxon_id in taxa}
        taxon_ids = dict(Taxon.objects.filter(name__in=names).values_list("name", "id"))
        base = self.source.client.base_url
        for depth in sorted({item.depth for item, _ in items}):
            level = [(item, detail) for item, detail in items if item.depth == depth]
            rows, refs, demote, made_at = [], [], [], []
            for item, detail in level:
                if detail.applied_to is not None and detail.applied_to != item.ref.applied_to:  # which chain?
                    self.summary.skipped[SOURCE_DIFFERS] += 1
                    continue
                source = stored.rows.get(item.ref.applied_to)
                if source is None:  # left out itself (no vector, no category map, ...)
                    self.summary.skipped[MISSING_SOURCE] += 1
                    continue
                taxon = taxa.get(detail.taxon_id) if detail.taxon_id is not None else None
                score = detail.score
                if taxon is None or taxon.name not in taxon_ids:
                    self.summary.skipped[DERIVED_TAXON] += 1
                    continue
                if score is None or not np.isfinite(score):
                    self.summary.skipped[DERIVED_SCORE] += 1
                    continue
                if not 0.0 <= score <= 1.0:
                    where = f"{base}/classifications/{detail.id}/"
                    raise InputError("score", float(score), "a score is a probability, in [0, 1]", source=where)
                task = self._task_key(detail.algorithm.task or item.ref.task)
                if task is None:
                    self.summary.skipped[
                        f"classifications derived by {detail.algorithm.key!r}, which is no taxopost task"
                    ] += 1
                    continue
                scores, logits, category_map_id = self._derived_vectors(
                    detail, source, where=f"{base}/classifications/{detail.id}/"
                )
                algorithm = self._derived_algorithm(detail.algorithm, task, source.algorithm_id, category_map_id)
                rows.append(
                    Classification(
                        detection_id=source.detection_id,
                        taxon_id=taxon_ids[taxon.name],
                        score=float(score),
                        scores=scores,
                        logits=logits,
                        category_map_id=category_map_id,
                        algorithm=algorithm,
                        terminal=item.ref.terminal,
                        applied_to_id=source.pk,
                        details={"antenna": {"classification": detail.id, "detection": item.detection.id,
                                             "algorithm": detail.algorithm.key}},
                    )
                )  # fmt: skip
                refs.append((item, source))
                made_at.append(detail.created_at)
                if not _antenna_terminal(item.detection, item.ref.applied_to):
                    demote.append(source.pk)
            Classification.objects.bulk_create(rows)
            # Antenna's time, as a model output keeps (created_at is set on insert, whatever is given).
            timed = []
            for row, made in zip(rows, made_at, strict=True):
                if made is not None:
                    row.created_at = made
                    timed.append(row)
            Classification.objects.bulk_update(timed, ["created_at"])
            if demote:
                Classification.objects.filter(id__in=demote, terminal=True).update(terminal=False)
            for row, (item, source) in zip(rows, refs, strict=True):
                stored.rows[item.ref.id] = _Row(row.pk, source.detection_id, source.occurrence_id, row.algorithm_id,
                                                row.category_map_id)  # fmt: skip
                self.touched.add(source.occurrence_id)
            self.summary.created.add("classifications", len(rows))
            self.summary.created.add("derived classifications", len(rows))
            self.summary.created.records += len(rows)

    def _derived_vectors(
        self, detail: AntennaClassification, source: _Row, *, where: str
    ) -> tuple[bytes | None, bytes | None, int | None]:
        """``(scores, logits, category map id)`` of a derived classification: the vectors it carries
        (Antenna's class masking writes both; its roll-up neither) over its algorithm's category map,
        or its source's when its algorithm names none.

        Checked as a model's output is: scores that are no distribution over the map are an error
        naming the classification; logits that are not (the wrong length, not finite) are dropped
        and counted when the scores stand, an error when they are the only vector.
        """
        values, logits = detail.scores, detail.logits
        if values is None and logits is None:
            return None, None, None
        if detail.algorithm.category_map_id is not None:
            category_map_id = self._category_map(detail.algorithm.category_map_id, detail.algorithm.key)[0].pk
        else:
            category_map_id = source.category_map_id
        if category_map_id is None:  # nothing to read the vectors over: taxon and score only
            self.summary.skipped[DERIVED_VECTOR] += 1
            return None, None, None
        core = core_category_map(category_map_id)
        labels = core.labels
        if logits is not None and (problem := _logits_problem(logits, list(labels))) is not None:
            if values is None:
                raise InputError(*problem, source=where)
            self.summary.skipped[BAD_LOGITS] += 1
            logits = None
        if values is not None:
            if len(values) != len(labels):
                reason = f"the category map has {len(labels)} labels"
                raise InputError("scores", f"{len(values)} values", reason, source=where)
            try:
                winners(values[None, :], core, field="scores")
            except InputError as exc:  # named in the one vector: scores[0, 3] is scores[3]
                field_name = "scores" if exc.field == "scores[0]" else exc.field.replace("scores[0, ", "scores[")
                raise InputError(field_name, exc.value, _without_hint(exc.reason), source=where) from None
        scores = rows_to_bytes(values[None, :], sparse=True)[0] if values is not None else None
        logits_blob = logits.astype("<f4").tobytes() if logits is not None else None
        return scores, logits_blob, category_map_id

    def _derived_algorithm(
        self, algorithm: AntennaAlgorithm, task: str, source_algorithm_id: int, category_map_id: int | None
    ) -> Algorithm:
        """The taxopost algorithm of an Antenna post-processing algorithm applied to one source
        algorithm's outputs: keyed ``{Antenna key}@{source key}``, as taxopost keys a task's
        outputs by task, config and source."""
        cache_key = (algorithm.id, source_algorithm_id)
        found = self.derived_algorithms.get(cache_key)
        if found is not None:
            return found
        source = Algorithm.objects.get(pk=source_algorithm_id)
        key = f"{algorithm.key}@{source.key}"
        if len(key) > 255:
            key = f"{algorithm.key[:200]}@{hashlib.sha256(source.key.encode()).hexdigest()[:12]}"
        found, created = Algorithm.objects.get_or_create(
            key=key,
            defaults={
                "name": algorithm.name or algorithm.key,
                "version": algorithm.version[:64],
                "task_type": task,
                "config": {"antenna": {"algorithm": algorithm.id, "key": algorithm.key}},
                "source_algorithm": source,
                "category_map_id": category_map_id,
            },
        )
        if not created and found.category_map_id is None and category_map_id is not None:
            found.category_map_id = category_map_id
            found.save(update_fields=["category_map"])
        self.summary.created.add("algorithms", int(created))
        self.derived_algorithms[cache_key] = found
        return found

    def _settle(self, fresh: list[_Item], stored: _Stored) -> None:
        """A row imported now whose successors in Antenna were all left out is its chain's current
        answer here (Antenna's terminal state belongs to a successor taxopost does not hold)."""
        written = {item.ref.id for item in fresh if item.ref.id in stored.rows}
        kept_children = {item.ref.applied_to for item in fresh if item.ref.id in written}
        promote = []
        for item in fresh:
            if item.ref.id not in written or item.ref.terminal or item.ref.id in kept_children:
                continue
            if any(ref.applied_to == item.ref.id for ref in item.detection.classifications):
                promote.append(stored.rows[item.ref.id].pk)
                self.touched.add(stored.rows[item.ref.id].occurrence_id)
        if promote:
            Classification.objects.filter(id__in=promote).update(terminal=True)

    def ensure_taxa(self, ids: Iterable[int]) -> None:
        """Import these taxa with their ancestors; the detail of each new one gives its GBIF key."""
        taxa = self.source.taxa()
        wanted = set(ids) - self.taxa_done
        unlisted = sorted(pk for pk in wanted if pk not in taxa)  # not in the project's list: read alone
        for taxon in self.source.taxon_details(unlisted):
            taxa[taxon.id] = taxon
        lineage: dict[int, AntennaTaxon] = {}
        stack = list(wanted)
        while stack:
            pk = stack.pop()
            if pk in lineage or pk not in taxa:
                continue
            lineage[pk] = taxa[pk]
            if taxa[pk].parent_id is not None:
                stack.append(taxa[pk].parent_id)
        if not lineage:
            return
        ranked = {pk: t for pk, t in lineage.items() if t.rank in RANK_LEVELS}
        if len(ranked) < len(lineage):
            self.summary.skipped[UNRANKED] += len(lineage) - len(ranked)
        known = set(Taxon.objects.filter(name__in=[t.name for t in ranked.values()]).values_list("name", flat=True))
        new_ids = [pk for pk, t in ranked.items() if t.name not in known]
        gbif = {t.id: t.gbif_key for t in self.source.taxon_details(new_ids)}
        records = []
        for pk, taxon in ranked.items():
            parent = taxon.parent_id
            while parent is not None and parent in lineage and parent not in ranked:
                parent = lineage[parent].parent_id
            parent_name = ranked[parent].name if parent in ranked else None
            keys = (str(gbif[pk]),) if gbif.get(pk) is not None else ()
            records.append(TaxonRecord(name=taxon.name, rank=taxon.rank, parent=parent_name, external_ids=keys))
        result = import_taxonomy(Taxonomy(records))
        self.summary.created.add("taxa", result.created)
        self.summary.fetched["taxa"] += len(new_ids)
        self.taxa_done |= set(lineage)

    # -- identifications ---------------------------------------------------------------------------

    def identifications(self, identifications: list[AntennaIdentification], listed: Sequence[int] = ()) -> None:
        """Store the identifications of a page by Antenna's id, and withdraw those imported earlier
        that the ``listed`` occurrences no longer carry (deleted in Antenna)."""
        if not identifications and not listed:
            return
        self.summary.fetched["identifications"] += len(identifications)
        keys = {str(i.occurrence_id) for i in identifications} | {str(pk) for pk in listed}
        occurrences = dict(Occurrence.objects.filter(project=self.project, key__in=keys).values_list("key", "id"))
        kept = [i for i in identifications if str(i.occurrence_id) in occurrences]
        if len(kept) < len(identifications):
            self.summary.skipped[UNIDENTIFIED_OCCURRENCE] += len(identifications) - len(kept)
        self.ensure_taxa({i.taxon_id for i in kept})
        taxa = self.source.taxa()
        names = {taxa[i.taxon_id].name for i in kept if i.taxon_id in taxa}
        taxon_ids = dict(Taxon.objects.filter(name__in=names).values_list("name", "id"))
        rows, users = [], []
        for identification in kept:
            taxon = taxa.get(identification.taxon_id)
            if taxon is None or taxon.name not in taxon_ids:
                self.summary.skipped[LOST_TAXON] += 1
                continue
            occurrence = occurrences[str(identification.occurrence_id)]
            rows.append(
                Identification(
                    occurrence_id=occurrence,
                    taxon_id=taxon_ids[taxon.name],
                    who=identification.user,
                    comment=identification.comment,
                    withdrawn=identification.withdrawn,
                    created_at=identification.created_at or UNDATED,
                    antenna_id=identification.id,
                )
            )
            users.append(identification.user_id)
            self.identified.add(occurrence)
        stored = list(
            Identification.objects.filter(occurrence_id__in=set(occurrences.values())).only(*_IDENTIFICATION_FIELDS)
        )
        new = self._save_identifications(rows, users, stored)
        self.summary.created.add("identifications", new)
        self.summary.unchanged["identifications"] += len(rows) - new
        still = {(occurrences[str(i.occurrence_id)], i.id) for i in kept}  # a lost taxon is listed all the same
        read = {occurrences[str(pk)] for pk in listed if str(pk) in occurrences}
        gone = [
            row
            for row in stored
            if row.antenna_id is not None
            and row.occurrence_id in read
            and (row.occurrence_id, row.antenna_id) not in still
            and not row.withdrawn
        ]
        if gone:
            Identification.objects.filter(pk__in=[row.pk for row in gone]).update(withdrawn=True)
            count_edit()
            self.summary.withdrawn += len(gone)
            self.identified.update(row.occurrence_id for row in gone)

    @staticmethod
    def _save_identifications(rows: list[Identification], users: list[int | None], stored: list[Identification]) -> int:
        """Store ``rows`` keyed on Antenna's id (``antenna_id``); returns how many are new.

        A stored row with that id is updated (a renamed person, a withdrawal, a new comment). One
        stored without an id (imported before ids were kept) is matched on occurrence, taxon and
        time, and on its label or the Antenna user id the label ends with, then given the id.
        """
        by_id = {(row.occurrence_id, row.antenna_id): row for row in stored if row.antenna_id is not None}
        legacy: dict[tuple, list[Identification]] = {}
        for row in stored:
            if row.antenna_id is None:
                legacy.setdefault((row.occurrence_id, row.taxon_id, row.created_at), []).append(row)
        new: dict[tuple, Identification] = {}  # listed twice on a page: one row, as the last says
        changed = []
        for row, user in zip(rows, users, strict=True):
            key = (row.occurrence_id, row.antenna_id)
            if key in new:
                new[key] = row
                continue
            found = by_id.get(key)
            if found is None:
                candidates = legacy.get((row.occurrence_id, row.taxon_id, row.created_at), [])
                found = next((c for c in candidates if c.who == row.who or _same_user(c.who, user)), None)
                if found is not None:
                    candidates.remove(found)
                    by_id[key] = found
            if found is None:
                new[key] = row
                continue
            if any(getattr(found, name) != getattr(row, name) for name in _IDENTIFICATION_UPDATES):
                for name in _IDENTIFICATION_UPDATES:
                    setattr(found, name, getattr(row, name))
                changed.append(found)
        if changed:  # an update moves no id: the cached pages' data version counts it
            Identification.objects.bulk_update(list({id(row): row for row in changed}.values()),
                                               list(_IDENTIFICATION_UPDATES.values()))  # fmt: skip
            count_edit()
        Identification.objects.bulk_create(list(new.values()))
        return len(new)


#: What an import of an identification Antenna lists again may change of the stored row (attribute: field).
_IDENTIFICATION_UPDATES = {
    "antenna_id": "antenna_id", "taxon_id": "taxon", "who": "who", "comment": "comment", "withdrawn": "withdrawn",
    "created_at": "created_at",
}  # fmt: skip
_IDENTIFICATION_FIELDS = ("id", "occurrence", *_IDENTIFICATION_UPDATES.values())


def _same_user(label: str, user_id: int | None) -> bool:
    """Whether a stored label names Antenna user ``user_id`` (``Name (Antenna user 3)``)."""
    return user_id is not None and (label.endswith(f"(Antenna user {user_id})") or label == f"Antenna user {user_id}")


class _Item(NamedTuple):
    """A classification to import: its detection, its reference there, its depth in its chain."""

    detection: AntennaDetection
    ref: ClassificationRef
    depth: int


class _Row(NamedTuple):
    """A stored classification, as a derived one needs its source."""

    pk: int
    detection_id: int
    occurrence_id: int | None
    algorithm_id: int
    category_map_id: int | None


@dataclass
class _Stored:
    """What is stored of a batch's detections."""

    outputs: set[tuple[str, str]] = field(default_factory=set)  # (detection key, algorithm key): model outputs
    rows: dict[int, _Row] = field(default_factory=dict)  # Antenna classification id -> the row imported from it
    built_on: set[int] = field(default_factory=set)  # rows a live output of a taxopost job is applied to

    def holds(self, item: _Item) -> bool:
        if item.depth == 0:
            return (str(item.detection.id), item.ref.algorithm_key) in self.outputs
        return item.ref.id in self.rows


def _duplicate_outputs(ordered: list[tuple[ClassificationRef, int]]) -> set[int]:
    """The models' outputs of one detection to leave out: a detection holds one output per algorithm
    (its natural key), so of several, the one whose chain Antenna marks terminal (its current
    answer) is kept, else the latest (the highest id). ``ordered`` is :func:`chain_order`'s."""
    root: dict[int, int] = {}
    current: dict[int, bool] = {}
    for ref, depth in ordered:  # sources come first: a row's root is known before it
        top = root.get(ref.applied_to, ref.id) if depth else ref.id
        root[ref.id] = top
        current[top] = current.get(top, False) or ref.terminal
    by_algorithm: dict[str, list[ClassificationRef]] = {}
    for ref, depth in ordered:
        if depth == 0 and ref.task is None:
            by_algorithm.setdefault(ref.algorithm_key, []).append(ref)
    left_out: set[int] = set()
    for refs in by_algorithm.values():
        if len(refs) > 1:
            kept = max(refs, key=lambda ref: (current[ref.id], ref.id))
            left_out.update(ref.id for ref in refs if ref is not kept)
    return left_out


def _antenna_terminal(detection: AntennaDetection, classification_id: int | None) -> bool:
    return any(ref.id == classification_id and ref.terminal for ref in detection.classifications)


#: The validation's hint for scores that are no distribution: ``--logits`` is an option of the file
#: commands, not of ``import antenna`` (Antenna's logits are in their own field).
_LOGITS_HINT = " (logits? use --logits)"


def _without_hint(reason: str) -> str:
    return reason.replace(_LOGITS_HINT, "")


def _logits_problem(logits: np.ndarray, labels: list[str]) -> tuple[str, object, str] | None:
    """``(field, value, reason)`` when ``logits`` cannot be stored over ``labels``, else None."""
    if len(logits) != len(labels):
        return "logits", f"{len(logits)} values", f"the category map has {len(labels)} labels"
    bad = np.flatnonzero(~np.isfinite(logits))
    if bad.size:
        at = int(bad[0])
        return f"logits[{at}]", float(logits[at]), "a logit must be a finite number (a null reads as nan)"
    return None
