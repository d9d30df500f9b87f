"""The REST API: every endpoint, the permission matrix on every write, validation errors, query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from taxopost.jobs.models import Job
from taxopost.observations.models import Classification, Occurrence
from taxopost.taxa.models import TaxaList, Taxon
from tests.platform.helpers import run

from .data import load_many

pytestmark = pytest.mark.django_db

API = "/api/v1"
LISTS = ["taxa", "taxa-lists", "capture-sets", "occurrences", "classifications", "algorithms", "jobs", "tasks"]


def rollup_body(capture_set, **overrides) -> dict:
    body = {"task": "rank_rollup", "scope": {"type": "capture_set", "id": capture_set.pk}, "config": {}}
    return {**body, **overrides}


# -- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", LISTS)
def test_anonymous_reads_nothing(anonymous, platform, resource):
    response = anonymous.get(f"{API}/{resource}/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("resource", LISTS)
def test_a_logged_in_user_reads_every_list(reader, platform, resource):
    response = reader.get(f"{API}/{resource}/")
    assert response.status_code == 200, response.content


def test_taxa_filter_by_rank_and_name(reader, platform):
    body = reader.get(f"{API}/taxa/", {"rank": "genus"}).json()
    assert {t["name"] for t in body["results"]} == {"Vanessa", "Danaus", "Catocala", "Noctua"}
    body = reader.get(f"{API}/taxa/", {"name": "catocala"}).json()
    assert body["count"] == 3
    genus = Taxon.objects.get(name="Vanessa")
    detail = reader.get(f"{API}/taxa/{genus.pk}/").json()
    assert detail["parent"] == genus.parent_id and detail["rank"] == "genus"
    assert reader.get(f"{API}/taxa/", {"parent": genus.pk}).json()["count"] == 3


def test_taxa_lists_carry_their_taxa(reader, platform):
    [regional] = reader.get(f"{API}/taxa-lists/").json()["results"]
    assert regional["name"] == "regional" and regional["n_taxa"] == 3
    assert sorted(regional["taxa"]) == sorted(TaxaList.objects.get(name="regional").taxa.values_list("id", flat=True))
    assert reader.get(f"{API}/taxa-lists/{regional['id']}/").status_code == 200


def test_capture_sets(reader, platform):
    [station] = reader.get(f"{API}/capture-sets/").json()["results"]
    assert station == {**station, "name": "station-1", "n_images": 3, "project": station["project"]}
    assert reader.get(f"{API}/capture-sets/{platform.pk}/").json()["id"] == platform.pk


def test_occurrence_shows_determination_and_the_chain_that_made_it(reader, platform):
    job = run("rank_rollup", platform)
    occurrence = Occurrence.objects.get(key="occ-vanessa")
    body = reader.get(f"{API}/occurrences/{occurrence.pk}/").json()
    assert body["determination"]["name"] == "Vanessa" and body["determination"]["rank"] == "genus"
    assert body["decided_by"] == "classification"
    assert body["classification"]["algorithm"].startswith("rank_rollup-")
    steps = body["provenance"]
    assert [s["task"] for s in steps] == ["rank_rollup", "classification"]
    assert steps[0]["job"] == job.pk
    assert steps[0]["config"]["thresholds"] == {"species": 0.8, "genus": 0.6, "family": 0.4}
    assert steps[1]["taxon"] == "Vanessa atalanta" and steps[1]["config"] == {}


def test_occurrence_filters(reader, platform):
    run("rank_rollup", platform)
    genus = reader.get(f"{API}/occurrences/", {"rank": "genus", "capture_set": platform.pk}).json()
    assert {o["key"] for o in genus["results"]} == {"occ-vanessa", "occ-catocala", "occ-tiny", "occ-noctua"}
    vanessa = Taxon.objects.get(name="Vanessa")
    assert reader.get(f"{API}/occurrences/", {"taxon": vanessa.pk}).json()["count"] == 2
    assert reader.get(f"{API}/occurrences/", {"algorithm": "moths-v1"}).json()["count"] == 1
    assert reader.get(f"{API}/occurrences/", {"capture_set": 999999}).json()["count"] == 0
    assert reader.get(f"{API}/occurrences/", {"identified": True}).json()["count"] == 0


def test_classification_filters_and_applied_to(reader, platform):
    job = run("rank_rollup", platform)
    terminal = reader.get(f"{API}/classifications/", {"terminal": True, "capture_set": platform.pk}).json()
    assert terminal["count"] == 6
    rolled = reader.get(f"{API}/classifications/", {"job": job.pk, "rank": "genus"}).json()["results"]
    assert {c["taxon"]["name"] for c in rolled} == {"Vanessa", "Catocala", "Noctua"}
    one = rolled[0]
    source = Classification.objects.get(pk=one["applied_to"])
    assert one["algorithm"]["task_type"] == "rank_rollup" and source.algorithm.key == "moths-v1"
    assert [s["classification"] for s in one["provenance"]] == [one["id"], source.pk]
    assert reader.get(f"{API}/classifications/", {"algorithm": "moths-v1", "terminal": False}).json()["count"] == 5
    assert reader.get(f"{API}/classifications/", {"task": "rank_rollup"}).json()["count"] == 5
    vanessa = Taxon.objects.get(name="Vanessa")
    assert reader.get(f"{API}/classifications/", {"taxon": vanessa.pk}).json()["count"] == 2
    assert reader.get(f"{API}/classifications/{one['id']}/").json()["provenance"] == one["provenance"]


@pytest.mark.parametrize(
    ("resource", "param"), [("classifications", "terminal"), ("occurrences", "identified"), ("jobs", "dry_run")]
)
def test_a_yes_no_filter_reads_1_and_0_and_refuses_other_values(admin_client_api, platform, resource, param):
    """Django's own boolean filter ignored ``1``, ``0`` or ``yes``: the whole list came back as a 200."""
    run("rank_rollup", platform)
    url = f"{API}/{resource}/"
    for word, same in (("1", "true"), ("0", "False")):
        assert (
            admin_client_api.get(url, {param: word}).json()["count"]
            == admin_client_api.get(url, {param: same}).json()["count"]
        )
    assert (
        admin_client_api.get(url, {param: "true"}).json()["count"]
        != admin_client_api.get(url, {param: "false"}).json()["count"]
    )
    response = admin_client_api.get(url, {param: "yes please"})
    assert response.status_code == 400
    assert response.json() == {param: ["must be true or false (got 'yes please')"]}


