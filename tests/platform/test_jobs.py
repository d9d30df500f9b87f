"""Jobs in chunks, on the embedded executor: plan, crash and resume, cancel, one job per project.

The same functions run each chunk on Celery (tests/workers); here a crash is simulated by
leaving a chunk begun but not written, which is what a worker killed mid-chunk leaves.
"""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from taxopost.dbutils import insert_rows, update_rows
from taxopost.errors import InputError, JobError, ServiceUnavailable
from taxopost.jobs.models import Job, JobChunk, JobLog
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.models import (
    CaptureSet,
    Classification,
    Detection,
    DeterminationChange,
    Occurrence,
    Project,
    SourceImage,
)
from taxopost.postprocessing.running.chunk import ALREADY_DONE, DONE, MAX_CHUNK_STARTS, SKIPPED, build_task, run_chunk
from taxopost.postprocessing.running.embedded import EmbeddedExecutor, execute
from taxopost.postprocessing.running.lifecycle import (
    MAX_AUTOMATIC_RESUMES,
    can_resume,
    claim,
    finish,
    reap_and_resume,
    reap_stale_jobs,
    reopen_job,
    settle_cancel,
)
from taxopost.postprocessing.running.operations import cancel_job, create_job, resume_job, submit_job
from taxopost.postprocessing.running.revert import revert_job

from .helpers import run, snapshot

pytestmark = pytest.mark.django_db


def _claimed(capture_set, task="rank_rollup", config=None, **options) -> Job:
    job = create_job(task, Job.CAPTURE_SET, capture_set.pk, config or {}, **options)
    assert claim(job.pk, "embedded").fresh
    job.refresh_from_db()
    return job


def _chunks(job) -> list[JobChunk]:
    return list(JobChunk.objects.filter(job=job).order_by("index"))


def _determinations() -> dict:
    return dict(Occurrence.objects.values_list("key", "determination__name"))


def _crash_in(chunk: JobChunk) -> None:
    """What a worker killed inside a chunk leaves: the chunk begun (running), its writes rolled back."""
    from taxopost.postprocessing.running.chunk import _begin

    assert isinstance(_begin(chunk.pk, "dead-host:1"), tuple)


def test_plan_is_stored_in_chunks_of_the_chunk_size(platform):
    job = run("rank_rollup", platform, chunk_size=2)
    chunks = _chunks(job)
    assert [c.size for c in chunks] == [2, 2, 2]  # the six classifications of the capture set
    assert all(c.ids == sorted(c.ids) and len(c.ids) == c.size for c in chunks)
    assert sorted(i for c in chunks for i in c.ids) == sorted(
        Classification.objects.filter(job=None).values_list("id", flat=True)
    )
    assert {c.status for c in chunks} == {JobChunk.DONE}
    assert job.metrics["transitions"] == {"species -> genus": 4, "species -> family": 1}
    assert job.progress == 1.0 and job.stages[-1] == {"name": "processing", "progress": 1.0}


def test_an_occurrence_is_never_split_between_chunks(platform, tmp_path):
    """Three detections per occurrence, chunks of two: each chunk takes whole occurrences."""
    from taxopost.observations.predictions import import_predictions

    from .conftest import ROWS, write_predictions

    tracks = [(f"track-{i // 3}", f"frame-{i}.jpg", [0, 0, 10 + i, 10 + i], ROWS[1][3]) for i in range(9)]
    import_predictions(write_predictions(tmp_path / "tracks.jsonl", tracks, capture_set="tracks"))
    job = run("rank_rollup", CaptureSet.objects.get(name="tracks"), chunk_size=2)
    occurrences_of = [
        set(Classification.objects.filter(id__in=c.ids).values_list("detection__occurrence__key", flat=True))
        for c in _chunks(job)
    ]
    assert [len(keys) for keys in occurrences_of] == [1, 1, 1]
    assert [c.size for c in _chunks(job)] == [3, 3, 3]
    assert job.metrics["determinations_changed"] == 3  # each occurrence recomputed once, by one chunk
    assert DeterminationChange.objects.filter(job=job).count() == 3


