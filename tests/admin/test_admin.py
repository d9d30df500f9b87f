"""The admin: every model's pages, fixed-cost changelists, the task actions, job pages, provenance, review."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from taxopost.jobs.models import Job
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.models import Classification, Detection, Identification, Occurrence
from taxopost.taxa.models import Taxon
from tests.admin.review_html import changed_count, selected_job
from tests.api.data import load_many
from tests.platform.helpers import run

pytestmark = pytest.mark.django_db

MODELS = [model for model in admin.site._registry if model._meta.app_label in ("taxa", "ml", "observations", "jobs")]


def test_every_model_of_the_platform_has_an_admin():
    names = {model.__name__ for model in MODELS}
    assert names == {"Taxon", "TaxaList", "CategoryMap", "Algorithm", "Project", "SourceImage", "CaptureSet",
                     "Occurrence", "Detection", "Classification", "Identification", "DeterminationChange", "Job",
                     "JobLog"}  # fmt: skip


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_search_and_change_pages_load(admin_client, platform, model):
    run("rank_rollup", platform)
    occurrence = Occurrence.objects.get(key="occ-vanessa")
    Identification.objects.create(occurrence=occurrence, taxon=occurrence.determination, created_at=timezone.now())
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client.get(changelist).status_code == 200
    if admin.site._registry[model].search_fields:
        assert admin_client.get(changelist, {"q": "a"}).status_code == 200
    obj = model.objects.order_by("pk").last()
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    assert admin_client.get(change).status_code == 200


@pytest.mark.parametrize("model", ["occurrence", "detection"])
def test_capture_set_filter_lists_what_the_capture_set_holds(admin_client, platform, tmp_path, model):
    from taxopost.observations.models import CaptureSet, Detection

    other = load_many(tmp_path)  # a second capture set: the filter must leave its rows out
    changelist = reverse(f"admin:observations_{model}_changelist")
    for capture_set in (platform, other):
        detections = CaptureSet.detections_of(capture_set)
        expected = (
            set(detections.values_list("occurrence_id", flat=True))
            if model == "occurrence"
            else set(Detection.objects.filter(id__in=detections.values("id")).values_list("id", flat=True))
        )
        response = admin_client.get(changelist, {"capture_set": capture_set.pk})
        assert response.status_code == 200
        assert {row.pk for row in response.context["cl"].result_list} == expected != set()


def test_predictions_and_jobs_are_not_edited_by_hand(admin_client, platform):
    run("rank_rollup", platform)
    for name in ("observations_classification", "observations_determinationchange", "jobs_job", "jobs_joblog"):
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403
    job = Job.objects.get()
    assert admin_client.post(reverse("admin:jobs_job_delete", args=[job.pk])).status_code == 403


# -- changelists cost a fixed number of queries ---------------------------------------------------

CHANGELISTS = ["occurrence", "classification", "detection", "captureset", "determinationchange", "job", "taxon",
               "algorithm", "identification", "sourceimage", "taxalist"]  # fmt: skip


@pytest.fixture
def many(platform, tmp_path):
    from taxopost.observations.models import CaptureSet
    from taxopost.postprocessing.running.revert import revert_job
    from taxopost.taxa.operations import import_taxa_list

    capture_set = load_many(tmp_path)
    run("rank_rollup", capture_set)
    species = list(Taxon.objects.filter(rank="species").values_list("id", flat=True))
    for i in range(8):
        revert_job(run("rank_rollup", platform, {"thresholds": {"species": 0.95 - i / 100, "genus": 0.3}}))
        CaptureSet.objects.create(project=capture_set.project, name=f"extra-{i}")
        import_taxa_list(f"list-{i}", species[: i + 1])
    for occurrence in Occurrence.objects.all()[:8]:
        Identification.objects.create(occurrence=occurrence, taxon_id=species[0], who="x", created_at=timezone.now())
    return capture_set


def _changelist_queries(client, url: str, model_admin, per_page: int, monkeypatch) -> tuple[int, int]:
    monkeypatch.setattr(model_admin, "list_per_page", per_page)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


@pytest.mark.parametrize("name", CHANGELISTS)
def test_a_changelist_costs_the_same_queries_for_5_or_50_rows(admin_client, many, monkeypatch, name):
    model = next(m for m in MODELS if m._meta.model_name == name)
    url = reverse(f"admin:{model._meta.app_label}_{name}_changelist")
    small, n_small = _changelist_queries(admin_client, url, admin.site._registry[model], 5, monkeypatch)
    large, n_large = _changelist_queries(admin_client, url, admin.site._registry[model], 50, monkeypatch)
    assert n_small == 5 < n_large
    assert small == large, f"{name}: {small} queries for 5 rows, {large} for {n_large}"


# -- the "Run <task>" actions ----------------------------------------------------------------------


def _action(client, changelist: str, action: str, ids: list[int], **extra):
    return client.post(changelist, {"action": action, ACTION_CHECKBOX_NAME: ids, **extra}, follow=False)


CAPTURE_SETS = "/admin/observations/captureset/"
OCCURRENCES = "/admin/observations/occurrence/"


def test_one_run_action_per_registered_task(admin_client, platform):
    response = admin_client.get(CAPTURE_SETS)
    choices = dict(response.context["action_form"].fields["action"].choices)
    assert choices["run_rank_rollup"] == "Run rank roll-up"
    assert choices["run_class_masking"] == "Run class masking"
    assert choices["run_small_size_filter"] == "Run small-size filter"
    occurrence_choices = dict(admin_client.get(OCCURRENCES).context["action_form"].fields["action"].choices)
    assert {"run_rank_rollup", "run_class_masking", "run_small_size_filter"} <= set(occurrence_choices)


def test_rollup_action_shows_a_form_generated_from_the_schema(admin_client, platform):
    response = _action(admin_client, CAPTURE_SETS, "run_rank_rollup", [platform.pk], index=0)
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields) == ["thresholds", "order", "mode"]
    assert form.fields["thresholds"].ranks == ["species", "genus", "subfamily", "family", "order"]  # the taxonomy's own
    assert [c[0] for c in form.fields["mode"].choices] == ["lineage", "distribution"]
    html = response.content.decode()
    assert 'name="thresholds_0"' in html and 'value="0.8"' in html
    assert "(task <code>rank_rollup</code>, version 1)" in html
    assert not Job.objects.exists()


def _rollup_post(platform, form, **fields):
    ranks = form.fields["thresholds"].ranks
    data = {f"thresholds_{i}": "" for i in range(len(ranks))}
    for rank, value in fields.pop("thresholds", {}).items():
        data[f"thresholds_{ranks.index(rank)}"] = value
    return {"action": "run_rank_rollup", ACTION_CHECKBOX_NAME: [platform.pk], "mode": "lineage", **data, **fields}


def test_preview_shows_the_dry_run_summary_and_writes_nothing(admin_client, platform):
    form = _action(admin_client, CAPTURE_SETS, "run_rank_rollup", [platform.pk], index=0).context["form"]
    post = _rollup_post(platform, form, thresholds={"species": "0.9", "genus": "0.7"}, _preview="Preview")
    response = admin_client.post(CAPTURE_SETS, post)
    assert response.status_code == 200
    [(scope, preview)] = response.context["previews"]
    assert scope == platform and preview["metrics"]["changed"] == 4
    assert preview["metrics"]["transitions"] == {"species -> genus": 4}
    assert preview["job"].dry_run and preview["job"].config["thresholds"] == {"species": 0.9, "genus": 0.7}
    assert "would change" in response.content.decode()
    assert not Classification.objects.filter(job__isnull=False).exists()


def test_preview_of_a_rerun_says_what_it_replaces_and_stack_is_a_job_option(admin_client, platform, sync_jobs):
    first = run("rank_rollup", platform)
    form = _action(admin_client, CAPTURE_SETS, "run_rank_rollup", [platform.pk], index=0).context["form"]
    strict = {"species": "0.95", "genus": "0.9", "family": "0.5"}
    response = admin_client.post(CAPTURE_SETS, _rollup_post(platform, form, thresholds=strict, _preview="Preview"))
    [(_, preview)] = response.context["previews"]
    note = f"5 outputs of job {first.pk} (species 0.8, genus 0.6, family 0.4; lineage) are replaced"
    assert preview["replaces"] == [note] and note in response.content.decode()
    job_page = admin_client.get(reverse("admin:jobs_job_change", args=[preview["job"].pk])).content.decode()
    assert f"<li>{note}</li>" in job_page
    assert preview["metrics"]["determinations_changed"] > 0
    assert 'name="stack"' in response.content.decode()
    admin_client.post(CAPTURE_SETS, _rollup_post(platform, form, thresholds=strict, stack="on", _run="Run"))
    stacked = Job.objects.filter(dry_run=False).exclude(pk=first.pk).get()
    assert stacked.stack and stacked.status == Job.SUCCEEDED and not stacked.metrics["replaced"]


def test_run_creates_one_job_per_row_and_links_to_it(admin_client, platform, tmp_path, sync_jobs):
    other = load_many(tmp_path)
    form = _action(admin_client, CAPTURE_SETS, "run_rank_rollup", [platform.pk], index=0).context["form"]
    post = _rollup_post(platform, form, thresholds={"species": "0.9", "genus": "0.7"}, _run="Run")
    post[ACTION_CHECKBOX_NAME] = [platform.pk, other.pk]
    response = admin_client.post(CAPTURE_SETS, post, follow=True)
    jobs = list(Job.objects.filter(created_by__isnull=False).order_by("scope_id"))
    assert [job.scope_id for job in jobs] == [platform.pk, other.pk]
    assert all(job.config["thresholds"] == {"species": 0.9, "genus": 0.7} for job in jobs)
    assert all(job.status == Job.SUCCEEDED for job in jobs)
    assert response.redirect_chain[-1][0].endswith(f"?id__in={jobs[0].pk},{jobs[1].pk}")
    message = str(next(iter(response.context["messages"])))
    assert f'href="/admin/jobs/job/{jobs[0].pk}/change/"' in message


def test_run_of_one_row_goes_to_its_job_page(admin_client, platform):
    form = _action(admin_client, CAPTURE_SETS, "run_rank_rollup", [platform.pk], index=0).context["form"]
    response = admin_client.post(CAPTURE_SETS, _rollup_post(platform, form, thresholds={"species": "0.8"}, _run="1"))
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/jobs/job/{job.pk}/change/"
    assert job.status == Job.QUEUED  # the background thread starts when the request's transaction commits


def test_validation_errors_are_shown_on_the_fields(admin_client, platform):
    form = _action(admin_client, CAPTURE_SETS, "run_rank_rollup", [platform.pk], index=0).context["form"]
    post = _rollup_post(platform, form, thresholds={"species": "0.9", "genus": "1.5"}, _run="Run")
    response = admin_client.post(CAPTURE_SETS, post)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["thresholds"] == ["thresholds.genus: must be in (0, 1] (got 1.5)"]
    post = _rollup_post(platform, form, thresholds={"species": "0.9"}, order="genus, species", _run="Run")
    errors = admin_client.post(CAPTURE_SETS, post).context["form"].errors
    assert "order" in errors and "fine to coarse" in errors["order"][0]
    post = _rollup_post(platform, form, _run="Run")  # every rank left blank
    errors = admin_client.post(CAPTURE_SETS, post).context["form"].errors
    assert "at least one rank threshold" in errors["thresholds"][0]
    assert not Job.objects.exists()


def test_every_problem_of_the_form_is_shown_at_once(admin_client, platform):
    """A field the form refuses (not a number) and one pydantic refuses (the order) show together."""
    form = _action(admin_client, CAPTURE_SETS, "run_rank_rollup", [platform.pk], index=0).context["form"]
    post = _rollup_post(platform, form, thresholds={"species": "high"}, order="family, species", _run="Run")
    errors = admin_client.post(CAPTURE_SETS, post).context["form"].errors
    assert set(errors) == {"thresholds", "order"}
    assert len(errors["thresholds"]) == 1 and "number" in errors["thresholds"][0]
    assert "fine to coarse" in errors["order"][0]
    assert not Job.objects.exists()


def test_select_all_across_pages_is_refused(admin_client, platform):
    response = _action(admin_client, CAPTURE_SETS, "run_rank_rollup", [platform.pk], index=0, select_across=1)
    assert response.status_code == 302
    messages = [str(m) for m in admin_client.get(CAPTURE_SETS).context["messages"]]
    assert any("refused" in m for m in messages)
    assert not Job.objects.exists()


def test_masking_on_an_occurrence_offers_the_algorithms_present_on_it(admin_client, platform):
    occurrence = Occurrence.objects.get(key="occ-catocala")
    form = _action(admin_client, OCCURRENCES, "run_class_masking", [occurrence.pk], index=0).context["form"]
    assert [c[0] for c in form.fields["taxa_list"].choices] == ["regional"]
    assert [c[0] for c in form.fields["source_algorithm"].choices] == ["", "moths-v1"]
    run("class_masking", platform, {"taxa_list": "regional"})  # its current answer is now the masked one
    form = _action(admin_client, OCCURRENCES, "run_class_masking", [occurrence.pk], index=0).context["form"]
    keys = [c[0] for c in form.fields["source_algorithm"].choices]
    assert len(keys) == 2 and keys[1].startswith("class_masking-")


def test_masking_error_from_the_task_lands_on_the_form(admin_client, platform):
    from taxopost.core.taxonomy import Taxonomy, TaxonRecord
    from taxopost.taxa.operations import import_taxa_list, import_taxonomy

    import_taxonomy(Taxonomy([TaxonRecord("Hymenoptera", "order")]))  # no class of the model below it
    import_taxa_list("elsewhere", Taxon.objects.filter(name="Hymenoptera").values_list("id", flat=True))
    post = {"action": "run_class_masking", ACTION_CHECKBOX_NAME: [platform.pk], "taxa_list": "elsewhere",
            "source_algorithm": "moths-v1", "reweight": "on", "_run": "Run"}  # fmt: skip
    response = admin_client.post(CAPTURE_SETS, post)
    assert response.status_code == 200 and "taxa_list" in response.context["form"].errors
    assert not Job.objects.exists()


def test_a_viewer_gets_no_run_action(client, platform, django_user_model):
    from taxopost.access.models import Membership

    user = django_user_model.objects.create_user("viewer", password="pw-12345-abc", is_staff=True)
    Membership.objects.create(user=user, project=platform.project, role="viewer")
    client.force_login(user)
    response = client.get(CAPTURE_SETS)
    assert [row.pk for row in response.context["cl"].result_list] == [platform.pk]
    action_form = response.context["action_form"]
    choices = dict(action_form.fields["action"].choices) if action_form else {}
    assert not any(name.startswith("run_") for name in choices)


# -- job pages and operations ----------------------------------------------------------------------


def test_job_page_shows_status_progress_stages_metrics_log(admin_client, platform):
    job = run("rank_rollup", platform)
    html = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert 'class="job-status status-succeeded"' in html
    assert re.search(r'<progress class="job-progress" max="1" value="1.0000"', html)
    assert "preparing – 100%" in html and "processing – 100%" in html
    assert "<th>changed</th><td>5</td>" in html and 'class="metrics-transitions"' in html  # tables, not JSON
    assert 'class="metrics-top-taxa"' in html and "{&#x27;" not in html and "&quot;changed&quot;" not in html
    assert "done: 5 changed of 6" in html
    assert 'class="button job-revert"' in html and "job-cancel" not in html
    assert f"/review/capture-sets/{platform.pk}/?job={job.pk}" in html


def test_a_running_job_page_polls_the_api(admin_client, platform):
    from taxopost.postprocessing.running.operations import create_job

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    html = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert f'data-url="/api/v1/jobs/{job.pk}/"' in html  # read by the static job_progress.js (CSP: no inline)
    assert 'src="/static/taxopost/job_progress.js"' in html
    assert 'class="button job-cancel"' in html
    script = admin_client.get("/static/taxopost/job_progress.js")
    assert script.status_code == 200 and "dataset.url" in b"".join(script.streaming_content).decode()


def test_cancel_action(admin_client, platform):
    from taxopost.postprocessing.running.operations import create_job

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    response = _action(admin_client, "/admin/jobs/job/", "cancel_jobs", [job.pk], index=0,
                       _next=f"/admin/jobs/job/{job.pk}/change/")  # fmt: skip
    assert response.status_code == 302 and response["Location"] == f"/admin/jobs/job/{job.pk}/change/"
    job.refresh_from_db()
    assert job.status == Job.CANCELED


def test_revert_asks_for_confirmation_then_reverts(admin_client, platform):
    job = run("rank_rollup", platform)
    response = _action(admin_client, "/admin/jobs/job/", "revert_jobs", [job.pk], index=0)
    assert response.status_code == 200 and "Yes, revert" in response.content.decode()
    job.refresh_from_db()
    assert job.reverted_at is None
    response = _action(admin_client, "/admin/jobs/job/", "revert_jobs", [job.pk], _confirm="yes")
    job.refresh_from_db()
    assert job.reverted_at is not None and not Classification.objects.filter(job=job).exists()
    response = _action(admin_client, "/admin/jobs/job/", "revert_jobs", [job.pk], _confirm="yes")
    messages = [str(m) for m in admin_client.get("/admin/jobs/job/").context["messages"]]
    assert any("cannot revert" in m for m in messages)


def test_no_resume_without_a_resume_operation():
    from taxopost.postprocessing.running import operations
    from taxopost.postprocessing.running.job_admin import JobAdmin

    names = {getattr(action, "__name__", "") for action in JobAdmin.actions}
    assert ("resume_jobs" in names) == hasattr(operations, "resume_job")


# -- provenance ------------------------------------------------------------------------------------


def test_classification_page_shows_its_chain_with_algorithm_and_config(admin_client, platform):
    run("class_masking", platform, {"taxa_list": "regional"})
    job = run("rank_rollup", platform)
    rolled = Classification.objects.filter(job=job, applied_to__job__isnull=False).select_related("applied_to").first()
    html = admin_client.get(reverse("admin:observations_classification_change", args=[rolled.pk])).content.decode()
    chain = html[html.index('class="provenance-chain"') :]
    chain = chain[: chain.index("</table>")]
    assert chain.count("<tr") == 4  # header + roll-up, masking, model output
    assert "rank roll-up" in chain and "class masking" in chain and "model output" in chain
    assert "thresholds: species=0.8, genus=0.6, family=0.4" in chain and "taxa_list: regional" in chain
    assert "moths-v1" in chain and "{&#x27;" not in chain
    assert f"job {job.pk}" in chain


def test_occurrence_page_shows_determination_history_and_the_job_of_each(admin_client, platform):
    job = run("rank_rollup", platform)
    occurrence = Occurrence.objects.get(key="occ-vanessa")
    html = admin_client.get(reverse("admin:observations_occurrence_change", args=[occurrence.pk])).content.decode()
    history = html[html.index('class="determination-history"') :]
    assert f"job {job.pk} (rank_rollup)" in history and "Vanessa (genus)" in history
    assert "Vanessa atalanta (species)" in history and "import" in history
    assert 'class="provenance-chain"' in html
    assert re.search(r"detection \d+: <a [^>]+>Vanessa \(genus\) 0.800</a> by rank_rollup-", html)


def test_a_new_occurrence_takes_no_determination_from_its_form(admin_client, platform):
    """A determination is computed, never typed: a classification (of any project) posted with a
    new occurrence is ignored."""
    classification = Classification.objects.first()
    response = admin_client.post(reverse("admin:observations_occurrence_add"), {
        "project": platform.project_id, "key": "probe", "determined_by": classification.pk,
        "determination": classification.taxon_id,
    })  # fmt: skip
    assert response.status_code == 302
    probe = Occurrence.objects.get(key="probe")
    assert probe.determined_by_id is None and probe.determination_id is None


def test_saving_an_identification_in_the_admin_recomputes_the_determination(admin_client, platform):
    occurrence = Occurrence.objects.get(key="occ-vanessa")
    taxon = Taxon.objects.get(name="Vanessa cardui")
    response = admin_client.post(reverse("admin:observations_identification_add"), {
        "occurrence": occurrence.pk, "taxon": taxon.pk, "who": "expert", "comment": "",
        "created_at_0": "2024-08-01", "created_at_1": "10:00:00",
    })  # fmt: skip
    assert response.status_code == 302
    occurrence.refresh_from_db()
    assert occurrence.determination == taxon and occurrence.determined_by_identification_id


def test_moving_an_identification_in_the_admin_recomputes_the_occurrence_it_left(admin_client, platform):
    vanessa, noctua = (Occurrence.objects.get(key=key) for key in ("occ-vanessa", "occ-noctua"))
    machine = vanessa.determination
    identification = Identification.objects.create(
        occurrence=vanessa, taxon=Taxon.objects.get(name="Vanessa cardui"), who="expert", created_at=timezone.now()
    )
    recompute_determinations([vanessa.pk])
    response = admin_client.post(reverse("admin:observations_identification_change", args=[identification.pk]), {
        "occurrence": noctua.pk, "taxon": identification.taxon_id, "who": "expert", "comment": "",
        "created_at_0": "2024-08-01", "created_at_1": "10:00:00",
    })  # fmt: skip
    assert response.status_code == 302
    vanessa.refresh_from_db()
    noctua.refresh_from_db()
    assert noctua.determined_by_identification_id == identification.pk
    assert vanessa.determined_by_identification_id is None and vanessa.determination == machine


def test_moving_or_deleting_a_detection_in_the_admin_recomputes_both_occurrences(admin_client, platform):
    vanessa, noctua = (Occurrence.objects.get(key=key) for key in ("occ-vanessa", "occ-noctua"))
    detection = Detection.objects.get(occurrence=vanessa)
    response = admin_client.post(reverse("admin:observations_detection_change", args=[detection.pk]), {
        "source_image": detection.source_image_id, "occurrence": noctua.pk, "bbox": json.dumps(detection.bbox),
        "relative_area": "", "key": detection.key, "confidence": "",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    vanessa.refresh_from_db()
    noctua.refresh_from_db()
    assert vanessa.determination_id is None and vanessa.determined_by_id is None  # it has no detection left
    assert _up_to_date(noctua)
    noctua_detection = Detection.objects.exclude(pk=detection.pk).get(occurrence=noctua)
    response = admin_client.post(
        reverse("admin:observations_detection_delete", args=[noctua_detection.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    noctua.refresh_from_db()
    assert noctua.determined_by.detection_id == detection.pk and _up_to_date(noctua)


def _up_to_date(occurrence: Occurrence) -> bool:
    """Whether recomputing the occurrence's determination changes nothing."""
    before = (occurrence.determination_id, occurrence.determined_by_id, occurrence.determined_by_identification_id)
    recompute_determinations([occurrence.pk])
    occurrence.refresh_from_db()
    return before == (
        occurrence.determination_id,
        occurrence.determined_by_id,
        occurrence.determined_by_identification_id,
    )