@pytest.mark.parametrize("value", ["abc", "0", "1.5", str(2**63)])
def test_an_id_filter_names_the_value_it_cannot_read(reader, platform, value):
    response = reader.get(f"{API}/classifications/", {"taxon": value})
    assert response.status_code == 400
    assert response.json() == {"taxon": [f"must be a whole number from 1 to {2**63 - 1} (got {value!r})"]}


def test_algorithms(reader, platform):
    run("rank_rollup", platform)
    body = reader.get(f"{API}/algorithms/", {"task_type": "classification"}).json()
    assert [(a["key"], a["n_classes"]) for a in body["results"]] == [("moths-v1", 8)]
    [rollup] = reader.get(f"{API}/algorithms/", {"task_type": "rank_rollup"}).json()["results"]
    assert rollup["config"]["mode"] == "lineage" and rollup["n_classes"] is None
    assert reader.get(f"{API}/algorithms/{rollup['id']}/").json()["key"] == rollup["key"]


def test_task_registry_serves_each_config_schema(reader):
    tasks = reader.get(f"{API}/tasks/").json()
    assert [t["key"] for t in tasks] == ["class_masking", "occurrence_consensus", "rank_rollup", "small_size_filter"]
    rollup = reader.get(f"{API}/tasks/rank_rollup/").json()
    assert rollup["name"] == "Rank roll-up" and rollup["version"] == "1"
    assert set(rollup["config_schema"]["properties"]) == {"thresholds", "order", "mode"}
    assert rollup["config_schema"]["additionalProperties"] is False
    assert reader.get(f"{API}/tasks/nope/").status_code == 404


