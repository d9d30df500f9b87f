"""A job's life, whichever executor runs it: claim, plan, chunks, then finish, cancel or fail.

- :func:`claim` moves a created or queued job to running and stores its plan, in one
  transaction. Jobs of one project run one at a time: the claim locks the project's row and
  waits (returns ``waiting_for``) while another job of the project runs. Two jobs whose scopes
  overlap therefore end as if run one after the other, while the chunks of one job still run
  in parallel. Dry runs write nothing and neither wait nor make others wait.
- :func:`finish` ends a job whose chunks are all done: metrics merged from the chunks, status.
- :func:`settle_cancel` ends a job asked to stop once no chunk of it is in flight.
- :func:`fail` records why a job cannot go on; its finished chunks stay, and it can be resumed.
- :func:`reap_stale_jobs` finds running jobs whose heartbeat stopped (their worker died);
  :func:`reap_and_resume` puts them straight back in the queue and sends them again, as every
  Celery worker does on its own.
- :func:`reopen_job` makes a failed, stale or canceled job ready to run what it has left.

The embedded executor (:mod:`.embedded`) loops over these in-process; the Celery tasks
(:mod:`.celery_jobs`) call the same functions, one chunk per task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from taxopost.errors import InputError, JobError
from taxopost.jobs import chunks as plan_store
from taxopost.jobs.models import Job
from taxopost.observations.models import Classification, Project
from taxopost.postprocessing.base import PostProcessingTask
from taxopost.postprocessing.running.chunk import plan
from taxopost.postprocessing.running.revert import revert_job
from taxopost.tasks.describe import config_text


@dataclass(frozen=True)
class Claim:
    """``job`` when running (``fresh``: this call started it), else ``waiting_for`` or nothing."""

    job: Job | None = None
    fresh: bool = False
    waiting_for: int | None = None
    task: PostProcessingTask | None = None  # the task prepared by planning, for the embedded loop to reuse


def claim(job_id: int, executor: str) -> Claim:
    """Start a created or queued job whose project is free; store its plan if it has none."""
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
        scope = job.scope_type.replace("_", " ")
        job.log(f"{mode}{job.task} on {scope} {job.scope_id} with {config_text(job.config)}")
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


def queue(job: Job, executor: str) -> None:
    """A created job (or one resumed) is queued on ``executor``."""
    Job.objects.filter(pk=job.pk, status__in=(Job.CREATED, Job.QUEUED)).update(status=Job.QUEUED, executor=executor)


def reap_stale_jobs(*, stale_after: float | None = None, resume: bool = False, automatic: bool = True) -> list[Job]:
    """Mark running jobs whose heartbeat is older than ``stale_after`` seconds as failed (resumable).

    A job that was asked to stop is canceled instead (and reverted if that was asked). With
    ``resume``, a job goes straight back to queued, its unfinished chunks pending, in one
    transaction: it never shows as failed to a client polling it. A worker's reaper
    (``automatic``) does so only for a job not yet resumed automatically
    :data:`MAX_AUTOMATIC_RESUMES` times; a person (``taxopost jobs reap --resume``) always.
    Safe to run from several places at once: each job is reaped under its row lock, busy rows
    skipped.
    """
    seconds = settings.JOB_STALE_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    reaped = []
    for job_id in Job.objects.filter(stale, status=Job.RUNNING).values_list("pk", flat=True):
        if resume and (requeued := _requeue(job_id, stale, automatic=automatic)) is not None:
            reaped.append(requeued)
            continue
        with transaction.atomic():
            job = Job.objects.select_for_update(no_key=True, skip_locked=True).filter(stale, pk=job_id).first()
            if job is None or job.status != Job.RUNNING:
                continue
            if job.cancel_requested:
                end(job, Job.CANCELED, message=f"canceled: no heartbeat since {_since(job)}; finished chunks are kept")
            else:
                end(
                    job,
                    Job.FAILED,
                    error=f"stale: no heartbeat since {_since(job)} (its worker died?); "
                    f"`taxopost jobs resume {job.pk}` runs what is left",
                )
        revert_if_requested(job)
        reaped.append(job)
    return reaped


#: A job reaped and resumed automatically this many times is left failed for a person: one of
#: its chunks may be what kills the workers.
MAX_AUTOMATIC_RESUMES = 3
AUTOMATIC_RESUME = "resumed automatically"
#: What a person's resume logs (``jobs resume``; ``jobs reap --resume`` adds the command in brackets).
RESUMED_BY_HAND = "resumed"


def reap_and_resume(submit: Callable[[Job], object], *, stale_after: float | None = None) -> list[Job]:
    """Reap stale jobs and ``submit`` again each one put back in the queue (a few times at most).

    Every requeued job is submitted even if one is refused (the broker away): a job whose
    submission fails is failed, resumable, with the reason, never left queued with no message
    sent; the first error is raised after all were tried.
    """
    reaped = reap_stale_jobs(stale_after=stale_after, resume=True)
    errors: list[Exception] = []
    for job in reaped:
        if job.status == Job.QUEUED:
            try:
                submit(job)
            except Exception as exc:  # each job its own failure; the first one is raised below
                errors.append(exc)
                fail(job.pk, f"not resumed: {failure_message(exc)}; `taxopost jobs resume {job.pk}` tries again")
                job.refresh_from_db()
        elif job.status == Job.FAILED:
            done = _automatic_resumes(job)
            job.log(f"not resumed automatically: its workers died {done + 1} times; resume it by hand", "error")
    if errors:
        raise errors[0]
    return reaped


def _requeue(job_id: int, stale: Q, *, automatic: bool) -> Job | None:
    """Put a stale running job back in the queue, unless it was asked to stop, or was resumed
    automatically too often (``automatic`` only), or another reaper holds it (then None, and
    nothing changed)."""
    candidate = Job.objects.filter(stale, pk=job_id, status=Job.RUNNING, cancel_requested=False).first()
    if candidate is None:
        return None
    done = _automatic_resumes(candidate) if automatic else 0
    if done >= MAX_AUTOMATIC_RESUMES:
        return None
    with transaction.atomic():
        # Chunks first, the job's row last: the order a chunk's own transaction locks them in.
        plan_store.reopen(job_id)
        job = (
            Job.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(stale, pk=job_id, status=Job.RUNNING, cancel_requested=False)
            .first()
        )
        if job is None:  # busy, or no longer stale: leave it as it was
            transaction.set_rollback(True)
            return None
        since = _since(job)
        job.status, job.error, job.finished_at = Job.QUEUED, "", None
        job.save(update_fields=["status", "error", "finished_at"])
        job.log(f"stale: no heartbeat since {since} (its worker died?)", level="warning")
        if automatic:
            job.log(f"{AUTOMATIC_RESUME} ({done + 1} of {MAX_AUTOMATIC_RESUMES}): its worker stopped")
        else:
            job.log(f"{RESUMED_BY_HAND} (taxopost jobs reap --resume)")
    return job


def _automatic_resumes(job: Job) -> int:
    """Automatic resumes since a person last resumed the job: their resume grants the budget anew."""
    logs = job.logs.all()
    by_person = logs.filter(Q(message=RESUMED_BY_HAND) | Q(message__startswith=f"{RESUMED_BY_HAND} ("))
    last = by_person.order_by("-id").values_list("id", flat=True).first()
    automatic = logs.filter(message__startswith=AUTOMATIC_RESUME)
    return (automatic if last is None else automatic.filter(id__gt=last)).count()


def _since(job: Job) -> str:
    return f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S}" if job.heartbeat_at else "ever"


def reopen_job(job: Job) -> Job:
    """Make a failed, stale or canceled job queued again, its unfinished chunks pending (for a resume)."""
    with transaction.atomic():
        _check_resumable(Job.objects.get(pk=job.pk))
        # Chunks first, the job's row last: the order a chunk's own transaction locks them in.
        plan_store.reopen(job.pk)
        job = Job.objects.select_for_update(no_key=True).get(pk=job.pk)
        _check_resumable(job)
        job.status, job.cancel_requested, job.revert_on_cancel = Job.QUEUED, False, False
        job.error, job.finished_at = "", None
        job.save(update_fields=["status", "cancel_requested", "revert_on_cancel", "error", "finished_at"])
        job.log(RESUMED_BY_HAND)
    return job


def can_resume(job: Job) -> bool:
    """Whether :func:`reopen_job` would accept this job (what the admin and the API offer)."""
    try:
        _check_resumable(job)
    except InputError:
        return False
    return True


def _check_resumable(job: Job) -> None:
    if job.reverted_at is not None:
        raise InputError("job", job.pk, "was reverted: run a new job instead")
    if job.status == Job.SUCCEEDED:
        raise InputError("job", job.pk, "already succeeded: there is nothing left to run")
    if job.status == Job.RUNNING:
        raise InputError("job", job.pk, "is running; if its workers died, `taxopost jobs reap` marks it stale first")
    # A later run of its task replaced what it wrote: resumed, it would replace that run's output
    # on the chunks left and keep neither config whole (nor could either job be reverted then).
    replacer = (
        Classification.objects.filter(job_id=job.pk).exclude(replaced_by=None).values_list("replaced_by_id", flat=True)
    ).first()
    if replacer is not None:
        raise InputError(
            "job", job.pk, f"job {replacer} ran its task again over what it wrote: revert job {replacer} first, or "
            "leave this one as it stopped",
        )  # fmt: skip
