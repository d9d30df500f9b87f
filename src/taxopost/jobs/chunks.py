"""A job's plan: its chunks, their states, and what the finished ones add up to.

The plan is the precomputed list of classification ids a job examines, cut into chunks when the
job starts. Storing the ids (rather than re-selecting the scope) is what lets a resumed job
finish exactly the run it began: classifications imported or written meanwhile are not in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q, Sum

from taxopost.jobs.models import JobChunk
from taxopost.jobs.summary import Summary

#: Chunk rows per INSERT when a plan is stored: 200 chunks of 1,000 ids are about 1.5 MB of JSON.
PLAN_BATCH = 200
#: Chunk metrics read at a time when a job's metrics are merged: each holds up to 20 sample rows.
METRICS_BATCH = 500


@dataclass(frozen=True)
class ChunkCounts:
    """Where a job's plan stands, in chunks and in classifications."""

    total: int = 0
    left: int = 0  # not done: pending, queued or running
    running: int = 0
    done_rows: int = 0
    total_rows: int = 0

    @property
    def fraction(self) -> float:
        return self.done_rows / self.total_rows if self.total_rows else 1.0


def save_plan(job, rows: Iterable[tuple[int, int | None]], chunk_size: int) -> int:
    """Store ``(classification id, occurrence id)`` rows as chunks (in the caller's transaction);
    a chunk keeps each id's occurrence, for a task that must combine whole occurrences.

    ``rows`` come grouped by occurrence. A chunk takes ``chunk_size`` rows, then the rest of
    the occurrence it has reached: an occurrence's classifications are never in two chunks, so
    each chunk recomputes the determinations of occurrences no other chunk touches, and the
    result does not depend on the order chunks commit in. Returns the number of chunks.
    """
    plan: list[list[tuple[int, int | None]]] = []
    current: list[tuple[int, int | None]] = []
    current_occurrence: int | None = None
    for classification_id, occurrence_id in rows:
        if len(current) >= chunk_size and (occurrence_id is None or occurrence_id != current_occurrence):
            plan.append(current)
            current = []
        current.append((classification_id, occurrence_id))
        current_occurrence = occurrence_id
    if current:
        plan.append(current)
    chunks = [
        JobChunk(
            job=job, index=index, ids=[pk for pk, _ in pairs], occurrences=[occ for _, occ in pairs], size=len(pairs)
        )
        for index, pairs in enumerate(sorted(chunk) for chunk in plan)
    ]
    JobChunk.objects.bulk_create(chunks, batch_size=PLAN_BATCH)
    return len(chunks)


def has_plan(job_id: int) -> bool:
    return JobChunk.objects.filter(job_id=job_id).exists()


def unfinished(job_id: int) -> list[int]:
    """Ids of the chunks not done yet, in plan order."""
    chunks = JobChunk.objects.filter(job_id=job_id).exclude(status=JobChunk.DONE).order_by("index")
    return list(chunks.values_list("id", flat=True))


def take_pending(job_id: int, n: int) -> list[int]:
    """Mark up to ``n`` pending chunks as queued and return their ids, in plan order.

    Rows another caller is taking are skipped, not waited for, so two workers finishing chunks
    at once never send the same next chunk.
    """
    with transaction.atomic():
        ids = list(
            JobChunk.objects.select_for_update(skip_locked=True)
            .filter(job_id=job_id, status=JobChunk.PENDING)
            .order_by("index")
            .values_list("id", flat=True)[:n]
        )
        JobChunk.objects.filter(id__in=ids).update(status=JobChunk.QUEUED)
    return ids


def in_flight(job_id: int) -> int:
    """The job's chunks sent to the workers and not finished: queued or running."""
    return JobChunk.objects.filter(job_id=job_id, status__in=(JobChunk.QUEUED, JobChunk.RUNNING)).count()


def reopen(job_id: int) -> int:
    """Set every chunk not done back to pending with a fresh count of starts (resume)."""
    return (
        JobChunk.objects.filter(job_id=job_id).exclude(status=JobChunk.DONE).update(status=JobChunk.PENDING, attempts=0)
    )


def chunk_counts(job_id: int) -> ChunkCounts:
    """One query: how many chunks there are, are left, are running, and the rows done."""
    counts = JobChunk.objects.filter(job_id=job_id).aggregate(
        total=Count("id"),
        left=Count("id", filter=~Q(status=JobChunk.DONE)),
        running=Count("id", filter=Q(status=JobChunk.RUNNING)),
        done_rows=Sum("size", filter=Q(status=JobChunk.DONE)),
        total_rows=Sum("size"),
    )
    return ChunkCounts(**{key: value or 0 for key, value in counts.items()})


def summarize(job_id: int) -> Summary:
    """The merged counts of the job's finished chunks, in plan order."""
    summary = Summary()
    metrics = (
        JobChunk.objects.filter(job_id=job_id, status=JobChunk.DONE).order_by("index").values_list("metrics", flat=True)
    )
    for data in metrics.iterator(chunk_size=METRICS_BATCH):
        summary.merge(Summary.from_json(data))
    return summary
