"""Import one Antenna capture set: taxa, category maps, images, detections, occurrences,
classifications with their vectors, and identifications.

Everything goes through the importers the files use (the taxonomy importer, the category-map
registration, :class:`PredictionWriter`, :func:`save_identifications`), in **one transaction**:
a network error, a refusal or Ctrl-C leaves the database as it was, and the next run does the
whole import again. Rows are matched on natural keys (Antenna's ids as detection and occurrence
keys, image paths, algorithm keys, identifications by occurrence, taxon, person and time), so a
re-run adds only what is new, and fetches the detail of a classification only when it is not
stored yet. Memory is bounded by one page of occurrences, whatever the capture set's size.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from taxopost.core.ranks import RANK_LEVELS
from taxopost.core.taxonomy import Taxonomy, TaxonRecord
from taxopost.errors import InputError
from taxopost.io.antenna import (
    AntennaAlgorithm,
    AntennaClassification,
    AntennaDetection,
    AntennaIdentification,
    AntennaImage,
    AntennaSource,
    AntennaTaxon,
    ConnectorError,
    prefetched,
)
from taxopost.io.predictions import PredictionRecord, record_from_dict
from taxopost.ml.operations import get_or_create_algorithm, import_category_map
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.identifications import UNDATED, save_identifications
from taxopost.observations.imports import ImportSummary
from taxopost.observations.models import CaptureSet, Classification, Identification, Occurrence, Project
from taxopost.observations.prediction_writer import ClassificationExtras, ImageRow, PredictionWriter
from taxopost.observations.predictions import ANALYZE_AFTER, BATCH_SIZE, refresh_statistics
from taxopost.taxa.models import Taxon
from taxopost.taxa.operations import import_taxonomy

_ANTENNA_SET = re.compile(r"Antenna capture set (\d+) ")

#: Capture details read at once when looking for detections that belong to no occurrence.
CAPTURE_CHUNK = 100

# Why something was left out (the summary counts each reason; docs/formats.md explains them).
OUTSIDE = "detections on images outside the capture set (their occurrence spans it)"
DERIVED = "classifications derived by Antenna (applied_to set): models' outputs only"
NO_OUTPUT = "detections with no model classification"
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
    was not imported from the same Antenna project is refused (name another one).
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
        run = _Import(source, summary, project)
        run.images()
        run.occurrences(progress)
        run.loose_detections(every_capture)
        capture_set = CaptureSet.objects.get(name=summary.capture_set)
        if not capture_set.description:
            capture_set.description = f"Antenna capture set {info.capture_set_id} ({info.capture_set_name})"
            capture_set.save(update_fields=["description"])
        recompute_determinations(run.writer.touched_occurrences | run.identified)
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
            rows = [ImageRow(i.path, i.width, i.height, i.timestamp) for i in page]
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
                self.detections(detections, page.identifications)
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
        self, detections: list[AntennaDetection], identifications: Sequence[AntennaIdentification] = ()
    ) -> None:
        """Start fetching the classifications these detections lack, then store the previous batch
        while they arrive (:meth:`flush` stores the last)."""
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
        wanted = []  # (detection, reference, terminal)
        for detection in kept:
            derived = [ref for ref in detection.classifications if ref.applied_to is not None]
            outputs = [ref for ref in detection.classifications if ref.applied_to is None]
            if derived:
                self.summary.skipped[DERIVED] += len(derived)
            if not outputs:
                self.summary.skipped[NO_OUTPUT] += 1
            # A model output whose derived successor is left out is the current answer of its chain.
            sources = {ref.applied_to for ref in derived}
            wanted.extend((detection, ref, ref.terminal or ref.id in sources) for ref in outputs)
        stored = self._stored(kept)
        fresh = [item for item in wanted if (str(item[0].id), item[1].algorithm_key) not in stored]
        self.summary.unchanged["classifications"] += len(wanted) - len(fresh)
        batch = self.source.classifications([ref.id for _, ref, _ in fresh]) if fresh else None
        try:
            self.flush()
        except BaseException as exc:
            if batch is not None:
                batch.cancel(interrupted=not isinstance(exc, Exception))
            raise
        self.pending = (fresh, batch, list(identifications))

    def flush(self) -> None:
        """Store the pending batch: its classifications, then its identifications (whose
        occurrences the classifications create)."""
        if self.pending is None:
            return
        fresh, batch, identifications = self.pending
        self.pending = None
        details = batch.results() if batch is not None else []
        self.summary.fetched["classifications"] += len(details)
        for start in range(0, len(fresh), BATCH_SIZE):
            self._classifications(fresh[start : start + BATCH_SIZE], details[start : start + BATCH_SIZE])
        self.identifications(identifications)

    def _stored(self, detections: list[AntennaDetection]) -> set[tuple[str, str]]:
        """(detection key, algorithm key) of the model outputs already stored for these detections."""
        if not detections:
            return set()
        return set(
            Classification.objects.filter(
                detection__source_image__project=self.project,
                detection__key__in=[str(d.id) for d in detections],
                applied_to=None,
            ).values_list("detection__key", "algorithm__key")
        )

    def _classifications(self, items: list, details: list[AntennaClassification]) -> None:
        records: list[PredictionRecord] = []
        extras: list[ClassificationExtras] = []
        base = self.source.client.base_url
        for (detection, _, terminal), detail in zip(items, details, strict=True):
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
                )
            )
            self._check_taxon(detail.taxon_id, values if values is not None else logits, labels)
        if records:
            self.writer.write(records, extras)
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
        category_map = self.source.category_map(algorithm.category_map_id)
        by_name = {taxon.name: taxon.id for taxon in self.source.taxa().values()}
        label_taxa = {by_name[label] for label in category_map.labels if label in by_name}
        unmatched = sum(label not in by_name for label in category_map.labels)
        if unmatched:
            self.summary.skipped[f"labels of {algorithm.key!r} that match no taxon of the project (excluded)"] += (
                unmatched
            )
        self.ensure_taxa(label_taxa)
        stored, created = import_category_map(category_map.labels, on_unresolved="exclude")
        self.summary.created.add("category maps", int(created))
        _, new = get_or_create_algorithm(
            algorithm.key, name=algorithm.name, version=algorithm.version, category_map=stored
        )
        self.summary.created.add("algorithms", int(new))
        self.summary.fetched["category maps"] += 1
        self.algorithms[algorithm.id] = (algorithm.key, category_map.labels)
        return self.algorithms[algorithm.id]

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

    def identifications(self, identifications: list[AntennaIdentification]) -> None:
        if not identifications:
            return
        self.summary.fetched["identifications"] += len(identifications)
        occurrences = dict(
            Occurrence.objects.filter(
                project=self.project, key__in={str(i.occurrence_id) for i in identifications}
            ).values_list("key", "id")
        )
        kept = [i for i in identifications if str(i.occurrence_id) in occurrences]
        if len(kept) < len(identifications):
            self.summary.skipped[UNIDENTIFIED_OCCURRENCE] += len(identifications) - len(kept)
        self.ensure_taxa({i.taxon_id for i in kept})
        taxa = self.source.taxa()
        names = {taxa[i.taxon_id].name for i in kept if i.taxon_id in taxa}
        taxon_ids = dict(Taxon.objects.filter(name__in=names).values_list("name", "id"))
        rows = []
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
                )
            )
            self.identified.add(occurrence)
        new = save_identifications(rows)
        self.summary.created.add("identifications", new)
        self.summary.unchanged["identifications"] += len(rows) - new


def _logits_problem(logits: np.ndarray, labels: list[str]) -> tuple[str, object, str] | None:
    """``(field, value, reason)`` when ``logits`` cannot be stored over ``labels``, else None."""
    if len(logits) != len(labels):
        return "logits", f"{len(logits)} values", f"the category map has {len(labels)} labels"
    bad = np.flatnonzero(~np.isfinite(logits))
    if bad.size:
        at = int(bad[0])
        return f"logits[{at}]", float(logits[at]), "a logit must be a finite number (a null reads as nan)"
    return None
