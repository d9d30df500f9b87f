"""The Celery app: jobs fanned out over workers on any number of machines, Redis as the broker.

Configured from Django's settings (the ``CELERY_`` names in :mod:`taxopost.settings`), with the
broker from ``TAXOPOST_BROKER_URL``. Start a worker with ``taxopost worker`` (or
``celery -A taxopost worker``); docs/jobs.md describes a deployment.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")

app = Celery("taxopost", include=["taxopost.jobs.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
