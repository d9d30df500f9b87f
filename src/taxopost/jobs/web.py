"""What the web entrances (admin, API) share about jobs: where they run and what can be done to them.

Both entrances call the domain operations of :mod:`taxopost.jobs.operations`; this module only
says which executor a web request submits to and which operations a job offers, so the admin's
buttons and the API's routes come from one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from taxopost.jobs import operations
from taxopost.jobs.executors import get_executor
from taxopost.jobs.models import Job


def web_executor():
    """A request must not wait for a job: a background thread (embedded) or the broker's workers."""
    return get_executor(background=True)


def submit_from_web(job: Job) -> Job:
    return operations.submit_job(job, web_executor())


@dataclass(frozen=True)
class JobOperation:
    """One thing a user can do to an existing job, offered where ``applies(job)`` is true."""

    name: str
    label: str
    past: str
    function: Callable[[Job], object]
    applies: Callable[[Job], bool]
    confirm: str = ""


def _revertable(job: Job) -> bool:
    return job.status in (Job.SUCCEEDED, Job.FAILED, Job.CANCELED) and not job.dry_run and job.reverted_at is None


def job_operations() -> dict[str, JobOperation]:
    """Cancel and revert always; resume once :mod:`taxopost.jobs.operations` provides ``resume_job``.

    Resuming a stale job belongs to the executor that ran it (the Celery executor's heartbeat
    reaper); the embedded executor cannot resume, so without ``resume_job`` the admin shows no
    resume action and the API has no resume route.
    """
    table = {
        "cancel": JobOperation(
            "cancel", "Cancel", "cancel requested", operations.cancel_job, lambda job: not job.is_finished
        ),
        "revert": JobOperation(
            "revert",
            "Revert",
            "reverted",
            operations.revert_job,
            _revertable,
            confirm="Reverting removes the classifications this job wrote, restores the ones it demoted and "
            "recomputes the affected determinations.",
        ),
    }
    resume = getattr(operations, "resume_job", None)
    if resume is not None:
        table["resume"] = JobOperation(
            "resume", "Resume", "resumed", lambda job: resume(job, web_executor()), operations.can_resume
        )
    return table