def test_chunked_runs_report_what_one_chunk_reports(platform):
    whole = run("rank_rollup", platform, dry_run=True)
    chunked = run("rank_rollup", platform, dry_run=True, chunk_size=1)
    assert chunked.result["preview"] == whole.result["preview"]
    assert chunked.metrics == whole.metrics


@pytest.mark.parametrize("size", [0, -1, 10_001, 2.5, "100"])
def test_chunk_size_is_checked_before_the_job_exists(platform, size):
    with pytest.raises(InputError, match=r"chunk_size=.*: must be an integer from 1 to 10,000"):
        create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {}, chunk_size=size)
    assert not Job.objects.exists()


def test_a_crashed_job_resumes_to_the_state_of_an_uninterrupted_run(platform):
    uninterrupted = run("class_masking", platform, {"taxa_list": "regional"}, chunk_size=2)
    expected, expected_determinations = snapshot(), _determinations()
    revert_job(uninterrupted)

    job = _claimed(platform, "class_masking", {"taxa_list": "regional"}, chunk_size=2)
    first, second, _ = _chunks(job)
    assert run_chunk(first.pk).state == DONE
    _crash_in(second)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    [reaped] = reap_stale_jobs()
    assert reaped.pk == job.pk and reaped.status == Job.FAILED
    assert reaped.error.startswith("stale: no heartbeat since") and f"taxopost jobs resume {job.pk}" in reaped.error
    assert Classification.objects.filter(job=job).count() == 2  # the first chunk's, nothing of the second

    resumed = resume_job(Job.objects.get(pk=job.pk), EmbeddedExecutor())
    assert resumed.status == Job.SUCCEEDED, resumed.error
    assert snapshot() == expected
    assert _determinations() == expected_determinations
    assert resumed.metrics == uninterrupted.metrics
    assert JobChunk.objects.get(pk=first.pk).attempts == 1  # finished chunks are never redone
    assert JobChunk.objects.get(pk=second.pk).attempts == 1  # counted afresh since the resume


def test_a_finished_chunk_run_again_writes_nothing(platform):
    job = _claimed(platform, chunk_size=2)
    chunk = _chunks(job)[0]
    assert run_chunk(chunk.pk).state == DONE
    before = snapshot()
    JobChunk.objects.filter(pk=chunk.pk).update(status=JobChunk.RUNNING)  # as a redelivered copy sees it
    task = build_task(job)
    task.prepare()
    JobChunk.objects.filter(pk=chunk.pk).update(status=JobChunk.DONE)
    assert run_chunk(chunk.pk, task=task).state == ALREADY_DONE
    assert snapshot() == before


def test_a_finished_chunk_redelivered_while_its_job_is_back_in_the_queue_sends_no_other_chunk(platform):
    """The worker that finished the chunk died before acknowledging it, and its job was reaped
    back into the queue: the copy must not take a pending chunk, which the job's start would
    then never send."""
    from taxopost.postprocessing.running.celery_jobs import run_chunk_task

    uninterrupted = run("rank_rollup", platform, chunk_size=2)
    expected = snapshot()
    revert_job(uninterrupted)
    job = _claimed(platform, chunk_size=2)
    first, *others = _chunks(job)
    assert run_chunk(first.pk).state == DONE
    Job.objects.filter(pk=job.pk).update(status=Job.QUEUED)  # reaped: its other chunks are pending

    assert run_chunk(first.pk).state == SKIPPED
    run_chunk_task(job.pk, first.pk)  # the redelivered message: sends nothing
    assert [c.status for c in _chunks(job)] == [JobChunk.DONE] + [JobChunk.PENDING] * len(others)

    execute(job.pk)  # the job's start, when the reaper's message arrives
    job.refresh_from_db()
    assert job.status == Job.SUCCEEDED and job.metrics == uninterrupted.metrics
    assert snapshot() == expected


