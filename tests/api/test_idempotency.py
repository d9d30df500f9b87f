"""An ``Idempotency-Key`` makes a client's retry of ``POST /api/v1/jobs/`` return the job it made."""

from __future__ import annotations

import pytest

from taxopost.jobs.models import Job

API = "/api/v1/jobs/"


@pytest.fixture
def body(platform) -> dict:
    return {"task": "rank_rollup", "scope": {"type": "capture_set", "id": platform.pk}, "config": {}}


def test_a_retry_with_the_same_key_returns_the_same_job(admin_client_api, sync_jobs, body):
    first = admin_client_api.post(API, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201, first.content
    again = admin_client_api.post(API, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1
    # The default config spelt out is the same request once validated.
    explicit = {**body, "config": {"mode": "lineage"}}
    assert admin_client_api.post(API, explicit, format="json", HTTP_IDEMPOTENCY_KEY="k-1").status_code == 200


def test_another_key_or_no_key_makes_a_new_job(admin_client_api, sync_jobs, body):
    for key in ("k-1", "k-2"):
        admin_client_api.post(API, {**body, "dry_run": True}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    admin_client_api.post(API, {**body, "dry_run": True}, format="json")
    admin_client_api.post(API, {**body, "dry_run": True}, format="json")
    assert Job.objects.count() == 4


def test_a_key_reused_for_another_request_is_422_and_makes_nothing(admin_client_api, sync_jobs, body):
    first = admin_client_api.post(API, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = admin_client_api.post(API, {**body, "dry_run": True}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422
    assert f"job {first.json()['id']}" in other.json()["detail"]
    assert Job.objects.count() == 1


def test_keys_belong_to_their_user(admin_client_api, sync_jobs, body, django_user_model):
    first = admin_client_api.post(API, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    someone = django_user_model.objects.create_superuser("someone", "s@example.org", "a-test-password-2")
    admin_client_api.force_login(someone)
    second = admin_client_api.post(API, {**body, "dry_run": True}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_malformed_key_is_400_naming_the_header(admin_client_api, sync_jobs, body, key):
    response = admin_client_api.post(API, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()
    assert len(response.content) < 500  # the key is quoted by a bounded prefix only
    assert not Job.objects.exists()
