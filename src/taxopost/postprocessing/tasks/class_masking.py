"""Class masking on the platform: the core's :func:`~taxopost.core.masking.class_masking` on stored vectors.

The output algorithm is one per (source algorithm, taxa list, reweight), sharing the source's
category map; masked scores are stored, the raw logits kept. Without a source algorithm the
task masks what the classifiers wrote, never a masking's own output. Given a masking output as
its source, it masks that output's stored (masked) scores, not the model's logits it carries:
masking to the same list again then changes nothing, and to another list keeps the taxa both
admit.

With ``winner_changes_only`` a row is written only when its winning taxon changes (Antenna's
#1377); the others keep the model's output as their current answer. :meth:`ClassMaskingTask.warnings`
measures what the list keeps (:func:`taxopost.core.coverage.mask_coverage`) on a systematic
sample of the scope's vectors.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.db.models import F, QuerySet

from taxopost.core.coverage import MaskCoverage, class_mass, mask_coverage
from taxopost.core.masking import class_masking
from taxopost.dbutils import fetch_rows
from taxopost.errors import InputError
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import core_category_map
from taxopost.observations.models import Classification
from taxopost.observations.vectors import rows_to_bytes, stack
from taxopost.postprocessing.base import ChunkResult, PostProcessingTask
from taxopost.tasks.class_masking import ClassMaskingSpec
from taxopost.taxa.models import TaxaList

#: Vectors a coverage check reads at most: 5,000 of 2,500 float32 classes are 50 MB read, in
#: batches of COVERAGE_BATCH (5 MB in memory at a time); the mass share of such a sample is
#: within about a percentage point of the scope's.
COVERAGE_SAMPLE = 5000
COVERAGE_BATCH = 500


class ClassMaskingTask(PostProcessingTask):
    spec = ClassMaskingSpec

    def prepare(self) -> None:
        taxa_list = TaxaList.objects.filter(name=self.config.taxa_list).first()
        if taxa_list is None:
            raise InputError("config.taxa_list", self.config.taxa_list, "no taxa list has this name")
        listed = self.taxonomy.to_core(taxa_list.taxa.values_list("id", flat=True))
        self.listed = [int(t) for t in listed if t >= 0]
        if not self.listed:
            raise InputError("config.taxa_list", self.config.taxa_list, "the taxa list is empty")
        self.taxa_list = taxa_list
        sources = Algorithm.objects.filter(category_map__isnull=False)
        if self.config.source_algorithm is None:
            sources = sources.filter(task_type=Algorithm.CLASSIFICATION)
        else:
            sources = sources.filter(key=self.config.source_algorithm)
            if not sources.exists():
                raise InputError(
                    "config.source_algorithm",
                    self.config.source_algorithm,
                    "no algorithm with a category map has this key",
                )
        self._candidates = list(sources)
        self._outputs: dict[int, Algorithm] = {a.pk: self._output_for(a) for a in self._candidates}
        present = set(self.inputs().exclude(category_map=None).values_list("algorithm_id", flat=True).distinct())
        self._sources = {a.pk: a for a in self._candidates if a.pk in present}
        self._keep: dict[int, np.ndarray] = {}
        for algorithm in self._sources.values():
            self._keep_mask(algorithm.category_map_id)  # fail early if the list keeps none of its classes

    def earlier_algorithms(self) -> QuerySet[Algorithm]:
        """The maskings of this run's source algorithms (a masking of a masking is another step)."""
        return super().earlier_algorithms().filter(source_algorithm__in=[a.pk for a in self._candidates])

    def select(self) -> QuerySet[Classification]:
        """Inputs of the source algorithms, with a category map."""
        return self.inputs().filter(algorithm_id__in=list(self._sources)).exclude(category_map=None)

    def _keep_mask(self, category_map_id: int) -> np.ndarray:
        keep = self._keep.get(category_map_id)
        if keep is None:
            category_map = core_category_map(category_map_id, self.taxonomy)
            try:
                keep = self._keep[category_map_id] = category_map.admitted_by(self.listed, field="config.taxa_list")
            except InputError as exc:
                raise InputError("config.taxa_list", self.config.taxa_list, exc.reason) from None
        return keep

    def _output_for(self, source: Algorithm) -> Algorithm:
        config = {"taxa_list": self.taxa_list.name, "reweight": self.config.reweight, "source_algorithm": source.key}
        if self.config.winner_changes_only:  # only when set: the algorithms of earlier runs keep their keys
            config["winner_changes_only"] = True
        suffix = ("" if self.config.reweight else " (absolute)") + (
            " (winner changes only)" if self.config.winner_changes_only else ""
        )
        return self.output_algorithm(
            name=f"{source.name} masked to {self.taxa_list.name}{suffix}",
            config=config,
            source=source,
            category_map_id=source.category_map_id,
        )

    def warnings(self) -> list[dict]:
        """A low-coverage warning per source algorithm whose classes or mass the list mostly drops."""
        found = []
        for coverage, algorithm in self.coverage():
            message = coverage.warning()
            if message is not None:
                found.append(
                    {"code": "low_coverage", "message": message, "algorithm": algorithm.key, **coverage.as_dict()}
                )
        return found

    def coverage(self) -> list[tuple[MaskCoverage, Algorithm]]:
        """What the list keeps of each source algorithm's classes and of its vectors on the scope
        (all of them, demoted or not: a re-run measures what the first run did).

        The mass is measured on a systematic sample (every k-th classification by id) of at most
        :data:`COVERAGE_SAMPLE` vectors, read :data:`COVERAGE_BATCH` at a time: a few queries and
        bounded memory whatever the scope's size.
        """
        measured = []
        for algorithm in self._sources.values():
            category_map = core_category_map(algorithm.category_map_id, self.taxonomy)
            # every output of the algorithm on the scope, current or not: a first run's numbers
            queryset = Classification.objects.filter(detection__in=self.scope.detections(), algorithm_id=algorithm.pk)
            queryset = queryset.exclude(category_map=None)
            total = queryset.count()
            step = max(1, -(-total // COVERAGE_SAMPLE))
            if step > 1:
                queryset = queryset.alias(position=F("id") % step).filter(position=0)
            ids = list(queryset.order_by("id").values_list("id", flat=True)[:COVERAGE_SAMPLE])
            mass = np.zeros(category_map.n_classes, dtype=np.float64)
            rows = 0
            for start in range(0, len(ids), COVERAGE_BATCH):
                vectors = fetch_rows(
                    Classification.objects.filter(id__any_of=ids[start : start + COVERAGE_BATCH])
                    .order_by("id")
                    .values_list("scores", "logits")
                )
                for from_logits in (False, True):
                    blobs = [self._vector(row, algorithm, from_logits) for row in vectors]
                    blobs = [blob for blob in blobs if blob is not None]
                    if blobs:
                        values = stack(blobs, category_map.n_classes)
                        mass += class_mass(values, category_map, logits=from_logits)
                        rows += len(blobs)
            keep = self._keep_mask(algorithm.category_map_id)
            measured.append((mask_coverage(keep, category_map, mass, rows=rows, scope_rows=total), algorithm))
        return measured

    def _vector(self, row: tuple, source: Algorithm, from_logits: bool) -> bytes | None:
        """A stored ``(scores, logits)`` row's vector if :meth:`process` masks it from that kind."""
        scores, logits = row
        if (scores is None and logits is None) or self._uses_logits(scores, logits, source) != from_logits:
            return None
        return logits if from_logits else scores

    def _uses_logits(self, scores: bytes | None, logits: bytes | None, source: Algorithm) -> bool:
        """A classifier's logits, where it gave them; a masking output's masked scores."""
        return logits is not None and (scores is None or source.task_type != self.key)

    def process(self, ids: list[int]) -> ChunkResult:
        rows = fetch_rows(
            Classification.objects.filter(id__any_of=ids)
            .order_by("id")
            .values_list(
                "id", "detection_id", "detection__occurrence_id", "category_map_id", "algorithm_id", "scores", "logits"
            )
        )
        result = ChunkResult(examined=len(rows))
        groups: dict[tuple[int, int, bool], list[tuple]] = defaultdict(list)
        for row in rows:
            if row[5] is None and row[6] is None:
                result.skipped["no score vector"] += 1
                continue
            from_logits = self._uses_logits(row[5], row[6], self._sources[row[4]])
            groups[(row[3], row[4], from_logits)].append(row)
        for (category_map_id, algorithm_id, from_logits), group in groups.items():
            self._mask(category_map_id, self._sources[algorithm_id], from_logits, group, result)
        return result

    def _mask(
        self, category_map_id: int, source: Algorithm, from_logits: bool, rows: list, result: ChunkResult
    ) -> None:
        category_map = core_category_map(category_map_id, self.taxonomy)
        values = stack([row[6] if from_logits else row[5] for row in rows], category_map.n_classes)
        masked = class_masking(
            values, category_map, self._keep_mask(category_map_id), logits=from_logits, reweight=self.config.reweight,
            winner_only=self.config.winner_changes_only,
        )  # fmt: skip
        changed = np.flatnonzero(masked.changed)
        blobs = rows_to_bytes(masked.scores[changed], sparse=True)
        output = self._outputs[source.pk]
        taxonomy = self.taxonomy
        for blob, i in zip(blobs, changed, strict=True):
            clf_id, detection_id, occurrence_id = rows[i][:3]
            winner = int(category_map.class_taxa[masked.winner[i]])
            before = int(category_map.class_taxa[masked.source_class[i]])
            result.add_change(
                clf_id,
                detection_id=detection_id,
                occurrence_id=occurrence_id,
                taxon_id=int(taxonomy.db_ids[winner]),
                score=float(masked.score[i]),
                scores=blob,
                logits=rows[i][6],
                category_map_id=category_map_id,
                algorithm=output,
                details={
                    "task": self.key,
                    "taxa_list": self.taxa_list.name,
                    "reweight": self.config.reweight,
                    **({"winner_changes_only": True} if self.config.winner_changes_only else {}),
                    "removed_mass": round(float(masked.removed_mass[i]), 6),
                },
                before=self.named(before),
                after=self.named(winner),
            )
        reason = "winner unchanged" if self.config.winner_changes_only else "nothing to remove"
        result.skipped[reason] += len(rows) - len(changed)