# -- the review page -------------------------------------------------------------------------------


def test_review_page_needs_a_login(client, platform):
    response = client.get(reverse("review:capture-set", args=[platform.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/review/")


def test_review_page_before_and_after_with_corrected_and_regressed(admin_client, platform):
    now = timezone.now()
    for key, name in (("occ-vanessa", "Vanessa cardui"), ("occ-noctua", "Catocala ilia")):
        occurrence = Occurrence.objects.get(key=key)
        taxon = Taxon.objects.get(name=name)
        Identification.objects.create(occurrence=occurrence, taxon=taxon, who="e", created_at=now)
    job = run("rank_rollup", platform)
    response = admin_client.get(reverse("review:capture-set", args=[platform.pk]), {"job": job.pk})
    review = response.context["review"]
    assert review.before == {"species": 5} and review.after == {"genus": 4, "family": 1}
    assert review.ranks == ["species", "genus", "family"]
    # occ-vanessa: atalanta (wrong) -> Vanessa (an ancestor of cardui: correct); occ-noctua stays wrong
    assert (review.identified, review.corrected, review.regressed, review.still_wrong) == (2, 1, 0, 1)
    html = response.content.decode()
    assert "<svg" in html and 'class="rank-chart"' in html
    assert html.count('class="occurrence-link"') == 5
    assert "Vanessa atalanta" in html and "&rarr;" in html
    assert 'id="corrected-count">1<' in html and 'id="regressed-count">0<' in html
    evaluation = reverse("evaluation:capture-set", args=[platform.pk])
    assert f'href="{evaluation}"' in html and "Full evaluation" in html


def test_evaluation_page_reports_the_capture_set_against_its_identifications(admin_client, client, platform):
    url = reverse("evaluation:capture-set", args=[platform.pk])
    assert client.get(url).status_code == 302  # a login first
    response = admin_client.get(url)
    assert response.status_code == 400 and "no identified occurrence" in response.content.decode()
    occurrence = Occurrence.objects.get(key="occ-vanessa")
    taxon = Taxon.objects.get(name="Vanessa cardui")
    Identification.objects.create(occurrence=occurrence, taxon=taxon, who="e", created_at=timezone.now())
    html = admin_client.get(url).content.decode()
    assert "roll-up (lineage)" in html and "roll-up (distribution)" in html
    assert html.count("data:image/png;base64") >= 3


def test_review_page_defaults_to_the_latest_job_and_says_when_none(admin_client, platform):
    response = admin_client.get(reverse("review:capture-set", args=[platform.pk]))
    assert selected_job(response) is None and "No post-processing job" in response.content.decode()
    job = run("rank_rollup", platform)
    assert selected_job(admin_client.get(reverse("review:capture-set", args=[platform.pk]))) == job.pk
    assert admin_client.get(reverse("review:capture-set", args=[9999])).status_code == 404


def test_review_page_query_count_does_not_grow_with_the_changes(admin_client, many, monkeypatch):
    from taxopost.review import views

    job = Job.objects.filter(scope_id=many.pk, task="rank_rollup", reverted_at=None).latest("created_at")
    url = reverse("review:capture-set", args=[many.pk])
    counts = []
    for rows in (5, 50):
        monkeypatch.setattr(views, "ROWS_PER_PAGE", rows)
        cache.clear()  # each request computes the page's summary (the cache has its own test)
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url, {"job": job.pk})
        shown = response.content.decode().count('class="occurrence-link"')
        assert shown == min(rows, changed_count(response))
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_model_output_page_lists_its_top_classes(admin_client, platform):
    source = Classification.objects.get(detection__occurrence__key="occ-vanessa", applied_to__isnull=True)
    html = admin_client.get(reverse("admin:observations_classification_change", args=[source.pk])).content.decode()
    assert "Vanessa atalanta 0.500, Vanessa cardui 0.200" in html
    assert html.count("<tr") >= 2 and "model output" in html