def test_pagination_and_page_size(reader, platform):
    body = reader.get(f"{API}/taxa/", {"page_size": 5}).json()
    assert body["count"] == len(Taxon.objects.all()) and len(body["results"]) == 5 and body["next"]
    assert len(reader.get(f"{API}/taxa/", {"page_size": 5, "page": 2}).json()["results"]) == 5
    last = reader.get(f"{API}/taxa/", {"page_size": 5, "page": "last"}).json()
    assert last["next"] is None and last["results"]
    assert len(reader.get(f"{API}/taxa/", {"page_size": 10_000}).json()["results"]) == min(body["count"], 500)
    assert reader.get(f"{API}/taxa/", {"page_size": 5, "page": 10_000}).status_code == 404  # past the last page


@pytest.mark.parametrize(
    ("param", "value"), [("page_size", "abc"), ("page_size", "0"), ("page_size", "-1"), ("page", "abc"), ("page", "0")]
)
def test_a_page_or_page_size_that_is_no_whole_number_is_a_400_naming_it(reader, platform, param, value):
    response = reader.get(f"{API}/taxa/", {param: value})
    assert response.status_code == 400
    assert response.json() == {param: [f"must be a whole number >= 1 (got {value!r})"]}


# -- the permission matrix on every write --------------------------------------------------------

WRITE_STATUS = {"anonymous": 401, "user": 403}


@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_create_job_needs_staff(clients, who, platform, sync_jobs):
    response = clients[who].post(f"{API}/jobs/", rollup_body(platform), format="json")
    if who == "staff":
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "succeeded"
    else:
        assert response.status_code == WRITE_STATUS[who]
        assert not Job.objects.exists()


