"""What the web entrances (admin, API) share about jobs: where they run and what can be done to them.

Both entrances call the domain operations of :mod:`.operations`; this module only
says which executor a web request submits to and which operations a job offers, so the admin's
buttons and the API's routes come from one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.postprocessing.running.executors import Executor, get_executor
from taxopost.postprocessing.running.operations import can_resume, cancel_job, resume_job, submit_job
from taxopost.postprocessing.running.revert import revert_job


def web_executor() -> Executor:
    """A request must not wait for a job: a background thread (embedded) or the broker's workers."""
    return get_executor(background=True)


def submit_from_web(job: Job) -> Job:
    return submit_job(job, web_executor())


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


def _resumable(job: Job) -> bool:
    """A stale (reaped as failed), failed or canceled job with something left to run; a job still
    created or queued is already on its way, so it is offered "Cancel", not "Resume"."""
    return job.status in (Job.FAILED, Job.CANCELED) and can_resume(job)


def refusal(exc: InputError) -> str:
    """An operation's refusal as a person reads it: "job 5: job 6 built on its output: ...".

    The operations name the job as ``job=5`` (the field=value form of every input error, which the
    CLI prints); a page speaks of "job 5".
    """
    if exc.field == "job" and not exc.source:
        return f"job {exc.value}: {exc.reason}"
    return exc.message


def job_operations() -> dict[str, JobOperation]:
    """Cancel, revert and resume, each offered where it applies to the job."""
    return {
        "cancel": JobOperation("cancel", "Cancel", "cancel requested", cancel_job, lambda job: not job.is_finished),
        "revert": JobOperation(
            "revert",
            "Revert",
            "reverted",
            revert_job,
            _revertable,
            confirm="Reverting removes the classifications this job wrote, restores the ones it demoted and "
            "recomputes the affected determinations.",
        ),
        "resume": JobOperation("resume", "Resume", "resumed", lambda job: resume_job(job, web_executor()), _resumable),
    }
