"""Jobs on real Celery workers (Redis broker, PostgreSQL): fan-out, crash and resume, cancel, overlap.

Every test compares with the embedded executor on an identical project in the same database:
the same classifications (detection, taxon, algorithm, score, applied_to chain, terminal,
duplicates counted) and the same determinations.

To act "mid-job" at a known point, a test holds the job's row lock: a chunk then stops at the
end of its transaction, its classifications written but not committed, until the lock is
released. That is where a worker killed mid-chunk hurts most.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from taxopost.jobs.models import Job, JobChunk
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.models import Classification, Occurrence
from taxopost.postprocessing.running.celery_jobs import CeleryExecutor
from taxopost.postprocessing.running.embedded import EmbeddedExecutor
from taxopost.postprocessing.running.operations import cancel_job, create_job, resume_job, submit_job

from .conftest import STALE_SECONDS, assert_chains_intact, capture_set, project_state, taxopost, wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

MASKING = ("class_masking", {"taxa_list": "regional"})
ROLLUP = ("rank_rollup", {})
FILTER = ("small_size_filter", {"size_threshold": 0.01})
CONSENSUS = ("occurrence_consensus", {})
STRICT_ROLLUP = ("rank_rollup", {"thresholds": {"species": 0.95, "genus": 0.9, "family": 0.5}})
GEOMETRIC = ("occurrence_consensus", {"method": "geometric"})


def _job(task_config, scope: str, *, chunk_size: int) -> Job:
    task, config = task_config
    return create_job(task, Job.CAPTURE_SET, capture_set(scope).pk, config, chunk_size=chunk_size)


def _on_celery(task_config, scope: str, *, chunk_size: int) -> Job:
    job = _job(task_config, scope, chunk_size=chunk_size)
    submit_job(job, CeleryExecutor())
    return job


def _embedded(task_config, scope: str, *, chunk_size: int = 1000) -> Job:
    job = _job(task_config, scope, chunk_size=chunk_size)
    submit_job(job, EmbeddedExecutor())
    assert job.status == Job.SUCCEEDED, job.error
    return job


def _finished(job: Job, worker, seconds: float = 60) -> Job:
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, seconds, f"job {job.pk} to finish", worker)
    return Job.objects.get(pk=job.pk)


def _done(job: Job) -> int:
    return JobChunk.objects.filter(job=job, status=JobChunk.DONE).count()


@contextmanager
def _paused_in_a_chunk(job: Job, worker):
    """Hold the job's row until a chunk waits for it with its writes made but not committed.

    Yields the waiting database backend's pid. A chunk caught at its beginning instead (it
    locks the job's row before writing anything) is let go at once, and the next one tried.
    """
    for _ in range(100):
        with transaction.atomic():
            Job.objects.select_for_update().get(pk=job.pk)
            pid = _blocked_writer()
            if pid is not None:
                yield pid
                return
    pytest.fail(f"no chunk of job {job.pk} was caught writing\n{worker.tail()}")


def _blocked_writer(seconds: float = 10) -> int | None:
    """The backend waiting for a lock with uncommitted writes to classifications; None if the
    first backend to wait holds none (a chunk beginning), or if none waits within ``seconds``."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees its first snapshot
            cursor.execute(
                """
                SELECT a.pid, bool_or(l.relation = 'observations_classification'::regclass
                                      AND l.mode = 'RowExclusiveLock')
                FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
                WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'
                  AND a.pid <> pg_backend_pid()
                GROUP BY a.pid
                """
            )
            waiting = cursor.fetchall()
            writers = [pid for pid, wrote in waiting if wrote]
            if writers or waiting:
                return writers[0] if writers else None
            time.sleep(0.01)
    return None


def _backend_gone(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] == 0


def _killed_mid_chunk(workers, task_config, scope: str) -> Job:
    """A job on one worker, SIGKILLed while a chunk's writes are uncommitted after three chunks
    finished; returns once the killed chunk's transaction has rolled back."""
    first = workers.start(concurrency=1)
    job = _on_celery(task_config, scope, chunk_size=40)
    wait_for(lambda: _done(job) >= 3, 60, "three chunks to finish", first)
    with _paused_in_a_chunk(job, first) as backend:
        first.kill()
    wait_for(lambda: _backend_gone(backend), 30, "the killed chunk's transaction to roll back")
    return job