def test_reap_leaves_jobs_with_a_fresh_heartbeat_alone(platform):
    job = _claimed(platform)
    assert reap_stale_jobs(stale_after=60) == []
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    assert [j.pk for j in reap_stale_jobs(stale_after=60)] == [job.pk]
    assert reap_stale_jobs(stale_after=0) == []  # only running jobs are reaped


def test_reap_and_resume_puts_a_stale_job_straight_back_in_the_queue_and_runs_it(platform):
    """What a Celery worker's reaper does: the job goes from running to queued in one step, never
    showing as failed to a client that polls it, and runs to the end of an uninterrupted run."""
    uninterrupted = run("rank_rollup", platform, chunk_size=2)
    expected = snapshot()
    revert_job(uninterrupted)
    job = _claimed(platform, chunk_size=2)
    first, second, _ = _chunks(job)
    assert run_chunk(first.pk).state == DONE
    JobChunk.objects.filter(pk=second.pk).update(status=JobChunk.RUNNING)  # its worker died in it
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    submitted = []

    def submit(reaped: Job) -> None:  # the state a client sees once the reap committed
        submitted.append(Job.objects.values_list("status", "error", "finished_at").get(pk=reaped.pk))
        execute(reaped.pk)

    [reaped] = reap_and_resume(submit)
    assert reaped.pk == job.pk and submitted == [(Job.QUEUED, "", None)]
    job.refresh_from_db()
    assert job.status == Job.SUCCEEDED and job.metrics == uninterrupted.metrics
    assert snapshot() == expected
    assert not job.logs.filter(level="error").exists()
    messages = list(job.logs.values_list("message", flat=True))
    assert any(m.startswith("stale: no heartbeat since") for m in messages)
    assert any(m.startswith(f"resumed automatically (1 of {MAX_AUTOMATIC_RESUMES})") for m in messages)


@contextlib.contextmanager
def _broker(url: str):
    """Celery's app sends to ``url`` meanwhile; its connection pools are dropped on both sides (as
    Celery does after a fork), or they would keep the broker they were made for."""
    from taxopost.celery import app

    def drop_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    old = app.conf.broker_url
    drop_pools()
    app.conf.broker_url = url
    try:
        yield
    finally:
        app.conf.broker_url = old
        drop_pools()


@pytest.mark.django_db(transaction=True)  # the job's message is sent when its transaction commits
def test_a_broker_that_refuses_the_resumed_jobs_leaves_none_of_them_queued(platform, settings):
    """A worker's reaper with the broker away: each requeued job is tried, and each is failed with
    the reason and resumable; none is left queued with no message sent (later reaps see only
    running jobs)."""
    from taxopost.postprocessing.running.celery_jobs import CeleryExecutor

    nowhere = "redis://127.0.0.1:1/0"  # a port nothing listens on
    settings.BROKER_URL = nowhere
    jobs = [create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {"thresholds": {"genus": g}}) for g in (0.5, 0.4)]
    stale = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(status=Job.RUNNING, started_at=stale, heartbeat_at=stale)
    with _broker(nowhere), pytest.raises(ServiceUnavailable, match="refused"):
        reap_and_resume(CeleryExecutor().submit)
    for job in jobs:
        job.refresh_from_db()
        assert job.status == Job.FAILED and "not sent to the workers" in job.error
    assert reap_and_resume(lambda job: pytest.fail("nothing left to send")) == []
    resumed = resume_job(jobs[1], executor=EmbeddedExecutor())
    assert resumed.status == Job.SUCCEEDED


