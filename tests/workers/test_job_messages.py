"""Job messages that cannot go astray: a broker that refuses them, retries, and deployments sharing a Redis.

All with real processes: ``taxopost run``, the API served by gunicorn, ``taxopost worker``, a
broker URL nothing listens on (``redis://127.0.0.1:1/0``), and a second deployment on its own
database with the same Redis.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import time

import pytest
import redis

from taxopost.jobs.identity import database_identity, job_queue
from taxopost.jobs.models import Job
from tests.loadtools import gunicorn

from .conftest import BROKER_URL, capture_set, database_url, project_state, taxopost, wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

NOWHERE = "redis://127.0.0.1:1/0"  # a port nothing listens on: the broker refuses every connection


def _post(port: int, token: str, body: dict, key: str | None = None) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    connection.request("POST", "/api/v1/jobs/", body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read()), dict(response.getheaders())


def _server(tmp_path, broker: str):
    """The API served by gunicorn on the test database, sending jobs to ``broker``."""
    return gunicorn(database_url(), workers=1, threads=2, data_dir=str(tmp_path), env={"TAXOPOST_BROKER_URL": broker})


def _token(django_user_model) -> str:
    from taxopost.access.tokens import create_token

    user = django_user_model.objects.create_superuser("client", "client@example.org", "a-client-password")
    return create_token(user)[1]


def test_taxopost_run_with_the_broker_down_prints_one_line_and_the_job_resumes_later(workers, survey, tmp_path):
    survey(tmp_path, "down")
    survey(tmp_path, "reference")
    taxopost(tmp_path, "run", "rank_rollup", "--capture-set", "reference", TAXOPOST_BROKER_URL="")  # embedded

    refused = taxopost(tmp_path, "run", "rank_rollup", "--capture-set", "down", TAXOPOST_BROKER_URL=NOWHERE)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
    job = Job.objects.get(scope_id=capture_set("down").pk)
    assert lines[0] == f"taxopost: error: {job.error}"
    assert job.status == Job.FAILED and "redis://127.0.0.1:1/0 refused it" in job.error
    assert f"taxopost jobs resume {job.pk}" in job.error

    worker = workers.start()
    resumed = taxopost(tmp_path, "jobs", "resume", str(job.pk))
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.SUCCEEDED, 60, "the resumed job", worker)
    assert project_state("down") == project_state("reference")


def test_reap_and_resume_with_the_broker_down_leaves_no_reaped_job_queued(workers, survey, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from taxopost.postprocessing.running.operations import create_job

    stale = []
    for project in ("first", "second"):
        survey(tmp_path, project)
        job = create_job("rank_rollup", Job.CAPTURE_SET, capture_set(project).pk, {})
        Job.objects.filter(pk=job.pk).update(status=Job.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
        stale.append(job.pk)

    refused = taxopost(tmp_path, "jobs", "reap", "--resume", TAXOPOST_BROKER_URL=NOWHERE)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr
    for pk in stale:  # the job refused and the one after it: both failed, resumable, none queued for ever
        job = Job.objects.get(pk=pk)
        assert job.status == Job.FAILED, (pk, job.status, refused.stderr)
        assert f"taxopost jobs resume {pk}" in job.error

    worker = workers.start()
    for pk in stale:
        assert taxopost(tmp_path, "jobs", "resume", str(pk)).returncode == 0
    for pk in stale:
        wait_for(lambda pk=pk: Job.objects.get(pk=pk).status == Job.SUCCEEDED, 60, f"job {pk}", worker)


def test_the_api_answers_503_and_a_retry_with_the_idempotency_key_returns_and_runs_the_same_job(
    workers, survey, tmp_path, django_user_model
):
    survey(tmp_path, "api")
    token = _token(django_user_model)
    body = {"task": "rank_rollup", "scope": {"type": "capture_set", "id": capture_set("api").pk}, "config": {}}

    with _server(tmp_path, NOWHERE) as port:
        status, refused, headers = _post(port, token, body, key="retry-1")
    assert status == 503, refused
    assert "refused it" in refused["detail"] and headers.get("Retry-After")
    job = Job.objects.get()
    assert refused["job"]["id"] == job.pk and refused["job"]["status"] == Job.FAILED
    assert "resume" in refused["job"]["operations"]

    worker = workers.start()
    with _server(tmp_path, BROKER_URL) as port:
        status, retried, headers = _post(port, token, body, key="retry-1")
        assert status == 200 and retried["id"] == job.pk, retried
        assert headers.get("Idempotent-Replayed") == "true"
        wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.SUCCEEDED, 60, "the job sent again", worker)
        status, again, _ = _post(port, token, body, key="retry-1")  # a late duplicate: the same job, not re-run
        assert status == 200 and again["id"] == job.pk and again["status"] == Job.SUCCEEDED
        other = {**body, "config": {"mode": "distribution"}}
        status, conflict, _ = _post(port, token, other, key="retry-1")
        assert status == 422 and f"job {job.pk}" in conflict["detail"], conflict
        status, invalid, _ = _post(port, token, body, key="x" * 300)
        assert status == 400 and "Idempotency-Key" in invalid, invalid
    assert Job.objects.count() == 1


def _other_deployment(tmp_path) -> dict[str, str]:
    """The environment of a second deployment: its own (embedded) database, the same Redis."""
    folder = tmp_path / "other-deployment"
    folder.mkdir()
    env = {"DATABASE_URL": "", "TAXOPOST_DATA_DIR": str(folder)}
    created = taxopost(tmp_path, "jobs", "list", **env)  # creates and migrates its database
    assert created.returncode == 0, created.stderr
    return env


def _other_database(env: dict[str, str], sql: str) -> list[tuple]:
    with sqlite3.connect(f"{env['TAXOPOST_DATA_DIR']}/taxopost.sqlite3") as db:
        return db.execute(sql).fetchall()


def test_two_deployments_sharing_a_redis_never_take_each_others_jobs(workers, survey, tmp_path):
    from taxopost.postprocessing.running.celery_jobs import CeleryExecutor, start_job
    from taxopost.postprocessing.running.operations import create_job

    survey(tmp_path, "ours")
    other = _other_deployment(tmp_path)
    theirs = workers.start(**other)
    their_identity = wait_for(lambda: _other_database(other, "SELECT key FROM jobs_databaseidentity"), 30,
                              "the other deployment's identity", theirs)[0][0]  # fmt: skip
    ours = database_identity()
    assert their_identity.replace("-", "") != ours

    job = create_job("rank_rollup", Job.CAPTURE_SET, capture_set("ours").pk, {})
    CeleryExecutor().submit(job)
    # An operator's mistake: one more start message of our job put on the other deployment's queue.
    start_job.apply_async(args=[job.pk], kwargs={"database": ours}, queue=job_queue(their_identity.replace("-", "")))
    broker = redis.Redis.from_url(BROKER_URL)
    wait_for(lambda: "belongs to database" in theirs.log.read_text(), 30, "the other worker to pass it on", theirs)
    time.sleep(1)
    assert Job.objects.get(pk=job.pk).status == Job.QUEUED  # nothing of ours ran over there
    assert broker.llen(job_queue(ours)) == 2  # ours, and the misrouted one sent back to our queue
    assert _other_database(other, "SELECT count(*) FROM jobs_job") == [(0,)]
    assert _other_database(other, "SELECT count(*) FROM observations_classification") == [(0,)]

    mine = workers.start()
    wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.SUCCEEDED, 60, "our worker to run our job", mine)
    assert Job.objects.get(pk=job.pk).metrics["changed"] > 0


def test_a_start_message_taken_twice_keeps_the_job_to_its_chunks_in_flight(services, survey, tmp_path, settings):
    """A start redelivered (its worker died after the claim) or sent twice: the copy sends only
    what the in-flight limit leaves room for, so the queue never holds twice a job's share."""
    from taxopost.postprocessing.running.celery_jobs import start_job
    from taxopost.postprocessing.running.operations import create_job

    survey(tmp_path, "twice")
    settings.JOB_CHUNKS_IN_FLIGHT = 4
    job = create_job("rank_rollup", Job.CAPTURE_SET, capture_set("twice").pk, {}, chunk_size=100)
    broker = redis.Redis.from_url(BROKER_URL)
    queue = job_queue(database_identity())

    def queued() -> int:
        return job.chunks.filter(status="queued").count()

    start_job(job.pk)  # the step as a worker runs it, here: its messages go to the real broker
    assert Job.objects.get(pk=job.pk).status == Job.RUNNING
    assert queued() == broker.llen(queue) == 4
    start_job(job.pk)  # the copy
    assert queued() == broker.llen(queue) == 4
