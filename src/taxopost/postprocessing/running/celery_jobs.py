"""Jobs on Celery: the executor that sends a job's messages, and the worker tasks that take them.

A job becomes one start task, then one task per chunk, then a finish task. Chunks are sent a
few at a time (``TAXOPOST_CHUNKS_IN_FLIGHT``): each chunk that finishes sends the next pending
one. The queue thus never holds thousands of one job's chunks, which keeps other jobs' chunks
from waiting behind them (their heartbeat would go stale) and lets a cancel take effect within
a few chunks.

Messages carry primary keys, never rows: each task re-reads the job and chunk and checks their
state, so a redelivered or duplicated message is harmless. Tasks are acknowledged late and
requeued if their worker process dies; transient database errors are retried with backoff.
A worker killed outright is not redelivered before the broker's visibility timeout: the
heartbeat reaper and ``taxopost jobs resume`` are what recover its job.
"""

from __future__ import annotations

import logging

from celery import Task
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from taxopost.celery import app
from taxopost.errors import InputError, JobError
from taxopost.jobs.chunks import chunk_counts, take_pending
from taxopost.jobs.models import Job
from taxopost.postprocessing.running.chunk import SKIPPED, run_chunk
from taxopost.postprocessing.running.lifecycle import (
    claim,
    fail,
    failure_message,
    finish,
    queue,
    reap_stale_jobs,
    settle_cancel,
)


class CeleryExecutor:
    name = "celery"

    def submit(self, job: Job) -> None:
        """Queue the job; its start task is sent once the current transaction commits."""
        queue(job, self.name)
        job_id = job.pk
        transaction.on_commit(lambda: start_job.delay(job_id))
        job.refresh_from_db()


def dispatch(job_id: int, n: int | None = None) -> int:
    """Send up to ``n`` (default: the in-flight limit) pending chunks of the job to the workers."""
    chunk_ids = take_pending(job_id, settings.JOB_CHUNKS_IN_FLIGHT if n is None else n)
    for chunk_id in chunk_ids:
        run_chunk_task.delay(job_id, chunk_id)
    return len(chunk_ids)


logger = logging.getLogger(__name__)


class JobStep(Task):
    """A step of a job; its first argument is the job's id, which fails if the step does."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (OperationalError, InterfaceError)  # the database restarting, a dropped connection
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 6
    ignore_result = True

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if not isinstance(exc, InputError | JobError):
            logger.error("job %s: %s failed", job_id, self.name, exc_info=exc)
        message = failure_message(exc)
        if isinstance(exc, OperationalError | InterfaceError | BrokerUnavailable):  # a service was away, not bad data
            message += f"; `taxopost jobs resume {job_id}` runs what is left"
        try:
            fail(job_id, message)
        except (OperationalError, InterfaceError):  # the database is down: the reaper will see the job
            logger.error("job %s: could not record the failure", job_id)


@app.task(base=JobStep, bind=True, name="taxopost.jobs.start")
def start_job(self, job_id: int) -> None:
    """Claim and plan the job, then send its first chunks; wait while its project is busy."""
    claimed = claim(job_id, "celery")
    if claimed.waiting_for is not None:
        raise self.retry(countdown=settings.JOB_WAIT_SECONDS, max_retries=None)
    if claimed.job is None:
        return
    if chunk_counts(job_id).left == 0:
        finish_job.delay(job_id)
    else:
        dispatch(job_id)


@app.task(base=JobStep, bind=True, name="taxopost.jobs.chunk")
def run_chunk_task(self, job_id: int, chunk_id: int) -> None:
    """Run one chunk, then send the next pending one, or the finish step after the last."""
    outcome = run_chunk(chunk_id)
    if outcome.state == SKIPPED:
        if outcome.cancel_requested:
            settle_cancel(job_id)
        return
    if outcome.left == 0:
        finish_job.delay(job_id)
    elif outcome.cancel_requested:
        settle_cancel(job_id)
    else:
        dispatch(job_id, 1)


@app.task(base=JobStep, bind=True, name="taxopost.jobs.finish")
def finish_job(self, job_id: int) -> None:
    """Merge the chunks' metrics and set the final status (a no-op if already done)."""
    finish(job_id)


@app.task(bind=True, name="taxopost.jobs.reap", ignore_result=True)
def reap(self) -> int:
    """The beat schedule's periodic check for running jobs whose heartbeat stopped."""
    reaped = reap_stale_jobs()
    for job in reaped:
        logger.warning("job %s had no heartbeat for %ss: marked %s", job.pk, settings.JOB_STALE_SECONDS, job.status)
    return len(reaped)
