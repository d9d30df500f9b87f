"""Small-size filter on the platform: the core's :func:`~taxopost.core.size_filter.small_size_filter`.

It works on detections, as Antenna's does: the plan lists the scope's detections, classified
or not. A detection that is too small gets a terminal "Not identifiable" classification (rank
unknown, score 1.0) applied to each of its terminal classifications, which are demoted; one
without a classification (a detector-only detection) gets one applied to nothing. A detection
already "Not identifiable" is left alone, so a re-run changes nothing. Detections without a
box or an image size (nor a relative area, as MegaDetector's relative boxes give) are
skipped and counted.

A run with another threshold starts from what the earlier run's labels were applied to
(:meth:`PostProcessingTask.inputs`) and replaces those labels. A bare detection's label has
nothing below it: it stays until the run that wrote it is reverted.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.db.models import F, QuerySet

from taxopost.core.ranks import UNKNOWN
from taxopost.core.size_filter import NOT_IDENTIFIABLE, small_size_filter
from taxopost.errors import InputError
from taxopost.observations.models import Classification, Detection
from taxopost.postprocessing.base import ChunkResult, PostProcessingTask
from taxopost.tasks.small_size_filter import SmallSizeFilterSpec
from taxopost.taxa.models import Taxon
from taxopost.taxa.operations import not_identifiable


class SmallSizeFilterTask(PostProcessingTask):
    spec = SmallSizeFilterSpec

    def prepare(self) -> None:
        if self.dry_run:
            found = Taxon.objects.filter(name=NOT_IDENTIFIABLE).first()
            self.label = found or Taxon(name=NOT_IDENTIFIABLE, rank=UNKNOWN)
        else:
            self.label = not_identifiable()
        config = self.config.model_dump(mode="json")
        self.algorithm = self.output_algorithm(
            name=f"Small-size filter (< {self.config.size_threshold:g} of the image)", config=config
        )

    def select(self) -> QuerySet[Classification]:
        """Inputs that are not already "Not identifiable" (the plan lists detections: :meth:`plan_rows`)."""
        return self.inputs().exclude(taxon__name=NOT_IDENTIFIABLE)

    def plan_rows(self) -> QuerySet:
        """The scope's detections, classified or not, by occurrence then id."""
        detections = self.scope.detections().order_by(F("occurrence_id").asc(nulls_last=True), "id")
        return detections.values_list("id", "occurrence_id")

    def chunk_inputs(self, ids: list[int]) -> tuple[dict, list[int]]:
        """Every planned detection goes to :meth:`process`; the inputs are those of the classified ones."""
        classified = self.inputs(detections=ids).exclude(taxon__name=NOT_IDENTIFIABLE).values_list("id", flat=True)
        return self.resolve(list(classified), lock=False), sorted(ids)

    def process(self, ids: list[int]) -> ChunkResult:
        """``ids`` are detection ids; three queries: the detections, their inputs (:meth:`inputs`) and
        whether each has a current answer at all (a detection with none is a bare detection)."""
        detections = list(
            Detection.objects.filter(id__any_of=ids)
            .order_by("id")
            .values_list("id", "occurrence_id", "bbox", "source_image__width", "source_image__height", "relative_area")
        )
        inputs: dict[int, list[tuple]] = defaultdict(list)
        for clf_id, detection_id, name, rank in (
            self.inputs(detections=ids).order_by("id").values_list("id", "detection_id", "taxon__name", "taxon__rank")
        ):
            inputs[detection_id].append((clf_id, name, rank))
        answered = set(
            Classification.objects.filter(detection_id__any_of=ids, terminal=True).values_list(
                "detection_id", flat=True
            )
        )
        result = ChunkResult(examined=len(detections))
        boxes = np.array([_box(row[2]) for row in detections], dtype=np.float64).reshape(-1, 4)
        sizes = np.array([(_num(row[3]), _num(row[4])) for row in detections], dtype=np.float64).reshape(-1, 2)
        try:
            relative = np.array([_num(row[5]) for row in detections], dtype=np.float64)
            flagged = small_size_filter(boxes, sizes, relative_area=relative, size_threshold=self.config.size_threshold)
        except InputError as exc:
            row = detections[_row_of(exc.field)]
            raise InputError(f"detection {row[0]} {exc.field.split('[')[0]}", exc.value, exc.reason) from None
        result.skipped["no bbox or image size"] += int(flagged.skipped.sum())
        result.skipped["large enough"] += int((~flagged.skipped & ~flagged.too_small).sum())
        for i in np.flatnonzero(flagged.too_small):
            detection_id, occurrence_id = detections[i][:2]
            sources = [answer for answer in inputs.get(detection_id, []) if answer[1] != NOT_IDENTIFIABLE]
            if not sources and detection_id in answered:  # this config's label, or another's on a bare detection
                result.skipped["already not identifiable"] += 1
                continue
            details = {
                "task": self.key,
                "relative_area": float(flagged.relative_area[i]),
                "size_threshold": self.config.size_threshold,
            }
            for clf_id, name, rank in sources or [(None, "", "unclassified")]:  # none: applied to nothing
                result.add_change(
                    clf_id,
                    detection_id=detection_id,
                    occurrence_id=occurrence_id,
                    taxon_id=self.label.pk,
                    score=1.0,
                    algorithm=self.algorithm,
                    details=details,
                    before=(name, rank),
                    after=(NOT_IDENTIFIABLE, UNKNOWN),
                )
        return result


def _box(value) -> tuple[float, float, float, float]:
    if not value:
        return (np.nan,) * 4
    return tuple(float(v) for v in value)


def _num(value) -> float:
    return np.nan if value is None else float(value)


def _row_of(field: str) -> int:
    return int(field.split("[", 1)[1].rstrip("]"))
