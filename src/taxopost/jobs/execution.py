"""A job's life, whichever executor runs it: claim, plan, chunks, then finish, cancel or fail.

- :func:`claim` moves a created or queued job to running and stores its plan, in one
  transaction. Jobs of one project run one at a time: the claim locks the project's row and
  waits (returns ``waiting_for``) while another job of the project runs. Two jobs whose scopes
  overlap therefore end as if run one after the other, while the chunks of one job still run
  in parallel. Dry runs write nothing and neither wait nor make others wait.
- :func:`finish` ends a job whose chunks are all done: metrics merged from the chunks, status.
- :func:`settle_cancel` ends a job asked to stop once no chunk of it is in flight.
- :func:`fail` records why a job cannot go on; its finished chunks stay, and it can be resumed.

:func:`execute` is the embedded executor's loop over these; Celery's tasks
(:mod:`taxopost.jobs.tasks`) call the same functions, one chunk per task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from taxopost.errors import InputError, JobError
from taxopost.jobs import chunks as plan_store
from taxopost.jobs.models import Job
from taxopost.observations.models import Project

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """``job`` when running (``fresh``: this call started it), else ``waiting_for`` or nothing."""

    job: Job | None = None
    fresh: bool = False
    waiting_for: int | None = None
    task: object | None = None  # the task prepared by planning, for the embedded loop to reuse


def claim(job_id: int, executor: str) -> Claim:
    """Start a created or queued job whose project is free; store its plan if it has none."""
    from taxopost.postprocessing.runner import plan

    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True).get(pk=job_id)
        if job.status == Job.RUNNING:
            return Claim(job=job)
        if job.status not in (Job.CREATED, Job.QUEUED):
            return Claim()
        if job.cancel_requested:
            end(job, Job.CANCELED, message="canceled before it started")
            return Claim()
        other = _running_in_project(job)
        if other is not None:
            waiting = f"waiting for job {other}"
            if job.stage != waiting:  # log once, not at every check
                Job.objects.filter(pk=job.pk).update(stage=waiting)
                job.log(f"{waiting}: one job of a project runs at a time")
            return Claim(waiting_for=other)
        now = timezone.now()
        job.status, job.started_at, job.heartbeat_at, job.executor = Job.RUNNING, now, now, executor
        job.error, job.finished_at = "", None
        job.save(update_fields=["status", "started_at", "heartbeat_at", "executor", "error", "finished_at"])
        if plan_store.has_plan(job.pk):
            counts = plan_store.chunk_counts(job.pk)
            job.log(f"running again: {counts.left} of {counts.total} chunks left")
            return Claim(job=job, fresh=True)
        mode = "dry run of " if job.dry_run else ""
        job.log(f"{mode}{job.task} on {job.scope_type} {job.scope_id} with {job.config}")
        try:
            with transaction.atomic():
                task = plan(job)
        except InputError as exc:
            end(job, Job.FAILED, error=exc.message)
            return Claim()
    return Claim(job=job, fresh=True, task=task)


def _running_in_project(job: Job) -> int | None:
    """The running job this one must wait for, with the project's row locked until commit."""
    if job.dry_run or job.project_id is None:
        return None
    list(Project.objects.select_for_update(no_key=True).filter(pk=job.project_id).values_list("pk"))
    return (
        Job.objects.filter(project_id=job.project_id, status=Job.RUNNING, dry_run=False)
        .exclude(pk=job.pk)
        .values_list("pk", flat=True)
        .first()
    )


def finish(job_id: int) -> Job:
    """End a running job whose chunks are all done (a no-op otherwise: safe to call twice)."""
    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True).get(pk=job_id)
        if job.status != Job.RUNNING or plan_store.chunk_counts(job_id).left:
            return job
        if job.cancel_requested:
            end(job, Job.CANCELED, message="canceled after its last chunk: every chunk is kept")
        else:
            end(job, Job.SUCCEEDED)
    revert_if_requested(job)
    return job


def settle_cancel(job_id: int) -> bool:
    """End a job asked to stop once none of its chunks is in flight; True if it ended now."""
    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True).get(pk=job_id)
        if job.status != Job.RUNNING or not job.cancel_requested:
            return False
        counts = plan_store.chunk_counts(job_id)
        if counts.running:
            return False  # the last of them settles it when it commits
        done = counts.total - counts.left
        end(job, Job.CANCELED, message=f"canceled at a chunk boundary: {done} of {counts.total} chunks done and kept")
    revert_if_requested(job)
    return True