def test_a_job_whose_planning_fails_is_failed_and_resumable_not_left_queued(platform, monkeypatch):
    from taxopost.postprocessing.tasks.rank_rollup import RankRollupTask

    original = RankRollupTask.plan_rows

    def broken(self):
        raise RuntimeError("the planner broke")

    monkeypatch.setattr(RankRollupTask, "plan_rows", broken)
    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    EmbeddedExecutor().submit(job)
    assert job.status == Job.FAILED and "RuntimeError: the planner broke" in job.error
    monkeypatch.setattr(RankRollupTask, "plan_rows", original)
    assert resume_job(job, executor=EmbeddedExecutor()).status == Job.SUCCEEDED


def test_reap_and_resume_leaves_a_job_failed_once_its_workers_died_too_often(platform):
    job = _claimed(platform, chunk_size=2)
    for n in range(MAX_AUTOMATIC_RESUMES):
        job.log(f"resumed automatically ({n + 1} of {MAX_AUTOMATIC_RESUMES}): its worker stopped")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    submitted = []
    [reaped] = reap_and_resume(submitted.append)
    assert reaped.status == Job.FAILED and not submitted
    assert job.logs.filter(level="error", message__startswith="not resumed automatically").exists()


def test_a_person_resuming_a_job_its_workers_gave_up_on_gives_it_its_automatic_resumes_again(platform):
    job = _claimed(platform, chunk_size=2)
    for n in range(MAX_AUTOMATIC_RESUMES):
        job.log(f"resumed automatically ({n + 1} of {MAX_AUTOMATIC_RESUMES}): its worker stopped")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    [reaped] = reap_and_resume(lambda job: None)
    assert reaped.status == Job.FAILED

    reopen_job(reaped)  # a person looked at it and resumed it; a worker takes it and dies again
    assert claim(job.pk, "celery").job is not None
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    submitted = []
    [reaped] = reap_and_resume(submitted.append)
    assert reaped.status == Job.QUEUED and [j.pk for j in submitted] == [job.pk]
    assert job.logs.last().message.startswith(f"resumed automatically (1 of {MAX_AUTOMATIC_RESUMES})")


def test_cancel_between_chunks_ends_the_job_at_once_and_keeps_finished_chunks(platform):
    job = _claimed(platform, chunk_size=2)
    first = _chunks(job)[0]
    run_chunk(first.pk)
    canceled = cancel_job(job)
    assert canceled.status == Job.CANCELED
    assert canceled.metrics["changed"] == Classification.objects.filter(job=job).count() > 0
    assert run_chunk(_chunks(job)[1].pk).state == SKIPPED
    assert recompute_determinations(Occurrence.objects.values_list("id", flat=True)) == 0  # consistent
    assert "canceled at a chunk boundary: 1 of 3 chunks done and kept" in job.logs.last().message


def test_cancel_waits_for_the_chunk_in_flight(platform):
    job = _claimed(platform, chunk_size=2)
    task = build_task(job)
    task.prepare()
    process = task.process

    def process_then_cancel(ids):  # the cancel arrives while the chunk is being computed
        assert cancel_job(Job.objects.get(pk=job.pk)).status == Job.RUNNING
        return process(ids)

    task.process = process_then_cancel
    outcome = run_chunk(_chunks(job)[0].pk, task=task)
    assert outcome.state == DONE and outcome.cancel_requested
    assert settle_cancel(job.pk)
    job.refresh_from_db()
    assert job.status == Job.CANCELED and job.metrics["changed"] == Classification.objects.filter(job=job).count()


def test_a_chunk_in_flight_writes_nothing_once_its_job_was_reaped_and_reverted(platform):
    """A worker that was only slow: its job is reaped and reverted while it computes a chunk."""
    before = snapshot()
    job = _claimed(platform, chunk_size=100)
    task = build_task(job)
    task.prepare()
    process = task.process

    def process_while_reaped_and_reverted(ids):
        assert [j.pk for j in reap_stale_jobs(stale_after=0)] == [job.pk]
        assert revert_job(Job.objects.get(pk=job.pk))["removed"] == 0
        return process(ids)

    task.process = process_while_reaped_and_reverted
    assert run_chunk(_chunks(job)[0].pk, task=task).state == SKIPPED
    assert snapshot() == before and not Classification.objects.filter(job=job).exists()
    job.refresh_from_db()
    assert job.status == Job.FAILED and job.reverted_at is not None


