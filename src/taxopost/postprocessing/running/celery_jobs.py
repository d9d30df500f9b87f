"""Jobs on Celery: the executor that sends a job's messages, and the worker tasks that take them.

A job becomes one start task, then one task per chunk, then a finish task. Chunks are sent a
few at a time (``TAXOPOST_CHUNKS_IN_FLIGHT``): each chunk that finishes sends the next pending
one. The queue thus never holds thousands of one job's chunks, which keeps other jobs' chunks
from waiting behind them (their heartbeat would go stale) and lets a cancel take effect within
a few chunks.

Messages carry primary keys, never rows: each task re-reads the job and chunk and checks their
state, so a redelivered or duplicated message is harmless. Tasks are acknowledged late and
requeued if their worker process dies; transient database errors are retried with backoff.
A worker killed outright is not redelivered before the broker's visibility timeout: every
worker therefore reaps stale jobs itself (:class:`Reaper`, at start and every
``TAXOPOST_JOB_REAP_SECONDS``) and resumes them.

Messages also carry the database's identity and go to the queue named after it
(:mod:`taxopost.jobs.identity`): deployments sharing one broker never run each other's job ids.
A start message the broker refuses leaves the job failed and resumable, never queued forever.
"""

from __future__ import annotations

import logging
import threading

from celery import Task, bootsteps
from celery.exceptions import Reject
from celery.signals import celeryd_after_setup
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from kombu.exceptions import OperationalError as BrokerUnavailable
from kombu.utils.url import maybe_sanitize_url

from taxopost.celery import app
from taxopost.errors import InputError, JobError, ServiceUnavailable, clip
from taxopost.jobs.chunks import chunk_counts, in_flight, take_pending
from taxopost.jobs.identity import database_identity, job_queue
from taxopost.jobs.models import Job
from taxopost.postprocessing.running.chunk import SKIPPED, run_chunk
from taxopost.postprocessing.running.lifecycle import (
    claim,
    fail,
    failure_message,
    finish,
    queue,
    reap_and_resume,
    settle_cancel,
)

logger = logging.getLogger(__name__)

#: Sending a message tries the broker three times over about a second, then gives up: a request
#: or a command must not hang on a broker that is away (the job is marked failed and resumable).
SEND_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
#: What a refused or unreachable broker raises while sending.
BROKER_ERRORS = (BrokerUnavailable, ConnectionError, OSError)
#: A step failed because a service was away, not because of its data: the job can be resumed.
SERVICE_ERRORS = (OperationalError, InterfaceError, BrokerUnavailable, ServiceUnavailable)


class CeleryExecutor:
    name = "celery"

    def submit(self, job: Job) -> None:
        """Queue the job; its start task is sent once the current transaction commits.

        If the broker refuses it, the job is failed (resumable) and ServiceUnavailable raised
        where the transaction commits: by this call outside a transaction, else on leaving it.
        """
        queue(job, self.name)
        job_id = job.pk
        transaction.on_commit(lambda: send_start(job_id))
        job.refresh_from_db()


def send_start(job_id: int) -> None:
    """Send the job's start message; when the broker refuses, fail the job with the reason."""
    try:
        send(start_job, job_id)
    except ServiceUnavailable as exc:
        message = f"job {job_id} was not sent to the workers: {exc}; `taxopost jobs resume {job_id}` sends it again"
        fail(job_id, message)
        raise ServiceUnavailable(message) from None


def send(task: Task, *args: int, identity: str | None = None, countdown: float | None = None) -> None:
    """Send one job step to this database's queue, with the database's identity (``countdown``: s later)."""
    identity = identity or database_identity()
    try:
        task.apply_async(
            args=args,
            kwargs={"database": identity},
            queue=job_queue(identity),
            countdown=countdown,
            retry_policy=SEND_RETRY,
        )
    except BROKER_ERRORS as exc:
        reason = clip(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 200)
        raise ServiceUnavailable(
            f"the broker at {maybe_sanitize_url(settings.BROKER_URL)} refused it ({reason})"
        ) from None


def dispatch(job_id: int, n: int | None = None) -> int:
    """Send up to ``n`` (default: the in-flight limit) pending chunks of the job to the workers."""
    chunk_ids = take_pending(job_id, settings.JOB_CHUNKS_IN_FLIGHT if n is None else n)
    identity = database_identity()
    for chunk_id in chunk_ids:
        send(run_chunk_task, job_id, chunk_id, identity=identity)
    return len(chunk_ids)


#: The identity of the database this worker serves, read once when it starts (see below).
_worker_identity: str | None = None


