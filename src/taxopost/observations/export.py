"""Export a capture set's occurrences with their determination and its provenance."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from taxopost.io.results import write_table
from taxopost.observations.models import CaptureSet, Classification, Occurrence
from taxopost.observations.provenance import classification_chains


def provenance_chains(classification_ids: set[int]) -> dict[int, list[int]]:
    """For each classification, the ids along ``applied_to`` down to the model output.

    One query per level of the deepest chain (a few), not one per classification.
    """
    chains = classification_chains(classification_ids)
    return {clf_id: [step.pk for step in chain] for clf_id, chain in chains.items()}


def export_occurrences(capture_set: str, output: Path | str) -> int:
    """Write one row per occurrence of the capture set; returns the number of rows."""
    found = CaptureSet.named(capture_set)
    occurrences = list(
        Occurrence.objects.filter(id__in=CaptureSet.detections_of(found).values("occurrence_id"))
        .order_by("id")
        .values_list(
            "id", "key", "determination__name", "determination__rank", "determination_score",
            "determined_by_id", "determined_by__algorithm__key", "determined_by_identification_id",
        )
    )  # fmt: skip
    deciders = {row[5] for row in occurrences if row[5] is not None}
    chains = provenance_chains(deciders)
    algorithms = dict(
        Classification.objects.filter(id__any_of={i for chain in chains.values() for i in chain}).values_list(
            "id", "algorithm__key"
        )
    )
    columns: dict[str, list] = {
        "occurrence": [], "determination": [], "rank": [], "score": [], "decided_by": [], "provenance": [],
    }  # fmt: skip
    for _, key, name, rank, score, clf_id, algorithm, identification in occurrences:
        columns["occurrence"].append(key)
        columns["determination"].append(name)
        columns["rank"].append(rank)
        columns["score"].append(score)
        columns["decided_by"].append("identification" if identification else algorithm)
        chain = chains.get(clf_id, [])
        columns["provenance"].append(" <- ".join(algorithms[c] for c in chain) if chain else None)
    write_table(output, pa.table(columns))
    return len(occurrences)
