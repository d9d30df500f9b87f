"""Occurrence consensus on the platform: the core's :func:`~taxopost.core.consensus.consensus` per occurrence.

An occurrence's terminal classifications that carry a vector (of the source algorithm's chain:
the classifier and the masking outputs derived from it, since masking leaves the rows it does
not change as the classifier's) are combined. Each gets a new terminal classification holding the combined vector,
``applied_to`` it, so a roll-up after this task decides once per occurrence and a masking
before it is what gets combined. The runner never splits an occurrence between chunks, so a
chunk holds every detection of its occurrences that the scope holds (an occurrence crossing
the edge of a capture set is combined over the detections inside it).

Left as they are, and counted by reason (in classifications): detections without an
occurrence, occurrences with one detection (or fewer than ``min_detections``), occurrences whose
other detections in the scope have nothing to combine (a roll-up's output, without a vector, is
their current answer: the occurrence is not small, what it can combine is), and occurrences
refused whole: detections with different category maps, a detection with two current
classifications (two models: name a ``source_algorithm``), or a detection without what the
weighting needs: a box or image size (by area), a detector confidence (by detector confidence).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.db.models import Count, IntegerField, QuerySet, Value

from taxopost.core.consensus import consensus
from taxopost.core.taxonomy import NO_TAXON
from taxopost.core.vectors import softmax
from taxopost.dbutils import fetch_rows
from taxopost.errors import InputError
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import core_category_map
from taxopost.observations.models import Classification, Detection
from taxopost.observations.vectors import rows_to_bytes, stack
from taxopost.postprocessing.base import ChunkResult, PostProcessingTask
from taxopost.tasks.occurrence_consensus import OccurrenceConsensusSpec

NO_OCCURRENCE = "no occurrence"
ONE_DETECTION = "occurrence with one detection"
TOO_FEW = "fewer detections than min_detections"
MIXED_MAPS = "refused: the occurrence's detections use different category maps (name a source_algorithm)"
NO_AREA = "refused: a detection of the occurrence has no box or image size to weigh by"
NO_CONFIDENCE = "refused: a detection of the occurrence has no detector confidence to weigh by"
TWICE = "refused: a detection has current classifications of two models (name a source_algorithm)"
#: Fewer members than the occurrence has detections in the scope: not an occurrence of one detection.
OTHERS_WITHOUT_VECTOR = (
    "the occurrence's other detections have nothing to combine (their current answer holds no vector, "
    "as a roll-up's does, or is another model's)"
)

# The source's taxon as its id (named from the loaded taxonomy): a join with the taxa took 40% of a chunk's read.
_FIELDS = (
    "id", "detection_id", "detection__occurrence_id", "category_map_id", "algorithm_id", "scores", "logits",
    "taxon_id", "detection__bbox", "detection__source_image__width", "detection__source_image__height",
    "detection__confidence",
)  # fmt: skip
_AREA_FIELDS = ("detection__bbox", "detection__source_image__width", "detection__source_image__height")
_CONFIDENCE_FIELDS = ("detection__confidence",)
_WEIGHT_FIELDS = _AREA_FIELDS + _CONFIDENCE_FIELDS
_ID, _DETECTION, _OCCURRENCE, _MAP, _ALGORITHM, _SCORES, _LOGITS, _TAXON, _BBOX, _WIDTH, _HEIGHT, _CONF = range(12)


class OccurrenceConsensusTask(PostProcessingTask):
    spec = OccurrenceConsensusSpec
    whole_occurrences = True

    def prepare(self) -> None:
        self._chain: set[int] | None = None
        if self.config.source_algorithm is not None:
            # A classifier, or a masking of one (its chain is the same): a roll-up or a size filter holds no vectors.
            source = Algorithm.objects.filter(key=self.config.source_algorithm, category_map__isnull=False).first()
            if source is None:
                raise InputError(
                    "config.source_algorithm",
                    self.config.source_algorithm,
                    "no algorithm with a category map has this key",
                )
            links = dict(Algorithm.objects.values_list("id", "source_algorithm_id"))
            self._chain = {pk for pk in links if _root(pk, links) == _root(source.pk, links)}
        # What the weighting does not read is a constant, not a join (images, for the area).
        needed = {"area": _AREA_FIELDS, "detector_confidence": _CONFIDENCE_FIELDS}.get(self.config.weighting, ())
        unread = Value(None, IntegerField())
        self._fields = [unread if name in _WEIGHT_FIELDS and name not in needed else name for name in _FIELDS]
        config = self.config.model_dump(mode="json")
        weighting = "" if self.config.weighting == "none" else f", weighted by {self.config.weighting}"
        self.algorithm = self.output_algorithm(
            name=f"Occurrence consensus ({self.config.method}{weighting})", config=config
        )

    def select(self) -> QuerySet[Classification]:
        return self.candidates(self.inputs())

    def candidates(self, queryset: QuerySet[Classification]) -> QuerySet[Classification]:
        """Inputs with a vector (of the source algorithm's chain, if named), not this task's own outputs."""
        queryset = queryset.exclude(category_map=None).exclude(algorithm__task_type=self.key)
        if self._chain is not None:
            queryset = queryset.filter(algorithm_id__in=sorted(self._chain))
        return queryset

    def process(self, ids: list[int]) -> ChunkResult:
        rows = fetch_rows(Classification.objects.filter(id__any_of=ids).order_by("id").values_list(*self._fields))
        result = ChunkResult(examined=len(rows))
        occurrences: dict[int, list[tuple]] = defaultdict(list)
        for row in rows:
            if row[_SCORES] is None and row[_LOGITS] is None:
                result.skipped["no score vector"] += 1
            elif row[_OCCURRENCE] is None:
                result.skipped[NO_OCCURRENCE] += 1
            else:
                occurrences[row[_OCCURRENCE]].append(row)
        by_map: dict[int, list[list[tuple]]] = defaultdict(list)
        refused: dict[int, str] = {}
        for occurrence, members in occurrences.items():
            reason = self._refusal(members)
            if reason is None:
                by_map[members[0][_MAP]].append(members)
            else:
                refused[occurrence] = reason
        few = [occurrence for occurrence, reason in refused.items() if reason in (ONE_DETECTION, TOO_FEW)]
        if few:  # one query, and only for these: is it the occurrence that is small, or what it has to combine?
            in_scope = (
                Detection.objects.filter(occurrence_id__any_of=few, pk__in=self.scope.detections())
                .values("occurrence_id")
                .annotate(n=Count("id"))
            )
            for row in in_scope:
                if row["n"] > len(occurrences[row["occurrence_id"]]):
                    refused[row["occurrence_id"]] = OTHERS_WITHOUT_VECTOR
        for occurrence, reason in refused.items():
            result.skipped[reason] += len(occurrences[occurrence])
        for category_map_id, groups in by_map.items():
            self._combine(category_map_id, groups, result)
        return result

    def _refusal(self, members: list[tuple]) -> str | None:
        """Why an occurrence is left as it is, or None to combine it."""
        if len(members) == 1:
            return ONE_DETECTION
        if len(members) < self.config.min_detections:
            return TOO_FEW
        if len({row[_MAP] for row in members}) > 1:
            return MIXED_MAPS
        if len({row[_DETECTION] for row in members}) < len(members):
            return TWICE
        if self.config.weighting == "area" and np.isnan(_areas(members)).any():  # a box of area 0 has no say
            return NO_AREA
        if self.config.weighting == "detector_confidence" and any(row[_CONF] is None for row in members):
            return NO_CONFIDENCE
        return None

    def _combine(self, category_map_id: int, groups: list[list[tuple]], result: ChunkResult) -> None:
        category_map = core_category_map(category_map_id, self.taxonomy)
        members = [row for group in groups for row in group]
        values = _probabilities(members, category_map.n_classes)
        group_of = np.repeat(np.arange(len(groups)), [len(group) for group in groups])
        weights = _weights(members, self.config.weighting)
        try:
            combined = consensus(values, group_of, category_map, method=self.config.method, weights=weights)
        except InputError as exc:  # a stored vector that is not a distribution: name its classification
            if exc.row is None:
                raise
            raise InputError(f"classification {members[exc.row][_ID]} scores", exc.value, exc.reason) from None
        blobs = rows_to_bytes(combined.scores)
        taxonomy = self.taxonomy
        # A change's "before" is the source's taxon here; the commit replaces it by its chain's current answer.
        index_of = taxonomy.index_of
        for g, group in enumerate(groups):
            winner = int(category_map.class_taxa[combined.winner[g]])
            details = {
                "task": self.key,
                "occurrence": group[0][_OCCURRENCE],
                "members": [row[_DETECTION] for row in group],
                "sources": [row[_ID] for row in group],
                "method": self.config.method,
                "weighting": self.config.weighting,
                "mass": round(float(combined.mass[g]), 6),
            }
            for row in group:
                result.add_change(
                    row[_ID],
                    detection_id=row[_DETECTION],
                    occurrence_id=row[_OCCURRENCE],
                    taxon_id=int(taxonomy.db_ids[winner]),
                    score=float(combined.score[g]),
                    scores=blobs[g],
                    category_map_id=category_map_id,
                    algorithm=self.algorithm,
                    details=details,
                    before=self.named(index_of.get(row[_TAXON], NO_TAXON)),
                    after=self.named(winner),
                )


def _root(pk: int, links: dict[int, int | None]) -> int:
    """The algorithm a chain starts from: follow ``source_algorithm`` to its end."""
    seen = {pk}
    while links.get(pk) is not None and links[pk] not in seen:
        pk = links[pk]
        seen.add(pk)
    return pk


def _probabilities(rows: list[tuple], n_classes: int) -> np.ndarray:
    """The stored scores of each row, or the softmax of its logits where it has no scores."""
    with_scores = [i for i, row in enumerate(rows) if row[_SCORES] is not None]
    with_logits = [i for i, row in enumerate(rows) if row[_SCORES] is None]
    values = np.empty((len(rows), n_classes), dtype=np.float32)
    if with_scores:
        values[with_scores] = stack([rows[i][_SCORES] for i in with_scores], n_classes)
    if with_logits:
        logits = stack([rows[i][_LOGITS] for i in with_logits], n_classes)
        bad = ~np.isfinite(logits).all(axis=1)
        if bad.any():
            row = rows[with_logits[int(np.flatnonzero(bad)[0])]]
            raise InputError(f"classification {row[_ID]} logits", "non-finite", "values must be finite")
        values[with_logits] = softmax(logits)
    return values


def _weights(rows: list[tuple], weighting: str) -> np.ndarray | None:
    """Each row's say in its occurrence (None: equal); :meth:`_refusal` has checked they are known."""
    if weighting == "area":
        return _areas(rows)
    if weighting == "detector_confidence":
        return np.array([row[_CONF] for row in rows], dtype=np.float64)
    return None


def _areas(rows: list[tuple]) -> np.ndarray:
    """Each detection's box area in pixels (a detection without a box is its whole image); NaN if unknown."""
    areas = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        box = row[_BBOX]
        if box:
            areas[i] = max(float(box[2]) - float(box[0]), 0.0) * max(float(box[3]) - float(box[1]), 0.0)
        elif row[_WIDTH] and row[_HEIGHT]:
            areas[i] = float(row[_WIDTH]) * float(row[_HEIGHT])
    return areas