def test_a_job_fanned_out_on_workers_ends_as_the_embedded_executor(workers, survey, tmp_path):
    for project in ("fan", "embedded"):
        survey(tmp_path, project)
    worker = workers.start(concurrency=2)
    for step in (MASKING, ROLLUP, FILTER):
        job = _finished(_on_celery(step, "fan", chunk_size=100), worker)
        reference = _embedded(step, "embedded")
        assert job.status == Job.SUCCEEDED, job.error
        chunks = JobChunk.objects.filter(job=job)
        assert chunks.count() >= 4 and not chunks.exclude(status=JobChunk.DONE).exists()
        assert len(set(chunks.values_list("worker", flat=True))) == 2  # both pool processes took chunks
        assert job.metrics == reference.metrics and job.metrics["changed"] > 0
        assert job.progress == 1.0
    assert project_state("fan") == project_state("embedded")
    assert_chains_intact("fan")


def test_occurrence_consensus_on_workers_ends_as_the_embedded_executor(workers, survey, tmp_path):
    for project in ("fan", "embedded"):
        survey(tmp_path, project)
    worker = workers.start(concurrency=2)
    for step in (MASKING, CONSENSUS, ROLLUP):
        job = _finished(_on_celery(step, "fan", chunk_size=100), worker)
        reference = _embedded(step, "embedded")
        assert job.status == Job.SUCCEEDED, job.error
        assert JobChunk.objects.filter(job=job).count() >= 4
        assert job.metrics == reference.metrics and job.metrics["changed"] > 0
    assert project_state("fan") == project_state("embedded")
    assert_chains_intact("fan")


def test_a_worker_killed_mid_chunk_loses_and_duplicates_nothing_after_reap_and_resume(workers, survey, tmp_path):
    for project in ("crash", "uninterrupted"):
        survey(tmp_path, project)
    _embedded(MASKING, "uninterrupted")
    reference = _embedded(ROLLUP, "uninterrupted")
    _embedded(MASKING, "crash")

    job = _killed_mid_chunk(workers, ROLLUP, "crash")

    # The chunk that died wrote nothing; every chunk done wrote all of its changes.
    died = JobChunk.objects.get(job=job, status=JobChunk.RUNNING)
    done = JobChunk.objects.filter(job=job, status=JobChunk.DONE)
    assert Classification.objects.filter(job=job).count() == sum(c.metrics["changed"] for c in done)
    assert not Classification.objects.filter(job=job, applied_to_id__in=died.ids).exists()

    second = workers.start(concurrency=2)  # runs what was still queued; the dead chunk stays unfinished
    reap = ("jobs", "reap", f"--stale-after={STALE_SECONDS}")
    wait_for(lambda: f"job {job.pk}: failed: stale" in taxopost(tmp_path, *reap).stderr, 60, "the reaper", second)
    assert Job.objects.get(pk=job.pk).status == Job.FAILED
    resumed = taxopost(tmp_path, "jobs", "resume", str(job.pk))
    assert resumed.returncode == 0 and "queued on the Celery broker" in resumed.stderr, resumed.stderr
    job = _finished(job, second)

    assert job.status == Job.SUCCEEDED, job.error
    assert JobChunk.objects.get(pk=died.pk).status == JobChunk.DONE
    assert job.metrics == reference.metrics
    assert project_state("crash") == project_state("uninterrupted")
    assert_chains_intact("crash")


def _by_algorithm(metrics: dict) -> dict:
    """A job's metrics with its replaced outputs counted by algorithm (job ids differ between projects)."""
    from taxopost.jobs.summary import split_key

    result = dict(metrics)
    for key in ("replaced", "replaced_later"):
        counts: dict[int, int] = {}
        for pair, count in metrics[key].items():
            algorithm = split_key(pair)[1]
            counts[algorithm] = counts.get(algorithm, 0) + count
        result[key] = counts
    return result


