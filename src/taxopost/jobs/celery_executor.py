"""The Celery executor: a job becomes one start task, then one task per chunk, then a finish task.

Chunks are sent a few at a time (``TAXOPOST_CHUNKS_IN_FLIGHT``): each chunk that finishes sends
the next pending one. The queue thus never holds thousands of one job's chunks, which keeps
other jobs' chunks from waiting behind them (their heartbeat would go stale) and lets a cancel
take effect within a few chunks.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from taxopost.jobs.chunks import take_pending
from taxopost.jobs.executors import queue
from taxopost.jobs.models import Job


class CeleryExecutor:
    name = "celery"

    def submit(self, job: Job) -> None:
        """Queue the job; its start task is sent once the current transaction commits."""
        from taxopost.jobs.tasks import start_job

        queue(job, self.name)
        job_id = job.pk
        transaction.on_commit(lambda: start_job.delay(job_id))
        job.refresh_from_db()


def dispatch(job_id: int, n: int | None = None) -> int:
    """Send up to ``n`` (default: the in-flight limit) pending chunks of the job to the workers."""
    from taxopost.jobs.tasks import run_chunk_task

    chunk_ids = take_pending(job_id, settings.JOB_CHUNKS_IN_FLIGHT if n is None else n)
    for chunk_id in chunk_ids:
        run_chunk_task.delay(job_id, chunk_id)
    return len(chunk_ids)
