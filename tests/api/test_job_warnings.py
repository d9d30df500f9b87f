"""The API says what a masking run will do: its warnings, with the numbers, in the job it creates."""

from __future__ import annotations

import pytest

from taxopost.jobs.models import Job
from taxopost.taxa.models import Taxon
from taxopost.taxa.operations import import_taxa_list

pytestmark = pytest.mark.django_db
API = "/api/v1"


def masking_body(capture_set, taxa_list: str, **overrides) -> dict:
    body = {"task": "class_masking", "scope": {"type": "capture_set", "id": capture_set.pk}}
    return {**body, "config": {"taxa_list": taxa_list}, **overrides}


def test_creating_a_masking_job_answers_with_its_coverage_warning(clients, platform, sync_jobs):
    import_taxa_list("narrow", Taxon.objects.filter(name="Danaus").values_list("id", flat=True))
    response = clients["staff"].post(f"{API}/jobs/", masking_body(platform, "narrow", dry_run=True), format="json")
    assert response.status_code == 201, response.content
    [warning] = response.json()["warnings"]
    assert (warning["kept_classes"], warning["n_classes"], warning["rows"]) == (1, 8, 6)
    assert 0 < warning["kept_mass"] < 0.5 and warning["min_class_share"] == 0.25
    assert "keeps 1 of 8 classes (12.5%)" in warning["message"]
    job = Job.objects.get(pk=response.json()["id"])
    detail = clients["staff"].get(f"{API}/jobs/{job.pk}/").json()
    assert detail["warnings"] == [warning] and detail["result"]["preview"]["changed"] == 6
    assert any(line["level"] == "warning" for line in detail["log"])


def test_a_list_that_keeps_enough_answers_without_warnings(clients, platform, sync_jobs):
    response = clients["staff"].post(f"{API}/jobs/", masking_body(platform, "regional", dry_run=True), format="json")
    assert response.status_code == 201 and response.json()["warnings"] == []
    listed = clients["staff"].get(f"{API}/jobs/").json()["results"][0]
    assert listed["warnings"] == []


def test_the_option_to_write_only_winner_changes_is_in_the_task_schema(clients, platform):
    tasks = clients["staff"].get(f"{API}/tasks/").json()
    masking = next(task for task in tasks if task["key"] == "class_masking")
    field = masking["config_schema"]["properties"]["winner_changes_only"]
    assert field["default"] is False and "Antenna's #1377" in field["description"]