def test_reruns_on_workers_end_as_the_embedded_executor_even_when_a_worker_dies(workers, survey, tmp_path):
    """A re-tuned roll-up (replacing it and the size filter on it) killed mid-chunk, reaped and
    resumed; then a consensus with another method (replacing it and everything above it)."""
    for project in ("rerun", "embedded"):
        survey(tmp_path, project)
        for step in (MASKING, CONSENSUS, ROLLUP, FILTER):
            _embedded(step, project)
    reference = _embedded(STRICT_ROLLUP, "embedded")
    assert reference.metrics["replaced"] and reference.metrics["replaced_later"] and reference.metrics["restored"]

    job = _killed_mid_chunk(workers, STRICT_ROLLUP, "rerun")
    died = JobChunk.objects.get(job=job, status=JobChunk.RUNNING)
    assert not Classification.objects.filter(replaced_by=job, applied_to_id__in=died.ids).exists()

    second = workers.start(concurrency=2)
    reap = ("jobs", "reap", f"--stale-after={STALE_SECONDS}")
    wait_for(lambda: f"job {job.pk}: failed: stale" in taxopost(tmp_path, *reap).stderr, 60, "the reaper", second)
    resumed = taxopost(tmp_path, "jobs", "resume", str(job.pk))
    assert resumed.returncode == 0, resumed.stderr
    job = _finished(job, second)
    assert job.status == Job.SUCCEEDED, job.error
    assert _by_algorithm(job.metrics) == _by_algorithm(reference.metrics)
    assert project_state("rerun") == project_state("embedded")
    assert_chains_intact("rerun")

    reference = _embedded(GEOMETRIC, "embedded")
    assert reference.metrics["replaced"] and reference.metrics["replaced_later"]
    job = _finished(_on_celery(GEOMETRIC, "rerun", chunk_size=40), second)
    assert job.status == Job.SUCCEEDED, job.error
    assert _by_algorithm(job.metrics) == _by_algorithm(reference.metrics)
    assert project_state("rerun") == project_state("embedded")
    assert_chains_intact("rerun")


def test_a_database_connection_lost_mid_chunk_is_retried_on_a_new_one(workers, survey, tmp_path):
    """What a database restart does to a worker: its transaction aborted, its connection gone."""
    for project in ("dropped", "steady"):
        survey(tmp_path, project)
    reference = _embedded(ROLLUP, "steady")
    worker = workers.start(concurrency=1)
    job = _on_celery(ROLLUP, "dropped", chunk_size=40)
    wait_for(lambda: _done(job) >= 2, 60, "two chunks to finish", worker)
    with _paused_in_a_chunk(job, worker) as backend, connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
    job = _finished(job, worker)

    assert job.status == Job.SUCCEEDED, job.error
    assert "Retry in" in worker.log.read_text()  # Celery's autoretry, with backoff
    assert JobChunk.objects.filter(job=job, attempts=2).count() == 1  # the chunk that lost its connection
    assert job.metrics == reference.metrics
    assert project_state("dropped") == project_state("steady")
    assert_chains_intact("dropped")


def test_cancel_mid_job_keeps_finished_chunks_consistent_and_resume_completes(workers, survey, tmp_path):
    for project in ("cancel", "reference"):
        survey(tmp_path, project)
    reference = _embedded(ROLLUP, "reference")
    worker = workers.start(concurrency=1)

    job = _on_celery(ROLLUP, "cancel", chunk_size=40)
    wait_for(lambda: _done(job) >= 2, 60, "two chunks to finish", worker)
    with _paused_in_a_chunk(job, worker):
        assert cancel_job(job).status == Job.RUNNING  # a chunk is in flight: it finishes first
    job = _finished(job, worker)
    assert job.status == Job.CANCELED

    # Finished chunks are whole, unfinished ones untouched, determinations up to date.
    done = JobChunk.objects.filter(job=job, status=JobChunk.DONE)
    left = JobChunk.objects.filter(job=job).exclude(status=JobChunk.DONE)
    assert done.count() >= 3 and left.exists()
    written = Classification.objects.filter(job=job)
    assert written.count() == job.metrics["changed"] == sum(c.metrics["changed"] for c in done)
    assert not written.filter(applied_to_id__in=[i for c in left for i in c.ids]).exists()
    assert recompute_determinations(Occurrence.objects.filter(project__name="cancel").values_list("id", flat=True)) == 0
    assert_chains_intact("cancel")

    resume_job(job, CeleryExecutor())
    job = _finished(job, worker)
    assert job.status == Job.SUCCEEDED and job.metrics == reference.metrics
    assert project_state("cancel") == project_state("reference")


def test_cancel_with_revert_mid_job_restores_the_state_before_it(workers, survey, tmp_path):
    survey(tmp_path, "undo")
    before = project_state("undo")
    worker = workers.start(concurrency=1)
    job = _on_celery(MASKING, "undo", chunk_size=40)
    wait_for(lambda: _done(job) >= 2, 60, "two chunks to finish", worker)
    with _paused_in_a_chunk(job, worker):
        cancel_job(job, revert=True)
    job = _finished(job, worker)
    wait_for(lambda: Job.objects.get(pk=job.pk).reverted_at, 30, "the revert", worker)
    assert Job.objects.get(pk=job.pk).status == Job.CANCELED
    assert project_state("undo") == before


