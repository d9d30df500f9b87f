"""The job operations every entrance shares (CLI, admin, API): create, submit, cancel, revert."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from taxopost.configs import parse_config
from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.observations.models import CaptureSet, Occurrence


def create_job(task: str, scope_type: str, scope_id: int, config: dict | None, *, dry_run=False, user=None) -> Job:
    """Validate task, scope and config (the task checks what its config names), then record the job."""
    from taxopost.postprocessing.base import Scope
    from taxopost.postprocessing.registry import get_task

    task_class = get_task(task)
    validated = parse_config(task_class.config_model, config, prefix="config.")
    scope_model = {Job.CAPTURE_SET: CaptureSet, Job.OCCURRENCE: Occurrence}.get(scope_type)
    if scope_model is None:
        raise InputError("scope.type", scope_type, f"must be {Job.CAPTURE_SET} or {Job.OCCURRENCE}")
    if not scope_model.objects.filter(pk=scope_id).exists():
        raise InputError(f"scope.{scope_type}", scope_id, f"no {scope_type.replace('_', ' ')} has this id")
    task_class(validated, Scope(scope_type, scope_id), dry_run=True).prepare()  # fails early, writes nothing
    return Job.objects.create(
        task=task,
        task_version=task_class.version,
        config=validated.model_dump(mode="json"),
        scope_type=scope_type,
        scope_id=scope_id,
        dry_run=dry_run,
        created_by=user if user is not None and user.is_authenticated else None,
    )


def submit_job(job: Job, executor=None) -> Job:
    from taxopost.jobs.executors import get_executor

    (executor or get_executor()).submit(job)
    return job


def cancel_job(job: Job) -> Job:
    """Ask a job to stop at its next chunk boundary; a job not yet started is canceled at once."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            raise InputError("job", job.pk, f"is already {job.status}")
        job.cancel_requested = True
        fields = ["cancel_requested"]
        if job.status in (Job.CREATED, Job.QUEUED):
            job.status, job.finished_at = Job.CANCELED, timezone.now()
            fields += ["status", "finished_at"]
        job.save(update_fields=fields)
        job.log("cancel requested")
    return job


def revert_job(job: Job) -> dict:
    from taxopost.postprocessing.revert import revert_job as revert

    return revert(job)