def test_an_input_another_writer_demotes_while_its_chunk_is_computed_is_left_to_it(platform):
    """The chunk's write checks its inputs again (in the statement that demotes them): one that
    lost its place as the current answer meanwhile is counted superseded, and nothing derives from it."""
    job = _claimed(platform, chunk_size=100)
    task = build_task(job)
    task.prepare()
    process = task.process
    taken = []

    def process_while_another_writer_answers(ids):
        result = process(ids)
        source = result.changes[0].source_id
        above = Classification.objects.get(pk=source)  # another writer's answer on top of it
        above.pk, above.applied_to_id = None, source
        above.save()
        Classification.objects.filter(pk=source).update(terminal=False)
        taken.append((source, above.pk, len(result.changes)))
        return result

    task.process = process_while_another_writer_answers
    chunk = _chunks(job)[0]
    assert run_chunk(chunk.pk, task=task).state == DONE
    [(source, above, computed)] = taken
    chunk.refresh_from_db()
    assert chunk.metrics["superseded"] == 1 and chunk.metrics["changed"] == computed - 1
    assert not Classification.objects.filter(applied_to_id=source, job=job).exists()
    assert Classification.objects.get(pk=above).terminal and not Classification.objects.get(pk=source).terminal
    assert Classification.objects.filter(job=job).count() == computed - 1


def test_cancel_with_revert_restores_the_state_before_the_job(platform):
    before = snapshot()
    job = _claimed(platform, chunk_size=2)
    run_chunk(_chunks(job)[0].pk)
    assert snapshot() != before
    canceled = cancel_job(job, revert=True)
    assert canceled.status == Job.CANCELED and canceled.reverted_at is not None
    assert snapshot() == before


def test_resume_after_cancel_completes_the_job(platform):
    uninterrupted = run("rank_rollup", platform, chunk_size=2)
    expected = snapshot()
    revert_job(uninterrupted)
    job = _claimed(platform, chunk_size=2)
    run_chunk(_chunks(job)[0].pk)
    cancel_job(job)
    resumed = resume_job(Job.objects.get(pk=job.pk), EmbeddedExecutor())
    assert resumed.status == Job.SUCCEEDED and snapshot() == expected


def test_resume_is_refused_once_a_later_run_of_the_task_replaced_what_the_job_wrote(platform):
    """Resumed, it would replace the later run's output on the chunks left: neither config whole,
    and each job's revert refused for the other's replacement."""
    uninterrupted = run("rank_rollup", platform, chunk_size=2)
    expected = snapshot()
    revert_job(uninterrupted)
    job = _claimed(platform, chunk_size=2)
    run_chunk(_chunks(job)[0].pk)
    cancel_job(job)
    later = run("rank_rollup", platform, {"mode": "distribution"})
    assert Classification.objects.filter(job=job, replaced_by=later).exists()
    stopped = Job.objects.get(pk=job.pk)
    assert not can_resume(stopped)
    with pytest.raises(InputError, match=f"job={job.pk}: job {later.pk} ran its task again over what it wrote"):
        resume_job(stopped)
    assert Job.objects.get(pk=job.pk).status == Job.CANCELED  # nothing reopened
    revert_job(later)
    resumed = resume_job(Job.objects.get(pk=job.pk), EmbeddedExecutor())
    assert resumed.status == Job.SUCCEEDED and snapshot() == expected


def test_resume_is_refused_where_there_is_nothing_to_resume(platform):
    done = run("rank_rollup", platform)
    with pytest.raises(InputError, match=f"job={done.pk}: already succeeded"):
        resume_job(done)
    revert_job(done)
    with pytest.raises(InputError, match="was reverted"):
        resume_job(Job.objects.get(pk=done.pk))
    running = _claimed(platform)
    with pytest.raises(InputError, match="is running; if its workers died, `taxopost jobs reap`"):
        resume_job(running)


