"""A job's config errors through the API: the value quoted, a boolean no integer, every key named."""

from __future__ import annotations

import pytest

from taxopost.jobs.models import Job

API = "/api/v1"


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        ({"method": "median"}, {"method": ["Input should be 'mean' or 'geometric' (got 'median')"]}),
        ({"min_detections": True}, {"min_detections": ["Input should be a valid integer (got True)"]}),
        ({"min_detections": 1}, {"min_detections": ["Input should be greater than or equal to 2 (got 1)"]}),
        ({"": 1}, {"''": ["Extra inputs are not permitted"]}),
    ],
)
def test_a_consensus_config_error_names_the_field_and_the_value(admin_client_api, platform, config, errors):
    """The API used to answer without "(got 'median')", a range error for ``true`` and ``{"": 1}`` under "config"."""
    body = {"task": "occurrence_consensus", "scope": {"type": "capture_set", "id": platform.pk}, "config": config}
    response = admin_client_api.post(f"{API}/jobs/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"config": errors}
    assert not Job.objects.exists()


def test_an_integral_number_is_still_a_count(admin_client_api, platform):
    body = {"task": "occurrence_consensus", "scope": {"type": "capture_set", "id": platform.pk}, "dry_run": True}
    for value in (3, 3.0):
        response = admin_client_api.post(f"{API}/jobs/", {**body, "config": {"min_detections": value}}, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["config"]["min_detections"] == 3
