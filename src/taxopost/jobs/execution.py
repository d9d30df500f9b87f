"""Run a job to its end: status transitions, heartbeat, metrics, and failure with a reason."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.jobs.reporting import JobReporter

logger = logging.getLogger(__name__)


def claim(job_id: int, executor: str) -> Job | None:
    """Mark a created or queued job as running; None if it is running or finished elsewhere."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status not in (Job.CREATED, Job.QUEUED):
            return None
        if job.cancel_requested:
            job.status, job.finished_at = Job.CANCELED, timezone.now()
            job.save(update_fields=["status", "finished_at"])
            return None
        job.status, job.started_at, job.heartbeat_at, job.executor = (
            Job.RUNNING,
            timezone.now(),
            timezone.now(),
            executor,
        )
        job.save(update_fields=["status", "started_at", "heartbeat_at", "executor"])
    return job


def execute(job_id: int, *, executor: str = "embedded", on_progress: Callable | None = None) -> Job:
    """Run the job's task now, in this process; returns the job in its final state."""
    from taxopost.postprocessing.runner import Canceled, run_task

    job = claim(job_id, executor)
    if job is None:
        return Job.objects.get(pk=job_id)
    reporter = JobReporter(job, on_progress)
    mode = "dry run of " if job.dry_run else ""
    job.log(f"{mode}{job.task} on {job.scope_type} {job.scope_id} with {job.config}")
    try:
        summary = run_task(job, reporter)
    except Canceled:
        _finish(job, Job.CANCELED, reporter, message="canceled at a chunk boundary; finished chunks are kept")
    except InputError as exc:
        _finish(job, Job.FAILED, reporter, error=exc.message)
    except Exception as exc:  # the job records why it failed; the caller gets the failed job
        logger.exception("job %s failed", job_id)
        _finish(job, Job.FAILED, reporter, error=f"{type(exc).__name__}: {exc}")
    else:
        metrics = summary.as_metrics()
        job.metrics = metrics
        if job.dry_run:
            job.result = {"preview": {**metrics, "sample": summary.sample}}
        _finish(job, Job.SUCCEEDED, reporter, message=f"done: {metrics['changed']} changed of {metrics['examined']}")
    return job


def _finish(job: Job, status: str, reporter: JobReporter, *, message: str = "", error: str = "") -> None:
    job.refresh_from_db(fields=["progress", "stages", "cancel_requested"])
    job.status, job.finished_at, job.error = status, timezone.now(), error
    if status == Job.SUCCEEDED:
        job.progress = 1.0
    job.save(update_fields=["status", "finished_at", "error", "progress", "metrics", "result"])
    job.log(error or message, level="error" if error else "info")
