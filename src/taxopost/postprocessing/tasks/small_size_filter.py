"""Small-size filter on the platform: the core's :func:`~taxopost.core.size_filter.small_size_filter`.

Each terminal classification of a detection that is too small gets a terminal "Not identifiable"
classification (rank unknown, score 1.0) applied to it. Detections without a box or an image
size are skipped and counted.
"""

from __future__ import annotations

import numpy as np
from django.db.models import QuerySet

from taxopost.core.ranks import UNKNOWN
from taxopost.core.size_filter import NOT_IDENTIFIABLE, small_size_filter
from taxopost.errors import InputError
from taxopost.observations.models import Classification
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
        """Inputs that are not already "Not identifiable"."""
        return self.inputs().exclude(taxon__name=NOT_IDENTIFIABLE)

    def process(self, ids: list[int]) -> ChunkResult:
        rows = list(
            Classification.objects.filter(id__any_of=ids)
            .order_by("id")
            .values_list(
                "id",
                "detection_id",
                "detection__occurrence_id",
                "taxon__name",
                "taxon__rank",
                "detection__bbox",
                "detection__source_image__width",
                "detection__source_image__height",
            )
        )
        result = ChunkResult(examined=len(rows))
        boxes = np.array([_box(row[5]) for row in rows], dtype=np.float64).reshape(-1, 4)
        sizes = np.array([(_num(row[6]), _num(row[7])) for row in rows], dtype=np.float64).reshape(-1, 2)
        try:
            flagged = small_size_filter(boxes, sizes, size_threshold=self.config.size_threshold)
        except InputError as exc:
            row = rows[_row_of(exc.field)]
            raise InputError(f"detection {row[1]} {exc.field.split('[')[0]}", exc.value, exc.reason) from None
        result.skipped["no bbox or image size"] += int(flagged.skipped.sum())
        result.skipped["large enough"] += int((~flagged.skipped & ~flagged.too_small).sum())
        for i in np.flatnonzero(flagged.too_small):
            clf_id, detection_id, occurrence_id, name, rank = rows[i][:5]
            result.add_change(
                clf_id,
                detection_id=detection_id,
                occurrence_id=occurrence_id,
                taxon_id=self.label.pk,
                score=1.0,
                algorithm=self.algorithm,
                details={
                    "task": self.key,
                    "relative_area": float(flagged.relative_area[i]),
                    "size_threshold": self.config.size_threshold,
                },
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
