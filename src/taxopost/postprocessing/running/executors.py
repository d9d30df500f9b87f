"""Where jobs run. One interface, two executors: in-process (default) and Celery (with a broker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from django.conf import settings

from taxopost.jobs.models import Job
from taxopost.postprocessing.running.embedded import EmbeddedExecutor


class Executor(Protocol):
    name: str

    def submit(self, job: Job) -> None:
        """Start ``job`` (after the current transaction commits)."""


def get_executor(*, background: bool = False, on_progress: Callable | None = None) -> Executor:
    """Celery when a broker is configured, else the embedded executor."""
    if settings.BROKER_URL:
        # Imported only with a broker: the embedded default never loads Celery.
        from taxopost.postprocessing.running.celery_jobs import CeleryExecutor

        return CeleryExecutor()
    return EmbeddedExecutor(background=background, on_progress=on_progress)
