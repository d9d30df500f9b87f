"""A database connection dropped mid-chunk, in the embedded executor: the chunk's transaction
rolls back, the chunk is retried on a new connection, and the job ends exactly as a run without
the fault would have. (The Celery path has its own test with a real worker.)"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from taxopost.jobs.models import Job
from taxopost.observations.models import Classification
from taxopost.postprocessing.running.embedded import EmbeddedExecutor
from taxopost.postprocessing.running.operations import create_job
from taxopost.postprocessing.running.revert import revert_job
from taxopost.postprocessing.tasks.rank_rollup import RankRollupTask
from tests.platform.conftest import platform  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]


def _terminate_own_backend() -> None:
    """Kill this connection's server process from another connection, as an operator would."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    settings = connection.settings_dict
    other = f"host={settings['HOST']} port={settings['PORT']} user={settings['USER']} dbname={settings['NAME']}"
    with psycopg.connect(other, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def _state() -> set[tuple]:
    rows = Classification.objects.values_list(
        "detection__occurrence__key", "taxon__name", "terminal", "algorithm__task_type"
    )
    return set(rows)


def test_a_dropped_connection_mid_chunk_is_retried_and_the_result_is_unchanged(platform, monkeypatch):  # noqa: F811
    original = RankRollupTask.process
    calls = {"n": 0}

    def process_after_losing_the_connection(self, ids):
        calls["n"] += 1
        if calls["n"] == 1:
            _terminate_own_backend()  # the next query of this chunk fails
        return original(self, ids)

    monkeypatch.setattr(RankRollupTask, "process", process_after_losing_the_connection)
    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    EmbeddedExecutor().submit(job)
    job.refresh_from_db()
    assert job.status == Job.SUCCEEDED, job.error
    assert calls["n"] == 2
    assert any("database error" in line.message and "retried" in line.message for line in job.logs.all())
    faulted = _state()
    assert Classification.objects.filter(job=job).count() == job.metrics["changed"] == 5  # nothing twice

    monkeypatch.setattr(RankRollupTask, "process", original)
    revert_job(Job.objects.get(pk=job.pk))
    clean = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    EmbeddedExecutor().submit(clean)
    assert _state() == faulted


def test_a_connection_dropped_after_the_output_algorithm_was_saved_is_retried_with_it_saved_again(
    platform,  # noqa: F811
    monkeypatch,
):
    """The chunk's transaction, which stored the task's output algorithm, rolls back: the retry
    must store it again, not write under the id of a row that no longer exists."""
    from taxopost.postprocessing.running import chunk

    original = chunk.save_algorithm
    calls = {"n": 0}

    def save_then_lose_the_connection(algorithm):
        original(algorithm)
        calls["n"] += 1
        if calls["n"] == 1:
            _terminate_own_backend()  # the chunk's next statement fails; its transaction rolls back

    monkeypatch.setattr(chunk, "save_algorithm", save_then_lose_the_connection)
    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    EmbeddedExecutor().submit(job)
    job.refresh_from_db()
    assert job.status == Job.SUCCEEDED, job.error
    assert calls["n"] == 2
    assert Classification.objects.filter(job=job).count() == job.metrics["changed"] == 5


def test_a_dropped_connection_while_the_job_is_planned_is_retried(platform, monkeypatch):  # noqa: F811
    """The claim, which plans a new job, rolls back on a lost connection and is tried again: the
    job neither stays queued (with nothing to run it) nor fails."""
    original = RankRollupTask.plan_rows
    calls = {"n": 0}

    def plan_rows_after_losing_the_connection(self):
        calls["n"] += 1
        if calls["n"] == 1:
            _terminate_own_backend()
        return original(self)

    monkeypatch.setattr(RankRollupTask, "plan_rows", plan_rows_after_losing_the_connection)
    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    EmbeddedExecutor().submit(job)
    job.refresh_from_db()
    assert job.status == Job.SUCCEEDED, job.error
    assert calls["n"] == 2 and job.metrics["changed"] == 5
    assert any(line.message.startswith("database error") and "start retried" in line.message for line in job.logs.all())


def test_a_connection_that_stays_down_fails_the_job_cleanly(platform, monkeypatch):  # noqa: F811
    def always_losing_the_connection(self, ids):
        _terminate_own_backend()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    monkeypatch.setattr(RankRollupTask, "process", always_losing_the_connection)
    monkeypatch.setattr("taxopost.postprocessing.running.embedded.time.sleep", lambda seconds: None)
    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    EmbeddedExecutor().submit(job)
    job.refresh_from_db()
    assert (job.status == Job.FAILED and "terminat" in job.error.lower()) or "connection" in job.error.lower()
    assert not Classification.objects.filter(job=job).exists()
