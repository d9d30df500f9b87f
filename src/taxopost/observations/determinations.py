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

from collections.abc import Collection, Iterable, Sequence

from django.db import connection
from django.db.models import Q
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
    terminal = Classification.objects.filter(detection__occurrence_id__any_of=ids, terminal=True)
    updates = _updates(ids, _candidates(terminal), lock=connection.in_atomic_block)
    now = timezone.now()
    job_id = job.pk if job is not None else None
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


def count_determination_changes(
    occurrence_ids: Iterable[int],
    *,
    demoted: Collection[int] = (),
    promoted: Collection[int] = (),
    added: Sequence[tuple[int | None, int | None, float, str]] = (),
) -> int:
    """How many determinations :func:`recompute_determinations` would change, writing nothing.

    As if the ``demoted`` classifications were no longer terminal, the ``promoted`` ones were,
    and the ``added`` ones ``(occurrence, taxon, score, rank)`` were stored after every existing
    one: what a dry run reports for the real run's writes.
    """
    ids = sorted({int(i) for i in occurrence_ids if i is not None})
    if not ids:
        return 0
    rows = Classification.objects.filter(detection__occurrence_id__any_of=ids)
    rows = rows.filter(Q(terminal=True) | Q(id__any_of=sorted(promoted))) if promoted else rows.filter(terminal=True)
    if demoted:
        rows = rows.exclude(id__any_of=sorted(demoted))
    # A new row's id is unknown but follows every stored one: it wins ties of rank and score, as in
    # the real run, and its stand-in id (negative) differs from any stored determination's.
    new = [
        ((rank != UNKNOWN, score, 1, i), -1 - i, occurrence, taxon, score)
        for i, (occurrence, taxon, score, rank) in enumerate(added)
    ]
    return len(_updates(ids, [*_candidates(rows), *new], lock=False))


def _candidates(classifications) -> list[tuple]:
    """``(sort key, id, occurrence, taxon, score)`` of each classification: the highest key decides."""
    return [
        ((rank != UNKNOWN, score, 0, clf_id), clf_id, occurrence_id, taxon_id, score)
        for clf_id, occurrence_id, taxon_id, score, rank in classifications.values_list(
            "id", "detection__occurrence_id", "taxon_id", "score", "taxon__rank"
        )
    ]


def _updates(ids: list[int], candidates: Iterable[tuple], *, lock: bool) -> list[tuple]:
    """``(occurrence, taxon, score, classification, identification)`` of each determination that changes."""
    occurrences = Occurrence.objects.filter(id__any_of=ids).order_by("id")
    if lock:
        occurrences = occurrences.select_for_update()
    current = list(
        occurrences.values_list(
            "id", "determination_id", "determination_score", "determined_by_id", "determined_by_identification_id"
        )
    )
    identified = Identification.objects.filter(occurrence_id__any_of=ids).current_by_occurrence()
    best: dict[int, tuple] = {}
    for key, clf_id, occurrence_id, taxon_id, score in candidates:
        if occurrence_id not in best or key > best[occurrence_id][0]:
            best[occurrence_id] = (key, clf_id, taxon_id, score)
    updates: list[tuple] = []
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
    return updates
