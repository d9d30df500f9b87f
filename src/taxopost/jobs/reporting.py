"""Progress, stages and heartbeat of a job, written to its row from its chunks.

Chunks of one job finish on several workers, so progress is never counted in memory: each
finished chunk recounts the plan in the database, under the job's row lock, in the transaction
that writes it. That count is also what tells the last chunk that the job is ready to finish.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from taxopost.jobs.chunks import ChunkCounts, chunk_counts
from taxopost.jobs.models import Job

PREPARING, PROCESSING = "preparing", "processing"


@dataclass(frozen=True)
class Progress:
    counts: ChunkCounts
    cancel_requested: bool
    running: bool = True  # False once the job was reaped, failed or ended while the chunk ran


def planned(job: Job, counts: ChunkCounts) -> None:
    """Record a new plan: preparation done, processing at 0 (in the planning transaction)."""
    job.stages = [{"name": PREPARING, "progress": 1.0}, {"name": PROCESSING, "progress": counts.fraction}]
    job.stage, job.progress, job.heartbeat_at = PROCESSING, counts.fraction, timezone.now()
    job.save(update_fields=["stages", "stage", "progress", "heartbeat_at"])
    job.log(f"{PROCESSING}: {counts.total_rows} classifications in {counts.total} chunks")


def record_progress(job_id: int) -> Progress:
    """Lock the job's row, recount its chunks, store progress and heartbeat.

    Called last in a chunk's transaction: two chunks committing at once take turns here, so
    exactly one of them sees no chunk left. The row lock does not block inserts that refer to
    the job (``FOR NO KEY UPDATE``).
    """
    job = Job.objects.select_for_update(no_key=True).only("stages", "cancel_requested", "status").get(pk=job_id)
    counts = chunk_counts(job_id)
    stages = list(job.stages)
    if stages:
        stages[-1] = {**stages[-1], "progress": counts.fraction}
    Job.objects.filter(pk=job_id).update(progress=counts.fraction, stages=stages, heartbeat_at=timezone.now())
    return Progress(counts, job.cancel_requested, running=job.status == Job.RUNNING)
