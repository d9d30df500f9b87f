"""The admin asks for a confirmation before a masking run its taxa list's coverage warns about."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from taxopost.jobs.models import Job
from taxopost.taxa.models import Taxon
from taxopost.taxa.operations import import_taxa_list

pytestmark = pytest.mark.django_db
CAPTURE_SETS = "/admin/observations/captureset/"


def masking_post(platform, taxa_list: str, **extra) -> dict:
    post = {"action": "run_class_masking", ACTION_CHECKBOX_NAME: [platform.pk], "taxa_list": taxa_list,
            "source_algorithm": "moths-v1", "reweight": "on"}  # fmt: skip
    return {**post, **extra}


@pytest.fixture
def narrow(platform):
    import_taxa_list("narrow", Taxon.objects.filter(name="Danaus").values_list("id", flat=True))
    return platform


def test_a_run_with_a_low_coverage_list_waits_for_a_confirmation(admin_client, narrow):
    response = admin_client.post(CAPTURE_SETS, masking_post(narrow, "narrow", _run="Run"))
    assert response.status_code == 200 and not Job.objects.exists()
    [(scope, warning)] = response.context["warnings"]
    assert scope == narrow and warning["kept_classes"] == 1
    html = response.content.decode()
    assert 'name="confirm_warnings"' in html and "keeps 1 of 8 classes (12.5%)" in html
    # the form keeps what was entered, so ticking the box and pressing Run again is enough
    assert response.context["form"].data["taxa_list"] == "narrow"


def test_the_confirmed_run_starts(admin_client, narrow):
    response = admin_client.post(CAPTURE_SETS, masking_post(narrow, "narrow", _run="Run", confirm_warnings="1"))
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/jobs/job/{job.pk}/change/"
    assert job.result["warnings"][0]["kept_classes"] == 1


def test_a_list_that_keeps_enough_runs_without_a_question(admin_client, platform):
    response = admin_client.post(CAPTURE_SETS, masking_post(platform, "regional", _run="Run"))
    assert response.status_code == 302 and Job.objects.count() == 1


def test_the_preview_shows_the_warning_next_to_its_summary(admin_client, narrow):
    response = admin_client.post(CAPTURE_SETS, masking_post(narrow, "narrow", _preview="Preview"))
    [(_, preview)] = response.context["previews"]
    assert preview["warnings"][0]["kept_classes"] == 1
    html = response.content.decode()
    assert 'class="messagelist preview-warnings"' in html and "keeps 1 of 8 classes" in html
    assert not Job.objects.filter(dry_run=False).exists()


def test_the_form_offers_the_winner_changes_only_checkbox(admin_client, platform):
    response = admin_client.post(CAPTURE_SETS, {"action": "run_class_masking", ACTION_CHECKBOX_NAME: [platform.pk]})
    form = response.context["form"]
    assert "winner_changes_only" in form.fields and form.fields["winner_changes_only"].initial is False
    admin_client.post(CAPTURE_SETS, masking_post(platform, "regional", winner_changes_only="on", _run="Run"))
    assert Job.objects.get().config["winner_changes_only"] is True