@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_cancel_job_needs_staff(clients, who, platform):
    from taxopost.postprocessing.running.operations import create_job

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    response = clients[who].post(f"{API}/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    if who == "staff":
        assert response.status_code == 200 and response.json()["status"] == "canceled"
        assert job.status == Job.CANCELED
    else:
        assert response.status_code == WRITE_STATUS[who]
        assert job.status == Job.CREATED


@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_revert_job_needs_staff(clients, who, platform):
    job = run("rank_rollup", platform)
    response = clients[who].post(f"{API}/jobs/{job.pk}/revert/")
    job.refresh_from_db()
    if who == "staff":
        assert response.status_code == 200, response.content
        assert response.json()["revert"] == {"removed": 5, "restored": 5, "unreplaced": 0, "determinations_changed": 5}
        assert job.reverted_at is not None
    else:
        assert response.status_code == WRITE_STATUS[who]
        assert job.reverted_at is None


def test_resume_from_the_web_does_not_run_the_job_in_the_request(clients, platform):
    """Like a job created from the web, a resumed one starts on a background thread once committed."""
    from taxopost.postprocessing.running.lifecycle import claim, fail
    from taxopost.postprocessing.running.operations import create_job

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    claim(job.pk, "embedded")
    fail(job.pk, "the worker died")
    response = clients["staff"].post(f"{API}/jobs/{job.pk}/resume/")
    assert response.status_code == 200, response.content
    job.refresh_from_db()
    assert job.status == Job.QUEUED  # the test's transaction never commits: the thread never starts


@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_resume_job_needs_staff(clients, who, platform, sync_jobs):
    from taxopost.postprocessing.running.lifecycle import fail
    from taxopost.postprocessing.running.operations import create_job

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    from taxopost.postprocessing.running.lifecycle import claim

    claim(job.pk, "embedded")
    fail(job.pk, "the worker died")  # what the reaper records for a stale job
    assert "resume" in clients["staff"].get(f"{API}/jobs/{job.pk}/").json()["operations"]
    response = clients[who].post(f"{API}/jobs/{job.pk}/resume/")
    job.refresh_from_db()
    if who == "staff":
        assert response.status_code == 200, response.content
        assert job.status == Job.SUCCEEDED
        assert clients["staff"].post(f"{API}/jobs/{job.pk}/resume/").status_code == 409  # nothing left to run
    else:
        assert response.status_code == WRITE_STATUS[who]
        assert job.status == Job.FAILED


def test_operations_are_what_the_caller_may_do(clients, platform, django_user_model):
    from taxopost.access.models import Membership
    from taxopost.access.roles import DATA_MANAGER
    from taxopost.postprocessing.running.lifecycle import claim, fail
    from taxopost.postprocessing.running.operations import create_job

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    claim(job.pk, "embedded")
    fail(job.pk, "the worker died")  # resumable
    manager = django_user_model.objects.create_user("manager", password="x")
    Membership.objects.create(user=manager, project=platform.project, role=DATA_MANAGER)
    clients["manager"] = APIClient()
    clients["manager"].force_login(manager)
    for who, offered in (("user", []), ("manager", ["revert", "resume"]), ("staff", ["revert", "resume"])):
        detail = clients[who].get(f"{API}/jobs/{job.pk}/").json()
        [listed] = [row for row in clients[who].get(f"{API}/jobs/").json()["results"] if row["id"] == job.pk]
        assert detail["operations"] == listed["operations"] == offered, who


def test_no_write_route_but_the_jobs(admin_client_api, platform):
    for resource in ("taxa", "taxa-lists", "capture-sets", "occurrences", "classifications", "algorithms"):
        assert admin_client_api.post(f"{API}/{resource}/", {}, format="json").status_code == 405
    assert admin_client_api.delete(f"{API}/capture-sets/{platform.pk}/").status_code == 405


# -- jobs: life cycle and validation ---------------------------------------------------------------


def test_job_life_cycle_through_the_api(admin_client_api, platform, sync_jobs):
    body = {**rollup_body(platform), "config": {"thresholds": {"species": 0.9, "genus": 0.7}, "mode": "lineage"}}
    created = admin_client_api.post(f"{API}/jobs/", body, format="json").json()
    assert created["status"] == "succeeded" and created["progress"] == 1.0
    assert created["config"] == {"thresholds": {"species": 0.9, "genus": 0.7}, "order": ["species", "genus"],
                                 "mode": "lineage"}  # fmt: skip
    assert created["metrics"]["changed"] > 0 and created["stages"][-1] == {"name": "processing", "progress": 1.0}
    assert created["created_by"] == "boss" and created["operations"] == ["revert"]
    assert any("done:" in line["message"] for line in created["log"])
    listed = admin_client_api.get(f"{API}/jobs/", {"status": "succeeded"}).json()
    assert [j["id"] for j in listed["results"]] == [created["id"]]
    assert admin_client_api.post(f"{API}/jobs/{created['id']}/cancel/").status_code == 409
    assert admin_client_api.post(f"{API}/jobs/{created['id']}/revert/").status_code == 200
    again = admin_client_api.post(f"{API}/jobs/{created['id']}/revert/")
    assert again.status_code == 409 and "cannot revert" in again.json()["detail"]


def test_a_job_from_the_web_is_queued_for_the_background_thread(admin_client_api, platform):
    """Without the synchronous executor of the tests, the request returns at once with a queued job."""
    created = admin_client_api.post(f"{API}/jobs/", rollup_body(platform), format="json").json()
    assert created["status"] == "queued" and created["executor"] == "embedded"


def test_dry_run_job_previews(admin_client_api, platform, sync_jobs):
    created = admin_client_api.post(f"{API}/jobs/", rollup_body(platform, dry_run=True), format="json").json()
    assert created["dry_run"] is True and created["result"]["preview"]["changed"] == 5
    assert created["operations"] == []
    assert not Classification.objects.filter(job_id=created["id"]).exists()


def test_a_rerun_through_the_api_previews_what_it_replaces_and_stack_keeps_it(admin_client_api, platform, sync_jobs):
    first = run("rank_rollup", platform)
    strict = {"thresholds": {"species": 0.95, "genus": 0.9, "family": 0.5}}
    preview = admin_client_api.post(
        f"{API}/jobs/", rollup_body(platform, config=strict, dry_run=True), format="json"
    ).json()
    assert preview["stack"] is False and preview["metrics"]["examined"] == 6
    assert preview["replaces"] == [
        f"5 outputs of job {first.pk} (species 0.8, genus 0.6, family 0.4; lineage) are replaced"
    ]
    assert preview["metrics"]["determinations_changed"] > 0
    stacked = admin_client_api.post(
        f"{API}/jobs/", rollup_body(platform, config=strict, stack=True), format="json"
    ).json()
    assert stacked["stack"] is True and stacked["replaces"] == [] and stacked["metrics"]["examined"] == 1
    assert Classification.objects.filter(job=first, terminal=True).count() == 5
    rerun = admin_client_api.post(f"{API}/jobs/", rollup_body(platform, config=strict), format="json").json()
    replaced = Classification.objects.filter(job=first).first()
    body = admin_client_api.get(f"{API}/classifications/{replaced.pk}/").json()
    assert body["replaced_by"] == rerun["id"] and body["terminal"] is False
    assert [step["replaced_by"] for step in body["provenance"]] == [rerun["id"], None]  # down to the model


def test_revert_refused_when_a_later_job_built_on_it_is_409(admin_client_api, platform):
    first = run("class_masking", platform, {"taxa_list": "regional"})
    run("rank_rollup", platform)
    response = admin_client_api.post(f"{API}/jobs/{first.pk}/revert/")
    assert response.status_code == 409 and "revert that first" in response.json()["detail"]


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        ({"thresholds": {"genus": 1.5}}, {"thresholds.genus": ["must be in (0, 1] (got 1.5)"]}),
        ({"thresholds": {"genera": 0.5}}, {"thresholds.genera": None}),
        ({"mode": "sideways", "colour": "red"}, {"mode": None, "colour": ["Extra inputs are not permitted"]}),
        ({"thresholds": {"species": 0.9}, "order": ["genus", "species"]}, {"order": None}),
        ({"thresholds": "high"}, {"thresholds": None}),
        (
            {"thresholds": {"species": 0.8, "genus": 1.5}, "colour": "red"},
            {"thresholds.genus": ["must be in (0, 1] (got 1.5)"], "colour": ["Extra inputs are not permitted"]},
        ),
        ({"thresholds": {"genus": 2}, "order": ["family", "genus"]}, {"thresholds.genus": None, "order": None}),
    ],
)
def test_bad_config_is_400_with_every_field_error(admin_client_api, platform, config, errors):
    response = admin_client_api.post(f"{API}/jobs/", rollup_body(platform, config=config), format="json")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"config"} and set(body["config"]) == set(errors)
    for field, messages in errors.items():
        assert isinstance(body["config"][field], list) and body["config"][field]
        if messages is not None:
            assert body["config"][field] == messages
    assert not Job.objects.exists()


