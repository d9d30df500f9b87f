"""The embedded executor: jobs run in this process, synchronously (the CLI) or on a thread (the web).

:func:`execute` is its loop over the steps of :mod:`.lifecycle`, one chunk after another, each
chunk retried a few times on a lost or locked database connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections, transaction

from taxopost.errors import InputError, JobError
from taxopost.jobs import chunks as plan_store
from taxopost.jobs.models import Job
from taxopost.postprocessing.base import PostProcessingTask
from taxopost.postprocessing.running.chunk import SKIPPED, ChunkOutcome, run_chunk
from taxopost.postprocessing.running.lifecycle import Claim, claim, fail, failure_message, finish, queue, settle_cancel

logger = logging.getLogger(__name__)
T = TypeVar("T")


class EmbeddedExecutor:
    """Runs jobs in this process: synchronously (the CLI) or on a background thread (the web)."""

    name = "embedded"

    def __init__(self, *, background: bool = False, on_progress: Callable | None = None) -> None:
        self.background = background
        self.on_progress = on_progress

    def submit(self, job: Job) -> None:
        queue(job, self.name)
        if self.background:
            transaction.on_commit(lambda: threading.Thread(target=_run_thread, args=(job.pk,), daemon=True).start())
        else:
            execute(job.pk, executor=self.name, on_progress=self.on_progress)
        job.refresh_from_db()


def _run_thread(job_id: int) -> None:
    try:
        execute(job_id, executor=EmbeddedExecutor.name)
    finally:
        connections.close_all()


def execute(job_id: int, *, executor: str = "embedded", on_progress: Callable | None = None) -> Job:
    """Run the job now, in this process, chunk after chunk; returns the job in its final state.

    Starting it (the claim, which plans a new job) is retried on a lost or locked database
    connection as a chunk is; any other failure there fails the job, resumable: its claim rolled
    back, so it would otherwise stay queued with nothing to run it. So does Ctrl-C, while the
    job waits for another job of its project or after it started.
    """
    try:
        claimed = _retrying(job_id, lambda: _claim_waiting(job_id, executor, on_progress))
    except Exception as exc:
        return _failed(job_id, exc)
    except KeyboardInterrupt:
        _interrupted(job_id)
        raise
    if not claimed.fresh:
        return Job.objects.get(pk=job_id)
    try:
        if on_progress is not None:
            counts = plan_store.chunk_counts(job_id)
            on_progress("processing", counts.done_rows, counts.total_rows)
        for chunk_id in plan_store.unfinished(job_id):
            outcome = _run_chunk_retrying(job_id, chunk_id, claimed.task)
            if outcome.state == SKIPPED:
                settle_cancel(job_id)
                break
            if on_progress is not None:
                on_progress("processing", outcome.done_rows, outcome.total_rows)
        else:
            finish(job_id)
    except Exception as exc:  # the job records why it failed; the caller gets the failed job
        return _failed(job_id, exc)
    except KeyboardInterrupt:
        _interrupted(job_id)
        raise
    return Job.objects.get(pk=job_id)


def _interrupted(job_id: int) -> None:
    """Ctrl-C on `taxopost run`: the job must not stay queued or running, blocking its project."""
    fail(job_id, f"interrupted; `taxopost jobs resume {job_id}` runs what is left")


#: A chunk that failed on a lost or locked database connection is tried again this many times,
#: after 0.5, 1, 2 ... seconds, on a new connection. Its transaction rolled back: nothing to undo.
TRANSIENT_RETRIES = 3


def _failed(job_id: int, exc: Exception) -> Job:
    """Record why the job failed (resumable) and return it."""
    if not isinstance(exc, InputError | JobError):
        logger.exception("job %s failed", job_id)
    if isinstance(exc, DatabaseError):
        connection.close()  # record the failure on a fresh connection
    fail(job_id, failure_message(exc))
    return Job.objects.get(pk=job_id)


def _run_chunk_retrying(job_id: int, chunk_id: int, task: PostProcessingTask | None) -> ChunkOutcome:
    return _retrying(job_id, lambda: run_chunk(chunk_id, task=task), what="chunk")


def _retrying(job_id: int, step: Callable[[], T], *, what: str = "start") -> T:
    """``step()``, tried again on a new connection after a lost or locked one (its transaction rolled back)."""
    attempt = 0
    while True:
        try:
            return step()
        except (OperationalError, InterfaceError) as exc:
            connection.close()
            if attempt == TRANSIENT_RETRIES:
                raise
            delay = 0.5 * 2**attempt
            attempt += 1
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            Job.objects.get(pk=job_id).log(f"database error ({message}); {what} retried in {delay:g} s", "warning")
            time.sleep(delay)


def _claim_waiting(job_id: int, executor: str, on_progress: Callable | None) -> Claim:
    """Claim the job, checking again every JOB_WAIT_SECONDS while its project is busy."""
    while True:
        claimed = claim(job_id, executor)
        if claimed.waiting_for is None:
            return claimed
        if on_progress is not None:
            on_progress(f"waiting for job {claimed.waiting_for}", 0, 0)
        time.sleep(settings.JOB_WAIT_SECONDS)
