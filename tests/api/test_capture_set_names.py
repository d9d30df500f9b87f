"""The API takes a capture set by name wherever it takes its id: filters, a job's scope, the job list."""

from __future__ import annotations

import pytest

from taxopost.jobs.models import Job
from taxopost.observations.models import CaptureSet

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def july(platform):
    return CaptureSet.objects.create(project=platform.project, name="Station 2 · July 2024")


@pytest.mark.parametrize("resource", ["occurrences", "classifications"])
def test_filters_take_the_name_as_typed_or_the_id(reader, platform, july, resource):
    by_id = reader.get(f"{API}/{resource}/", {"capture_set": platform.pk}).json()
    assert by_id["count"] > 0
    for typed in ("station-1", "Station 1", "STATION_1"):
        assert reader.get(f"{API}/{resource}/", {"capture_set": typed}).json() == by_id, typed
    assert reader.get(f"{API}/{resource}/", {"capture_set": "station 2 july 2024"}).json()["count"] == 0
    assert reader.get(f"{API}/{resource}/", {"capture_set": 999_999}).json()["count"] == 0  # an id: no rows


@pytest.mark.parametrize("resource", ["occurrences", "classifications", "jobs"])
def test_a_near_miss_in_a_filter_is_a_400_with_did_you_mean(reader, platform, july, resource):
    response = reader.get(f"{API}/{resource}/", {"capture_set": "Station 2 · Jully 2024"})
    assert response.status_code == 400
    assert response.json() == {
        "capture_set": [
            "no capture set has this name; did you mean 'Station 2 · July 2024'? (got 'Station 2 · Jully 2024')"
        ]
    }


@pytest.mark.parametrize("typed", ["100%", "%s %(x)s", "50 % of it"])
def test_a_name_with_a_percent_sign_is_a_400_not_a_server_error(reader, platform, typed):
    response = reader.get(f"{API}/jobs/", {"capture_set": typed})
    assert response.status_code == 400
    assert response.json()["capture_set"][0].endswith(f"(got {typed!r})")


def test_a_job_scope_takes_a_capture_set_name(admin_client_api, platform, july, sync_jobs):
    body = {"task": "small_size_filter", "scope": {"type": "capture_set", "name": "station 1"}, "dry_run": True}
    created = admin_client_api.post(f"{API}/jobs/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["scope"] == {"type": "capture_set", "id": platform.pk}
    assert Job.objects.get().scope_id == platform.pk


def test_a_bad_scope_name_is_reported_with_the_config_errors(admin_client_api, platform, july):
    body = {
        "task": "rank_rollup",
        "scope": {"type": "capture_set", "name": "Station 2 · Jul 2024"},
        "config": {"thresholds": {"species": 1.5, "genus": 2}, "mode": "sideways"},
    }
    response = admin_client_api.post(f"{API}/jobs/", body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert errors["scope"] == {
        "name": ["no capture set has this name; did you mean 'Station 2 · July 2024'? (got 'Station 2 · Jul 2024')"]
    }
    assert set(errors["config"]) == {"thresholds.species", "thresholds.genus", "mode"}
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "scope",
    [
        {"type": "capture_set"},
        {"type": "capture_set", "id": 1, "name": "station-1"},
        {"type": "occurrence", "name": "station-1"},
    ],
)
def test_a_scope_gives_its_id_or_its_name_once(admin_client_api, platform, scope):
    response = admin_client_api.post(f"{API}/jobs/", {"task": "small_size_filter", "scope": scope}, format="json")
    assert response.status_code == 400 and set(response.json()["scope"]) == {"id"}
    assert not Job.objects.exists()


def test_the_job_list_filters_by_capture_set_name(admin_client_api, platform, july, sync_jobs):
    for scope in ({"type": "capture_set", "id": platform.pk}, {"type": "capture_set", "id": july.pk}):
        body = {"task": "small_size_filter", "scope": scope, "dry_run": True}
        assert admin_client_api.post(f"{API}/jobs/", body, format="json").status_code == 201
    on_july = admin_client_api.get(f"{API}/jobs/", {"capture_set": "station 2 · july 2024"}).json()
    assert [job["scope"]["id"] for job in on_july["results"]] == [july.pk]
    by_id = admin_client_api.get(f"{API}/jobs/", {"capture_set": platform.pk}).json()
    assert [job["scope"]["id"] for job in by_id["results"]] == [platform.pk]