def test_a_bad_scope_is_reported_with_the_config_errors(admin_client_api, platform):
    body = rollup_body(platform, scope={"type": "capture_set", "id": 99_999}, config={"colour": "red"})
    response = admin_client_api.post(f"{API}/jobs/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "config": {"colour": ["Extra inputs are not permitted"]},
        "scope": {"id": ["no capture set has this id (got 99999)"]},
    }
    assert not Job.objects.exists()


def test_an_unknown_field_of_a_job_is_refused(admin_client_api, platform):
    """A misspelt dry_run must not start a real run."""
    response = admin_client_api.post(f"{API}/jobs/", rollup_body(platform, dryRun=True), format="json")
    assert response.status_code == 400
    assert "unknown fields: dryRun" in response.json()["non_field_errors"][0]
    assert not Job.objects.exists()


def test_an_unknown_field_of_a_jobs_scope_is_refused(admin_client_api, platform):
    """A misspelt scope key ("nmae") must not be dropped quietly while the job runs on the id."""
    body = rollup_body(platform, scope={"type": "capture_set", "id": platform.pk, "extra": 1})
    response = admin_client_api.post(f"{API}/jobs/", body, format="json")
    assert response.status_code == 400
    assert response.json()["scope"] == ["unknown fields: extra (expected type, id, name)"]
    assert not Job.objects.exists()


def test_errors_from_the_domain_name_the_field(admin_client_api, platform):
    masking = {"task": "class_masking", "scope": {"type": "capture_set", "id": platform.pk}}
    response = admin_client_api.post(f"{API}/jobs/", {**masking, "config": {"taxa_list": "nowhere"}}, format="json")
    assert response.status_code == 400
    assert response.json() == {"config": {"taxa_list": ["no taxa list has this name (got 'nowhere')"]}}
    missing = admin_client_api.post(f"{API}/jobs/", {**masking, "config": {}}, format="json").json()
    assert missing == {"config": {"taxa_list": ["Field required"]}}
    response = admin_client_api.post(f"{API}/jobs/", rollup_body(platform, scope={"type": "capture_set", "id": 99999}),
                                     format="json")  # fmt: skip
    assert response.status_code == 400
    assert response.json() == {"scope": {"id": ["no capture set has this id (got 99999)"]}}
    response = admin_client_api.post(f"{API}/jobs/", rollup_body(platform, scope={"type": "image", "id": 1}),
                                     format="json")  # fmt: skip
    assert set(response.json()["scope"]) == {"type"}
    response = admin_client_api.post(f"{API}/jobs/", rollup_body(platform, task="nope"), format="json")
    assert response.status_code == 400 and set(response.json()) == {"task"}
    response = admin_client_api.post(f"{API}/jobs/", {"task": "rank_rollup"}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"scope"}
    assert not Job.objects.exists()