def test_a_job_waits_while_another_job_of_its_project_runs(platform):
    first = _claimed(platform)
    second = create_job("class_masking", Job.CAPTURE_SET, platform.pk, {"taxa_list": "regional"})
    for _ in range(2):
        assert claim(second.pk, "embedded").waiting_for == first.pk
    second.refresh_from_db()
    assert second.status == Job.CREATED and second.stage == f"waiting for job {first.pk}"
    assert JobLog.objects.filter(job=second, message__startswith="waiting for job").count() == 1  # logged once
    preview = create_job("class_masking", Job.CAPTURE_SET, platform.pk, {"taxa_list": "regional"}, dry_run=True)
    assert claim(preview.pk, "embedded").fresh  # a dry run writes nothing: it does not wait


def test_overlapping_jobs_run_one_after_the_other(platform):
    """Two jobs on the same detections, the second submitted while the first runs."""
    sequential = [run("class_masking", platform, {"taxa_list": "regional"}), run("rank_rollup", platform)]
    expected = snapshot()
    for job in reversed(sequential):
        revert_job(job)

    masking = _claimed(platform, "class_masking", {"taxa_list": "regional"}, chunk_size=2)
    rollup = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    run_chunk(_chunks(masking)[0].pk)
    assert claim(rollup.pk, "embedded").waiting_for == masking.pk  # it would have planned on half the masking
    submit_job(Job.objects.get(pk=masking.pk), EmbeddedExecutor())  # a duplicate start does nothing
    for chunk in _chunks(masking)[1:]:
        run_chunk(chunk.pk)
    assert finish(masking.pk).status == Job.SUCCEEDED
    submit_job(rollup, EmbeddedExecutor())
    assert Job.objects.get(pk=rollup.pk).status == Job.SUCCEEDED
    assert snapshot() == expected


def test_a_chunk_started_too_often_fails_its_job(platform):
    job = _claimed(platform, chunk_size=2)
    chunk = _chunks(job)[0]
    JobChunk.objects.filter(pk=chunk.pk).update(attempts=MAX_CHUNK_STARTS, worker="host:9")
    with pytest.raises(JobError, match=f"chunk 0 was started {MAX_CHUNK_STARTS} times without finishing"):
        run_chunk(chunk.pk)
    Job.objects.filter(pk=job.pk).update(status=Job.QUEUED)
    failed = execute(job.pk)
    assert failed.status == Job.FAILED and failed.error.startswith("chunk 0 was started")


def test_bulk_statements_split_at_the_parameter_limit(db):
    """9,000 log rows of 4 fields pass 36,000 parameters: more than one SQLite statement takes."""
    job = Job.objects.create(task="rank_rollup", scope_type=Job.CAPTURE_SET, scope_id=1)
    now = timezone.now()
    rows = [(job.pk, "info", str(i), now) for i in range(9000)]
    assert insert_rows(JobLog, ["job", "level", "message", "created_at"], rows) == 9000
    messages = JobLog.objects.filter(job=job).values_list("message", flat=True)
    assert sorted(messages) == sorted(str(i) for i in range(9000))
    fields = ["job", "index", "ids", "size", "status", "attempts", "metrics", "worker"]
    insert_rows(JobChunk, fields, [(job.pk, i, [], 0, JobChunk.PENDING, 0, {}, "") for i in range(17_000)])
    chunks = list(JobChunk.objects.filter(job=job).values_list("id", "index"))
    assert update_rows(JobChunk, ["attempts"], [(pk, index % 7) for pk, index in chunks]) == 17_000
    assert sorted(JobChunk.objects.filter(job=job).values_list("attempts", flat=True)) == sorted(
        index % 7 for _, index in chunks
    )


