"""The job operations every entrance shares (CLI, admin, API): create, submit, cancel, resume.

Reverting is :func:`taxopost.postprocessing.running.revert.revert_job` and reaping
:func:`taxopost.postprocessing.running.lifecycle.reap_stale_jobs`. :func:`resume_job` is what
makes jobs crash-safe: it runs what a stale job's plan has left, so that it ends exactly as an
uninterrupted run would have.
"""

from __future__ import annotations

from django.db import transaction

from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.observations.models import CaptureSet, Occurrence, SourceImage
from taxopost.postprocessing.base import Scope
from taxopost.postprocessing.registry import get_task
from taxopost.postprocessing.running.chunk import MAX_CHUNK_SIZE
from taxopost.postprocessing.running.executors import Executor, get_executor
from taxopost.postprocessing.running.lifecycle import can_resume, end, reopen_job, revert_if_requested, settle_cancel
from taxopost.tasks import parse_config

__all__ = ["can_resume", "cancel_job", "create_job", "resume_job", "scope_project", "submit_job"]


def create_job(
    task: str,
    scope_type: str,
    scope_id: int,
    config: dict | None,
    *,
    dry_run: bool = False,
    stack: bool = False,
    chunk_size: int | None = None,
    user=None,
    idempotency_key: str | None = None,
) -> Job:
    """Validate task, scope, config (the task checks what its config names) and chunk size; record the job.

    The task's warnings (:func:`task_warnings`) are recorded with the job, in
    ``job.result["warnings"]`` and its log, for every entrance to show.

    ``stack``: apply the task on top of its own earlier output in each chain, instead of
    replacing that output (the default: see :mod:`taxopost.observations.chains`).
    """
    task_class = get_task(task)
    validated = parse_config(task_class.config_model, config, prefix="config.")
    project_id = scope_project(scope_type, scope_id)
    if chunk_size is not None and not (isinstance(chunk_size, int) and 1 <= chunk_size <= MAX_CHUNK_SIZE):
        raise InputError("chunk_size", chunk_size, f"must be an integer from 1 to {MAX_CHUNK_SIZE:,}")
    warnings = _warnings(task_class, validated, scope_type, scope_id)  # fails early, writes nothing
    job = Job.objects.create(
        task=task,
        task_version=task_class.version,
        config=validated.model_dump(mode="json"),
        scope_type=scope_type,
        scope_id=scope_id,
        project_id=project_id,
        dry_run=dry_run,
        stack=bool(stack),
        chunk_size=chunk_size,
        created_by=user if user is not None and user.is_authenticated else None,
        result={"warnings": warnings} if warnings else {},
        idempotency_key=idempotency_key,
    )
    for warning in warnings:
        job.log(warning["message"], level="warning")
    return job


def task_warnings(task: str, scope_type: str, scope_id: int, config: dict | None) -> list[dict]:
    """What to think twice about before running ``task`` with ``config`` on the scope, e.g. a taxa
    list that keeps few classes (see :meth:`PostProcessingTask.warnings`); validates as
    :func:`create_job` does and writes nothing. The admin asks for a confirmation when not empty."""
    task_class = get_task(task)
    validated = parse_config(task_class.config_model, config, prefix="config.")
    scope_project(scope_type, scope_id)
    return _warnings(task_class, validated, scope_type, scope_id)


def _warnings(task_class: type, config, scope_type: str, scope_id: int) -> list[dict]:
    task = task_class(config, Scope(scope_type, scope_id), dry_run=True)
    task.prepare()
    return task.warnings()


def scope_project(scope_type: str, scope_id: int) -> int:
    """The project of a job's scope; an InputError naming the scope when there is no such scope."""
    scope_model = {Job.CAPTURE_SET: CaptureSet, Job.OCCURRENCE: Occurrence}.get(scope_type)
    if scope_model is None:
        raise InputError("scope.type", scope_type, f"must be {Job.CAPTURE_SET} or {Job.OCCURRENCE}")
    project_id = scope_model.objects.filter(pk=scope_id).values_list("project_id", flat=True).first()
    if project_id is None:
        raise InputError(f"scope.{scope_type}", scope_id, f"no {scope_type.replace('_', ' ')} has this id")
    _check_one_project(scope_type, scope_id, project_id)
    return project_id


def _check_one_project(scope_type: str, scope_id: int, project_id: int) -> None:
    """Refuse a scope reaching into another project (linked in the admin before its forms refused
    that): the job would write to that project's rows, locked and permitted on this one only."""
    if scope_type == Job.CAPTURE_SET:
        foreign = SourceImage.objects.filter(capture_sets=scope_id).exclude(project_id=project_id)
        what = "images"
    else:
        foreign = SourceImage.objects.filter(detections__occurrence_id=scope_id).exclude(project_id=project_id)
        what = "detections' images"
    first = foreign.select_related("project").order_by("pk").first()
    if first is not None:
        raise InputError(
            f"scope.{scope_type}", scope_id,
            f"{foreign.distinct().count()} of its {what} belong to another project (image {first.pk}, "
            f"{first.path!r}, is in {first.project.name!r}); remove them from it in the admin first",
        )  # fmt: skip


def submit_job(job: Job, executor: Executor | None = None) -> Job:
    (executor or get_executor()).submit(job)
    return job


def cancel_job(job: Job, *, revert: bool = False) -> Job:
    """Ask a job to stop at its next chunk boundary; ``revert``: then undo its finished chunks.

    A job not yet started is canceled at once; a running one as soon as none of its chunks is
    in flight (at once when it is between chunks).
    """
    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True).get(pk=job.pk)
        if job.is_finished:
            raise InputError("job", job.pk, f"is already {job.status}")
        job.cancel_requested, job.revert_on_cancel = True, revert
        job.save(update_fields=["cancel_requested", "revert_on_cancel"])
        job.log("cancel requested" + (", then revert" if revert else ""))
        if job.status in (Job.CREATED, Job.QUEUED):
            end(job, Job.CANCELED, message="canceled before it started")
    if job.status == Job.CANCELED:
        revert_if_requested(job)
    else:
        settle_cancel(job.pk)
    job.refresh_from_db()
    return job


def resume_job(job: Job, executor: Executor | None = None) -> Job:
    """Run again what a failed, stale or canceled job's plan has left.

    Its finished chunks are kept and never redone; the others run as they would have (one
    transaction each), so the job ends in the state of one uninterrupted run. A job still
    queued is submitted again (its message may have been lost); duplicates are harmless.
    """
    return submit_job(reopen_job(job), executor)