@celeryd_after_setup.connect
def consume_this_database(sender, instance, **kwargs) -> None:
    """A worker consumes its database's queue (instead of the plain default one, unless -Q named others)."""
    global _worker_identity
    _worker_identity = database_identity()
    connections.close_all()  # the pool processes are forked from this one: no connection to share
    queues = instance.app.amqp.queues
    plain = set(queues.consume_from) == {settings.CELERY_TASK_DEFAULT_QUEUE}
    queues.select_add(job_queue(_worker_identity))
    if plain:
        queues.deselect(settings.CELERY_TASK_DEFAULT_QUEUE)


class JobStep(Task):
    """A step of a job; its first argument is the job's id, which fails if the step does.

    A message of another database (an operator routed two deployments to one queue) is sent on
    to that database's queue untouched: this worker's rows are never read for it.
    """

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (OperationalError, InterfaceError)  # the database restarting, a dropped connection
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 6
    ignore_result = True
    typing = False  # ``database`` travels as a keyword the steps never see: __call__ takes it

    def __call__(self, *args, database: str | None = None, **kwargs):
        mine = _worker_identity or database_identity()
        if database is not None and database != mine:
            logger.warning("%s%s belongs to database %s, not %s: sent to its queue", self.name, args, database, mine)
            try:
                self.apply_async(args=args, kwargs={"database": database, **kwargs}, queue=job_queue(database))
            except BROKER_ERRORS as exc:  # back to the broker as it is: never failed here, on another job
                raise Reject(str(exc), requeue=True) from None
            return None
        return super().__call__(*args, **kwargs)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if _worker_identity and kwargs.get("database") not in (None, _worker_identity):
            logger.error("%s%s of database %s failed here: %s", self.name, args, kwargs["database"], exc)
            return
        if not isinstance(exc, InputError | JobError):
            logger.error("job %s: %s failed", job_id, self.name, exc_info=exc)
        message = failure_message(exc)
        if isinstance(exc, SERVICE_ERRORS):  # a service was away, not bad data
            message += f"; `taxopost jobs resume {job_id}` runs what is left"
        try:
            fail(job_id, message)
        except (OperationalError, InterfaceError):  # the database is down: the reaper will see the job
            logger.error("job %s: could not record the failure", job_id)


@app.task(base=JobStep, bind=True, name="taxopost.jobs.start")
def start_job(self, job_id: int) -> None:
    """Claim and plan the job, then send its first chunks; wait while its project is busy.

    Waiting sends the start step again, later, rather than retrying it: a retry counts against
    ``max_retries`` (meant for a database away), and a job behind a long one would fail after a
    few checks.
    """
    claimed = claim(job_id, "celery")
    if claimed.waiting_for is not None:
        send(start_job, job_id, countdown=settings.JOB_WAIT_SECONDS)
        return
    if claimed.job is None:
        return
    if chunk_counts(job_id).left == 0:
        send(finish_job, job_id)
    elif claimed.fresh:
        dispatch(job_id)
    else:  # a copy of the start message (redelivered, or sent twice): tops up to the in-flight limit
        dispatch(job_id, max(0, settings.JOB_CHUNKS_IN_FLIGHT - in_flight(job_id)))


@app.task(base=JobStep, bind=True, name="taxopost.jobs.chunk")
def run_chunk_task(self, job_id: int, chunk_id: int) -> None:
    """Run one chunk, then send the next pending one, or the finish step after the last."""
    outcome = run_chunk(chunk_id)
    if outcome.state == SKIPPED:
        if outcome.cancel_requested:
            settle_cancel(job_id)
        return
    if outcome.left == 0:
        send(finish_job, job_id)
    elif outcome.cancel_requested:
        settle_cancel(job_id)
    else:
        dispatch(job_id, 1)


@app.task(base=JobStep, bind=True, name="taxopost.jobs.finish")
def finish_job(self, job_id: int) -> None:
    """Merge the chunks' metrics and set the final status (a no-op if already done)."""
    finish(job_id)


class Reaper(bootsteps.StartStopStep):
    """Every worker reaps stale jobs and resumes them: when it starts, then every JOB_REAP_SECONDS.

    A thread of the worker's main process, so that a worker busy with long chunks, or idle
    because the dead worker held the job's messages, still reaps on time. Several workers
    reaping at once is safe (each job is reaped under its row lock, busy rows skipped).
    """

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.stopping = threading.Event()

    def start(self, parent) -> None:
        threading.Thread(target=self._loop, name="taxopost-reaper", daemon=True).start()

    def stop(self, parent) -> None:
        self.stopping.set()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                for job in reap_and_resume(CeleryExecutor().submit):
                    logger.warning("job %s had no heartbeat for %ss: reaped (%s)", job.pk, settings.JOB_STALE_SECONDS,
                                   job.status)  # fmt: skip
            except Exception:  # the database or the broker away: try again next period
                logger.exception("reaping stale jobs failed")
            finally:
                connections.close_all()  # the main process holds no connection between reaps
            self.stopping.wait(settings.JOB_REAP_SECONDS)


app.steps["worker"].add(Reaper)
