"""A refused write names the role it needs, whichever check refuses it (the door or the row)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from taxopost.access.models import Membership
from taxopost.access.roles import DATA_MANAGER, VIEWER
from taxopost.jobs.models import Job
from taxopost.observations.models import Project
from tests.platform.helpers import run

API = "/api/v1"
NEEDS_DATA_MANAGER = "Running jobs on this project needs the data manager role on it."
NO_ROLE = "This needs a role on a project (docs/access.md)."


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _job_body(platform) -> dict:
    return {"task": "rank_rollup", "scope": {"type": "capture_set", "id": platform.pk}, "config": {}}


@pytest.fixture
def viewer_and_manager_elsewhere(django_user_model, platform) -> APIClient:
    """Viewer of the platform's project, data manager of another one."""
    user = django_user_model.objects.create_user("two-roles", password="x")
    Membership.objects.create(user=user, project=platform.project, role=VIEWER)
    Membership.objects.create(user=user, project=Project.objects.create(name="elsewhere"), role=DATA_MANAGER)
    return _client(user)


@pytest.mark.parametrize("operation", ["create", "revert", "cancel", "resume"])
def test_a_viewer_is_told_that_jobs_need_the_data_manager_role(reader, platform, operation):
    """The door refused a viewer with "needs a role on a project", though they hold one."""
    job = run("rank_rollup", platform)
    url = f"{API}/jobs/" if operation == "create" else f"{API}/jobs/{job.pk}/{operation}/"
    response = reader.post(url, _job_body(platform) if operation == "create" else {}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": NEEDS_DATA_MANAGER}
    assert Job.objects.count() == 1 and Job.objects.get().reverted_at is None


@pytest.mark.parametrize("operation", ["create", "revert", "cancel", "resume"])
def test_a_data_manager_of_another_project_is_told_the_same(viewer_and_manager_elsewhere, platform, operation):
    """The row's check refused a job operation with "needs a role on a project"; creation said it right."""
    job = run("rank_rollup", platform)
    url = f"{API}/jobs/" if operation == "create" else f"{API}/jobs/{job.pk}/{operation}/"
    body = _job_body(platform) if operation == "create" else {}
    response = viewer_and_manager_elsewhere.post(url, body, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": NEEDS_DATA_MANAGER}
    assert Job.objects.count() == 1 and Job.objects.get().reverted_at is None


def test_a_user_without_any_role_is_still_told_so(django_user_model, platform):
    client = _client(django_user_model.objects.create_user("no-role", password="x"))
    for url in (f"{API}/jobs/", f"{API}/capture-sets/"):
        response = client.post(url, _job_body(platform), format="json") if url.endswith("jobs/") else client.get(url)
        assert response.status_code == 403
        assert response.json() == {"detail": NO_ROLE}
