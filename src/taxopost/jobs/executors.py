"""Where jobs run. One interface, two executors: in-process (default) and Celery (with a broker)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from django.conf import settings
from django.db import connections, transaction

from taxopost.jobs.execution import execute
from taxopost.jobs.models import Job


class Executor(Protocol):
    name: str

    def submit(self, job: Job) -> None:
        """Start ``job`` (after the current transaction commits)."""


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


def queue(job: Job, executor: str) -> None:
    """A created job (or one resumed) is queued on ``executor``."""
    Job.objects.filter(pk=job.pk, status__in=(Job.CREATED, Job.QUEUED)).update(status=Job.QUEUED, executor=executor)


def _run_thread(job_id: int) -> None:
    try:
        execute(job_id, executor=EmbeddedExecutor.name)
    finally:
        connections.close_all()


def get_executor(*, background: bool = False, on_progress: Callable | None = None) -> Executor:
    """Celery when a broker is configured, else the embedded executor."""
    if settings.BROKER_URL:
        from taxopost.jobs.celery_executor import CeleryExecutor

        return CeleryExecutor()
    return EmbeddedExecutor(background=background, on_progress=on_progress)
