"""An occurrence's determination: the latest human identification, else the best prediction.

Rule (the same for every task, the importers and revert):

1. the latest identification that is not withdrawn, if any;
2. else the best terminal classification of the occurrence's detections: identifiable ones
   (rank other than ``unknown``) before "Not identifiable", then the highest score, then the
   most recent;
3. else nothing.

Recomputing costs a fixed number of queries for any number of occurrences.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from taxopost.core.ranks import UNKNOWN
from taxopost.dbutils import insert_rows, update_rows
from taxopost.observations.models import Classification, DeterminationChange, Identification, Occurrence


def recompute_determinations(occurrence_ids: Iterable[int], *, job=None) -> int:
    """Recompute and store the determinations of these occurrences; returns how many changed.

    Inside a transaction the occurrences' rows are locked first, in id order: a job's chunk, an
    import or a revert touching the same occurrence at the same time waits for the other to
    commit, then reads its classifications too, so no determination is computed from half of them.
    """
    ids = sorted({int(i) for i in occurrence_ids if i is not None})
    if not ids:
        return 0
    occurrences = Occurrence.objects.filter(id__any_of=ids).order_by("id")
    if connection.in_atomic_block:
        occurrences = occurrences.select_for_update()
    current = list(
        occurrences.values_list(
            "id", "determination_id", "determination_score", "determined_by_id", "determined_by_identification_id"
        )
    )
    identified = Identification.objects.filter(occurrence_id__any_of=ids).current_by_occurrence()
    best: dict[int, tuple[tuple, int, int, float]] = {}
    for clf_id, occurrence_id, taxon_id, score, rank in Classification.objects.filter(
        detection__occurrence_id__any_of=ids, terminal=True
    ).values_list("id", "detection__occurrence_id", "taxon_id", "score", "taxon__rank"):
        key = (rank != UNKNOWN, score, clf_id)
        if occurrence_id not in best or key > best[occurrence_id][0]:
            best[occurrence_id] = (key, clf_id, taxon_id, score)

    updates: list[tuple] = []
    now = timezone.now()
    job_id = job.pk if job is not None else None
    for occurrence_id, *old in current:
        if occurrence_id in identified:
            identification = identified[occurrence_id]
            new = (identification.taxon_id, None, None, identification.id)
        elif occurrence_id in best:
            _, clf_id, taxon_id, score = best[occurrence_id]
            new = (taxon_id, score, clf_id, None)
        else:
            new = (None, None, None, None)
        if new != tuple(old):
            updates.append((occurrence_id, *new))
    update_rows(
        Occurrence,
        ["determination", "determination_score", "determined_by", "determined_by_identification"],
        updates,
    )
    insert_rows(
        DeterminationChange,
        ["occurrence", "taxon", "score", "classification", "identification", "job", "created_at"],
        [(*row, job_id, now) for row in updates],
    )
    return len(updates)