def test_overlapping_jobs_on_two_workers_end_as_if_run_one_after_the_other(workers, survey, tmp_path):
    for project in ("together", "apart"):
        survey(tmp_path, project)
    one, two = workers.start(concurrency=1), workers.start(concurrency=1)
    with transaction.atomic():  # both start messages leave at commit: the two workers take one each
        masking = _on_celery(MASKING, "together-a", chunk_size=40)
        rollup = _on_celery(ROLLUP, "together-b", chunk_size=40)
    masking, rollup = _finished(masking, one), _finished(rollup, two)
    assert masking.status == rollup.status == Job.SUCCEEDED

    first, second = sorted([masking, rollup], key=lambda job: job.started_at)
    assert second.started_at >= first.finished_at
    assert second.logs.filter(message__startswith=f"waiting for job {first.pk}").exists()  # they did meet
    for job in (first, second):  # one job at a time per project, but each job on both workers
        assert len(set(JobChunk.objects.filter(job=job).values_list("worker", flat=True))) == 2

    scopes = {masking.pk: "apart-a", rollup.pk: "apart-b"}
    steps = {masking.pk: MASKING, rollup.pk: ROLLUP}
    for job in (first, second):
        _embedded(steps[job.pk], scopes[job.pk])
    assert project_state("together") == project_state("apart")
    assert_chains_intact("together")


def test_a_job_waits_for_its_project_as_long_as_the_job_before_it_runs(workers, survey, tmp_path):
    from django.utils import timezone

    for project in ("busy", "free"):
        survey(tmp_path, project)
    reference = _embedded(MASKING, "free-b")
    blocker = _job(ROLLUP, "busy-a", chunk_size=100)  # a long job of the project, running elsewhere
    Job.objects.filter(pk=blocker.pk).update(status=Job.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now())
    worker = workers.start(TAXOPOST_JOB_WAIT_SECONDS="0.1")
    job = _on_celery(MASKING, "busy-b", chunk_size=100)

    def checks() -> int:
        return worker.log.read_text(errors="replace").count("taxopost.jobs.start[")

    # Far more checks than a step's retries for a database away (6): waiting is not failing.
    wait_for(lambda: checks() >= 2 * 20 or Job.objects.get(pk=job.pk).is_finished, 60, "20 checks", worker)
    job = Job.objects.get(pk=job.pk)
    assert job.status == Job.QUEUED, job.error
    assert job.logs.filter(message__startswith=f"waiting for job {blocker.pk}").count() == 1  # logged once

    Job.objects.filter(pk=blocker.pk).update(status=Job.SUCCEEDED, finished_at=timezone.now())
    job = _finished(job, worker)
    assert job.status == Job.SUCCEEDED, job.error
    assert job.metrics == reference.metrics
    assert project_state("busy") == project_state("free")


def test_a_plain_worker_reaps_a_stale_job_when_it_starts_and_resumes_it(workers, survey, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    survey(tmp_path, "stale")
    survey(tmp_path, "reference")
    reference = _embedded(ROLLUP, "reference")
    job = _job(ROLLUP, "stale", chunk_size=100)
    Job.objects.filter(pk=job.pk).update(status=Job.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=10))
    worker = workers.start(TAXOPOST_JOB_STALE_SECONDS="60")  # its first reap is at start; the next in 60 s
    # Reaped straight back into the queue (never failed), then run to the end.
    wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.SUCCEEDED, 30, f"job {job.pk} to be resumed", worker)
    job = Job.objects.get(pk=job.pk)
    assert job.status == Job.SUCCEEDED, job.error
    assert job.logs.filter(message__startswith="stale: no heartbeat since").exists()
    assert job.logs.filter(message__startswith="resumed automatically (1 of 3)").exists()
    assert job.metrics == reference.metrics
    assert project_state("stale") == project_state("reference")


def test_a_worker_killed_mid_chunk_is_reaped_and_resumed_by_another_without_a_command(workers, survey, tmp_path):
    for project in ("crash", "uninterrupted"):
        survey(tmp_path, project)
    reference = _embedded(ROLLUP, "uninterrupted")
    job = _killed_mid_chunk(workers, ROLLUP, "crash")
    assert Job.objects.get(pk=job.pk).status == Job.RUNNING  # the dead worker's job, stuck until reaped

    second = workers.start(concurrency=2, TAXOPOST_JOB_STALE_SECONDS=str(STALE_SECONDS), TAXOPOST_JOB_REAP_SECONDS="1")
    # Reaped back into the queue, then resumed at once by the same worker: it ends as if never stopped.
    wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.SUCCEEDED, 90, "the job to be resumed", second)
    job = Job.objects.get(pk=job.pk)
    assert job.logs.filter(message__startswith="resumed automatically").exists()
    assert job.metrics == reference.metrics
    assert project_state("crash") == project_state("uninterrupted")
    assert_chains_intact("crash")