def test_any_of_selects_what_in_selects_on_keys_and_foreign_keys(db):
    from django.core.exceptions import FieldError

    job = Job.objects.create(task="rank_rollup", scope_type=Job.CAPTURE_SET, scope_id=1)
    other = Job.objects.create(task="rank_rollup", scope_type=Job.CAPTURE_SET, scope_id=2)
    now = timezone.now()
    insert_rows(JobLog, ["job", "level", "message", "created_at"], [(job.pk, "info", str(i), now) for i in range(50)])
    ids = sorted(JobLog.objects.values_list("id", flat=True))
    wanted = [ids[3], ids[3], ids[7], None, ids[40], max(ids) + 1000]  # a duplicate, a NULL, a missing key
    for lookup, value in (("id", wanted), ("job", [other.pk, None, job.pk]), ("job_id", [job]), ("pk", {ids[0]})):
        expected = set(JobLog.objects.filter(**{f"{lookup}__in": value}).values_list("id", flat=True))
        assert set(JobLog.objects.filter(**{f"{lookup}__any_of": value}).values_list("id", flat=True)) == expected
    assert list(JobLog.objects.filter(id__any_of=[])) == []
    assert list(JobLog.objects.filter(id__any_of=[None])) == []
    assert JobLog.objects.exclude(id__any_of=ids[:10]).count() == 40
    subquery = JobLog.objects.filter(message="3").values("id")
    assert list(JobLog.objects.filter(id__any_of=subquery).values_list("message", flat=True)) == ["3"]
    assert JobLog.objects.filter(id__any_of=ids[:10]).update(level="warning") == 10
    with pytest.raises(FieldError, match="any_of"):  # integer keys only: a text column keeps IN
        JobLog.objects.filter(level__any_of=["info"])


def test_any_of_is_one_array_parameter_on_postgresql(db):
    """The statement's text is the same for 2 keys or 2,000: nothing to build or parse per key."""
    from django.db import connection

    if connection.vendor != "postgresql":
        sql = str(JobLog.objects.filter(id__any_of=[1, 2]).query)
        assert " IN (1, 2)" in sql
        return
    # keys out of a bigint's range equal no row, as with IN (the array's cast would fail on them)
    job = Job.objects.create(task="rank_rollup", scope_type=Job.CAPTURE_SET, scope_id=1)
    log = JobLog.objects.create(job=job, level="info", message="kept")
    keys = [2**63, log.pk, -(2**63) - 1, 2**70]
    assert list(JobLog.objects.filter(id__in=keys)) == list(JobLog.objects.filter(id__any_of=keys)) == [log]
    assert list(JobLog.objects.filter(id__any_of=keys[:1])) == []
    texts = set()
    for n in (2, 2000):
        sql, params = JobLog.objects.filter(id__any_of=list(range(n))).query.sql_with_params()
        texts.add(sql)
        assert "= ANY(%s::bigint[])" in sql and params == (list(range(n)),)
    assert len(texts) == 1


def test_an_interrupted_embedded_run_fails_its_job_so_that_it_can_be_resumed(platform, monkeypatch):
    from taxopost.postprocessing.running import embedded

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {}, chunk_size=2)

    def interrupted(chunk_id, *, task=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "run_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute(job.pk)
    job.refresh_from_db()
    assert job.status == Job.FAILED and job.error.startswith("interrupted")
    monkeypatch.undo()
    assert resume_job(job, EmbeddedExecutor()).status == Job.SUCCEEDED


def test_a_run_interrupted_while_it_waits_for_its_project_fails_its_job_so_that_it_can_be_resumed(
    platform, monkeypatch
):
    """Ctrl-C while `taxopost run` waits for another job of the project: the job was left queued."""
    from types import SimpleNamespace

    from taxopost.postprocessing.running import embedded

    first = _claimed(platform)
    second = create_job("class_masking", Job.CAPTURE_SET, platform.pk, {"taxa_list": "regional"})
    waits = []

    def interrupted_sleep(seconds):
        waits.append(seconds)
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "time", SimpleNamespace(sleep=interrupted_sleep))
    with pytest.raises(KeyboardInterrupt):
        execute(second.pk)
    monkeypatch.undo()
    second.refresh_from_db()
    assert len(waits) == 1 and second.stage == f"waiting for job {first.pk}"
    assert second.status == Job.FAILED and second.error.startswith("interrupted")
    assert Job.objects.get(pk=first.pk).status == Job.RUNNING  # the job it waited for is not touched
    for chunk in _chunks(first):
        run_chunk(chunk.pk)
    assert finish(first.pk).status == Job.SUCCEEDED
    assert resume_job(second, EmbeddedExecutor()).status == Job.SUCCEEDED


