"""Rank roll-up on the platform: the core's :func:`~taxopost.core.rollup.rank_rollup` on stored vectors."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.db.models import QuerySet

from taxopost.core.ranks import sort_fine_to_coarse
from taxopost.core.rollup import check_ranks_present, rank_rollup
from taxopost.core.taxonomy import NO_TAXON
from taxopost.dbutils import fetch_rows
from taxopost.ml.operations import core_category_map
from taxopost.observations.models import Classification
from taxopost.observations.vectors import stack
from taxopost.postprocessing.base import ChunkResult, PostProcessingTask
from taxopost.tasks.rank_rollup import RankRollupSpec
from taxopost.taxa.operations import load_taxonomy


class RankRollupTask(PostProcessingTask):
    spec = RankRollupSpec

    def prepare(self) -> None:
        # At job creation: a rank the taxonomy lacks is the caller's mistake, not a failed job.
        check_ranks_present(load_taxonomy().core, list(self.config.thresholds), field="config.thresholds")
        config = self.config.model_dump(mode="json")
        given = self.config.thresholds  # fine to coarse: PostgreSQL's jsonb keeps keys in its own order
        thresholds = ", ".join(f"{rank} {given[rank]:g}" for rank in sort_fine_to_coarse(given))
        self.algorithm = self.output_algorithm(name=f"Rank roll-up ({thresholds}; {self.config.mode})", config=config)

    def select(self) -> QuerySet[Classification]:
        """Inputs that carry a score or logit vector."""
        return self.inputs().exclude(category_map=None)

    def process(self, ids: list[int]) -> ChunkResult:
        rows = fetch_rows(
            Classification.objects.filter(id__any_of=ids)
            .order_by("id")
            .values_list("id", "detection_id", "detection__occurrence_id", "category_map_id", "scores", "logits")
        )
        result = ChunkResult(examined=len(rows))
        groups: dict[int, list[tuple]] = defaultdict(list)
        for row in rows:
            if row[4] is None and row[5] is None:
                result.skipped["no score vector"] += 1
            else:
                groups[row[3]].append(row)
        for category_map_id, group in groups.items():
            self._roll_up(category_map_id, group, result)
        return result

    def _roll_up(self, category_map_id: int, rows: list[tuple], result: ChunkResult) -> None:
        category_map = core_category_map(category_map_id, self.taxonomy)
        with_scores = [row for row in rows if row[4] is not None]
        with_logits = [row for row in rows if row[4] is None]
        for subset, column, logits in ((with_scores, 4, False), (with_logits, 5, True)):
            if not subset:
                continue
            values = stack([row[column] for row in subset], category_map.n_classes)
            rolled = rank_rollup(
                values,
                category_map,
                thresholds=self.config.thresholds,
                order=self.config.order,
                mode=self.config.mode,
                logits=logits,
            )
            taxonomy = self.taxonomy
            names = taxonomy.core.names
            for i in np.flatnonzero(rolled.changed):
                clf_id, detection_id, occurrence_id = subset[i][:3]
                target, source = int(rolled.taxon[i]), int(rolled.source_taxon[i])
                evidence = [
                    {"rank": rank, "taxon": names[t] if t != NO_TAXON else None, "score": _float(s)}
                    for rank, t, s in zip(rolled.order, rolled.evidence_taxon[i], rolled.evidence_score[i], strict=True)
                    if t != NO_TAXON
                ]
                result.add_change(
                    clf_id,
                    detection_id=detection_id,
                    occurrence_id=occurrence_id,
                    taxon_id=int(taxonomy.db_ids[target]),
                    score=float(rolled.score[i]),
                    algorithm=self.algorithm,
                    details={
                        "task": self.key,
                        "evidence": evidence,
                        "thresholds": self.config.thresholds,
                        "mode": self.config.mode,
                        "source_score": float(rolled.source_score[i]),
                    },
                    before=self.named(source),
                    after=self.named(target),
                )
            result.skipped["already confident"] += int((rolled.accepted_rank >= 0).sum() - rolled.changed.sum())
            result.skipped["no rank cleared its threshold"] += int((rolled.accepted_rank < 0).sum())


def _float(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)
