"""``taxopost worker``: a Celery worker that runs jobs' chunks (docs/jobs.md)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from taxopost.cli.app import app
from taxopost.errors import InputError


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Worker processes (default: the number of CPUs).")
    ] = os.cpu_count() or 1,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues", "-Q", help="Comma-separated queues to consume (default: this database's, taxopost.<identity>)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Node name (default: taxopost-PID@HOST).")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l", help="debug, info, warning or error.")] = "info",
) -> None:
    """Start a Celery worker on TAXOPOST_BROKER_URL, with DATABASE_URL as the database.

    It takes the jobs of its database only (their queue is named after the database), and it
    reaps stale jobs of dead workers itself, at start and every TAXOPOST_JOB_REAP_SECONDS,
    resuming them.
    """
    if concurrency < 1:
        raise InputError("--concurrency", concurrency, "must be at least 1")
    from taxopost.django_setup import setup

    setup(migrate=False)  # workers start by the dozen: migrating is the job of one `taxopost` command
    from django.conf import settings

    if not settings.BROKER_URL:
        raise InputError("TAXOPOST_BROKER_URL", "", "set it to the Redis broker, e.g. redis://127.0.0.1:6379/0")
    from taxopost.celery import app as celery_app
    from taxopost.jobs.identity import database_identity

    database_identity()  # the database answers and is migrated, or one line says why (not a worker that waits)

    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        f"--hostname={name or f'taxopost-{os.getpid()}@%h'}",
        # Jobs keep their state in the database: workers need not sync revoked tasks or clocks.
        "--without-mingle",
        "--without-gossip",
    ]
    if queues:
        argv.append(f"--queues={queues}")
    celery_app.worker_main(argv)