def fail(job_id: int, error: str) -> Job:
    """Record why the job cannot go on; what its finished chunks wrote stays."""
    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True).get(pk=job_id)
        if not job.is_finished:
            end(job, Job.FAILED, error=error)
    return job


def failure_message(exc: BaseException) -> str:
    if isinstance(exc, InputError):
        return exc.message
    if isinstance(exc, JobError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def end(job: Job, status: str, *, message: str = "", error: str = "") -> None:
    """Store a final status with the metrics of the finished chunks (in the caller's transaction)."""
    summary = plan_store.summarize(job.pk)
    job.metrics = summary.as_metrics()
    if job.dry_run:
        job.result = {**job.result, "preview": {**job.metrics, "sample": summary.sample}}
    job.status, job.finished_at, job.error = status, timezone.now(), error
    if status == Job.SUCCEEDED:
        job.progress = 1.0
        job.stages = [{**stage, "progress": 1.0} for stage in job.stages]
        message = message or f"done: {job.metrics['changed']} changed of {job.metrics['examined']}"
    job.save(update_fields=["status", "finished_at", "error", "progress", "stages", "metrics", "result"])
    job.log(error or message, level="error" if error else "info")


def revert_if_requested(job: Job) -> None:
    """Revert a canceled job that was asked to be, if any of its chunks wrote."""
    from taxopost.postprocessing.revert import revert_job

    job.refresh_from_db(fields=["status", "revert_on_cancel", "reverted_at", "dry_run"])
    if not (job.status == Job.CANCELED and job.revert_on_cancel and job.reverted_at is None and not job.dry_run):
        return
    counts = plan_store.chunk_counts(job.pk)
    if counts.left == counts.total:
        return  # no chunk finished: nothing was written
    try:
        revert_job(job)
    except InputError as exc:
        job.log(f"not reverted: {exc.message}", level="error")


# -- the embedded executor's loop ------------------------------------------------------------------


def execute(job_id: int, *, executor: str = "embedded", on_progress: Callable | None = None) -> Job:
    """Run the job now, in this process, chunk after chunk; returns the job in its final state."""
    from taxopost.postprocessing.runner import SKIPPED, run_chunk

    claimed = _claim_waiting(job_id, executor, on_progress)
    if not claimed.fresh:
        return Job.objects.get(pk=job_id)
    try:
        if on_progress is not None:
            counts = plan_store.chunk_counts(job_id)
            on_progress("processing", counts.done_rows, counts.total_rows)
        for chunk_id in plan_store.unfinished(job_id):
            outcome = _run_chunk_retrying(job_id, chunk_id, claimed.task, run_chunk)
            if outcome.state == SKIPPED:
                settle_cancel(job_id)
                break
            if on_progress is not None:
                on_progress("processing", outcome.done_rows, outcome.total_rows)
        else:
            finish(job_id)
    except Exception as exc:  # the job records why it failed; the caller gets the failed job
        if not isinstance(exc, InputError | JobError):
            logger.exception("job %s failed", job_id)
        if isinstance(exc, DatabaseError):
            connection.close()  # record the failure on a fresh connection
        fail(job_id, failure_message(exc))
    except KeyboardInterrupt:  # Ctrl-C on `taxopost run`: the job must not stay "running" and block its project
        fail(job_id, f"interrupted; `taxopost jobs resume {job_id}` runs what is left")
        raise
    return Job.objects.get(pk=job_id)


#: A chunk that failed on a lost or locked database connection is tried again this many times,
#: after 0.5, 1, 2 ... seconds, on a new connection. Its transaction rolled back: nothing to undo.
TRANSIENT_RETRIES = 3


def _run_chunk_retrying(job_id: int, chunk_id: int, task, run_chunk):
    attempt = 0
    while True:
        try:
            return run_chunk(chunk_id, task=task)
        except (OperationalError, InterfaceError) as exc:
            connection.close()
            if attempt == TRANSIENT_RETRIES:
                raise
            delay = 0.5 * 2**attempt
            attempt += 1
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            Job.objects.get(pk=job_id).log(f"database error ({message}); chunk retried in {delay:g} s", "warning")
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
