"""The Celery app: jobs fanned out over workers on any number of machines, Redis as the broker.

Configured from Django's settings (the ``CELERY_`` names in :mod:`taxopost.settings`), with the
broker from ``TAXOPOST_BROKER_URL``. Start a worker with ``taxopost worker`` (or
``celery -A taxopost worker``); docs/jobs.md describes a deployment.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")

app = Celery("taxopost", include=["taxopost.postprocessing.running.celery_jobs"])
app.config_from_object("django.conf:settings", namespace="CELERY")


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**_) -> None:
    """Django's rule between requests, between tasks: reuse a connection, unless broken or too old."""
    from django.db import close_old_connections

    close_old_connections()