def test_run_config_must_be_a_json_object(platform, capsys):
    from taxopost.cli import main

    cases = (("{bad", "not valid JSON"), ("[1]", "must be a JSON object"), ("null", "must be a JSON object"))
    for text, message in cases:
        assert main(["run", "rank_rollup", "--capture-set", platform.name, "--config", text]) == 2
        assert message in capsys.readouterr().err
    assert not Job.objects.exists()


def test_run_options_come_from_the_task_configs(platform, capsys):
    """Each generated option sets its field; --set sets any field; --config is overridden by both."""
    from taxopost.cli import main

    args = ["run", "rank_rollup", "--capture-set", platform.name, "--dry-run"]
    assert main([*args, "--threshold", "species=0.9", "--threshold", "genus=0.7", "--order", "species, genus"]) == 0
    assert main([*args, "--config", '{"mode": "lineage"}', "--set", "mode=distribution"]) == 0
    assert (
        main(["run", "small_size_filter", "--capture-set", platform.name, "--dry-run", "--size-threshold", "0.1"]) == 0
    )
    first, second, third = Job.objects.order_by("pk")
    assert first.config["thresholds"] == {"species": 0.9, "genus": 0.7} and first.config["order"] == [
        "species",
        "genus",
    ]
    assert second.config["mode"] == "distribution"
    assert third.task == "small_size_filter" and third.config == {"size_threshold": 0.1}


def test_run_refuses_an_option_of_another_task_naming_its_task(platform, capsys):
    from taxopost.cli import main

    assert main(["run", "small_size_filter", "--capture-set", platform.name, "--threshold", "species=0.9"]) == 2
    assert (
        "--threshold" in (error := capsys.readouterr().err)
        and "is an option of rank_rollup, not of small_size_filter" in error
    )
    assert main(["run", "rank_rollup", "--capture-set", platform.name, "--set", "oops"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["run", "no_such_task", "--capture-set", platform.name]) == 2
    assert re.search(r"task=.no_such_task.: unknown task; known tasks: .*rank_rollup", capsys.readouterr().err)
    assert not Job.objects.exists()


def test_a_scope_holding_another_projects_images_is_refused_before_the_job_exists(platform):
    """Linked in the admin before its forms refused it: a job would write to the other project."""
    other = Project.objects.create(name="elsewhere")
    image = SourceImage.objects.create(project=other, path="elsewhere/1.jpg")
    platform.images.add(image)
    with pytest.raises(InputError, match=r"1 of its images belong to another project \(image \d+, 'elsewhere/1.jpg', "
                                         r"is in 'elsewhere'\)"):  # fmt: skip
        create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    occurrence = Occurrence.objects.filter(project=platform.project).first()
    Detection.objects.create(source_image=image, occurrence=occurrence, bbox=[0, 0, 10, 10])
    with pytest.raises(InputError, match=r"1 of its detections' images belong to another project"):
        create_job("rank_rollup", Job.OCCURRENCE, occurrence.pk, {})
    assert not Job.objects.exists()

    platform.images.remove(image)
    assert create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {}).project_id == platform.project_id