# -- query counts --------------------------------------------------------------------------------


def _queries(client, url: str, params: dict) -> tuple[int, dict]:
    client.get(f"{API}/")  # the token's last use is recorded once a minute, not on each request
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200, response.content
    return len(queries), response.json()


LIST_QUERIES = [
    ("occurrences", {"capture_set": None}),
    ("classifications", {"capture_set": None}),
    ("classifications", {"terminal": True}),
    ("taxa", {}),
    ("algorithms", {}),
    ("jobs", {}),
    ("capture-sets", {}),
    ("taxa-lists", {}),
]


def _depth(body: dict) -> int:
    """Levels of the deepest provenance chain on the page (each costs one query, whatever the page size)."""
    return max((len(row.get("provenance", [])) for row in body["results"]), default=0)


@pytest.fixture
def many_of_everything(platform, tmp_path):
    """More than 5 rows of every resource: occurrences, chains, jobs, algorithms, capture sets, lists."""
    from taxopost.observations.models import CaptureSet
    from taxopost.postprocessing.running.revert import revert_job
    from taxopost.taxa.operations import import_taxa_list

    many = load_many(tmp_path)
    run("rank_rollup", many)  # after masking and roll-up: chains of two and three steps
    for i in range(8):  # a job and an algorithm each (reverted, so the next one has work too)
        revert_job(run("rank_rollup", platform, {"thresholds": {"species": 0.95 - i / 100, "genus": 0.3}}))
        CaptureSet.objects.create(project=many.project, name=f"extra-{i}")
        import_taxa_list(f"list-{i}", Taxon.objects.filter(rank="species").values_list("id", flat=True)[: i + 1])
    return many


@pytest.mark.parametrize(("resource", "params"), LIST_QUERIES)
def test_a_list_costs_the_same_queries_for_5_or_50_rows(reader, many_of_everything, resource, params):
    params = {key: many_of_everything.pk if value is None else value for key, value in params.items()}
    small, small_body = _queries(reader, f"{API}/{resource}/", {**params, "page_size": 5})
    large, large_body = _queries(reader, f"{API}/{resource}/", {**params, "page_size": 50})
    assert len(small_body["results"]) == 5 < len(large_body["results"])
    fixed_small, fixed_large = small - _depth(small_body), large - _depth(large_body)
    assert fixed_small == fixed_large, (
        f"{resource}: {small} queries for 5 rows, {large} for {len(large_body['results'])} (chains aside)"
    )


def test_chains_cost_one_query_per_level(reader, platform, tmp_path):
    many = load_many(tmp_path)
    count, body = _queries(reader, f"{API}/occurrences/", {"capture_set": many.pk, "page_size": 60})
    depth = max(len(o["provenance"]) for o in body["results"])
    assert depth == 3  # roll-up <- masking <- model
    # token, the role check (may view some project), count, page, then the chains: one query per level
    assert count == 4 + depth


def test_ids_beyond_the_database_range_are_client_errors(admin_client_api, platform):
    huge = 2**70
    assert admin_client_api.get(f"{API}/taxa/{huge}/").status_code == 404
    assert admin_client_api.get(f"{API}/classifications/", {"capture_set": huge}).status_code == 400
    assert admin_client_api.get(f"{API}/jobs/", {"scope_id": huge}).status_code == 400
    response = admin_client_api.post(f"{API}/jobs/", rollup_body(platform, scope={"type": "capture_set", "id": huge}),
                                      format="json")  # fmt: skip
    assert response.status_code == 400 and set(response.json()["scope"]) == {"id"}
