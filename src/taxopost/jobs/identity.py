"""Which database a job message belongs to, and the broker queue named after it."""

from __future__ import annotations

from django.conf import settings

from taxopost.jobs.models import DatabaseIdentity


def database_identity() -> str:
    """This database's identity (created on first use; one indexed read afterwards).

    Not cached in the process: a test database flushed between tests gets a new one.
    """
    row, _ = DatabaseIdentity.objects.get_or_create(pk=1)
    return row.key.hex


def job_queue(identity: str | None = None) -> str:
    """The broker queue of this database's jobs (``taxopost.<identity>``)."""
    return f"{settings.CELERY_TASK_DEFAULT_QUEUE}.{identity or database_identity()}"
