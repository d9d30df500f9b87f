"""The bad-input matrix through the REST API and the admin's run form, and fuzzing of job payloads.

Every refused request answers 400 naming the field, and every table stays exactly as it was.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from taxopost.observations.models import CaptureSet
from taxopost.taxa.models import TaxaList, Taxon
from taxopost.taxa.operations import import_taxa_list
from tests.web import platform, staff, sync_jobs  # noqa: F401

from .checksums import database_fingerprint

API = "/api/v1"

CASES = {
    "threshold above 1": ({"thresholds": {"genus": 1.5}}, "thresholds.genus"),
    "threshold 0": ({"thresholds": {"genus": 0}}, "thresholds.genus"),
    "negative threshold": ({"thresholds": {"species": -0.1}}, "thresholds.species"),
    "threshold not a number": ({"thresholds": {"genus": "high"}}, "thresholds.genus"),
    "unknown rank": ({"thresholds": {"tribus": 0.5}}, "thresholds"),
    "order not fine to coarse": (
        {"thresholds": {"genus": 0.5, "family": 0.4}, "order": ["family", "genus"]},
        "order",
    ),
    "unknown mode": ({"mode": "sideways"}, "mode"),
    "unknown key": ({"colour": "red"}, "colour"),
}


@pytest.fixture
def api(staff) -> APIClient:  # noqa: F811
    client = APIClient()
    client.force_login(staff)
    return client


@pytest.mark.parametrize("case", CASES)
def test_bad_rollup_configs_are_400_naming_the_field_and_change_nothing(api, platform, case):  # noqa: F811
    config, field = CASES[case]
    before = database_fingerprint()
    body = {"task": "rank_rollup", "scope": {"type": "capture_set", "id": platform.pk}, "config": config}
    response = api.post(f"{API}/jobs/", body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["config"]
    assert any(key.startswith(field) for key in errors), errors
    assert database_fingerprint() == before


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"taxa_list": "nowhere"}, "no taxa list"),
        ({"taxa_list": "empty"}, "empty"),
        ({"taxa_list": "far"}, "keeps none"),
    ],
)
def test_bad_taxa_lists_are_400_and_change_nothing(api, platform, config, message):  # noqa: F811
    TaxaList.objects.create(name="empty")
    far, _ = Taxon.objects.get_or_create(name="Trichoptera", defaults={"rank": "order", "path": "/", "depth": 0})
    import_taxa_list("far", [far.pk])
    before = database_fingerprint()
    body = {"task": "class_masking", "scope": {"type": "capture_set", "id": platform.pk}, "config": config}
    response = api.post(f"{API}/jobs/", body, format="json")
    assert response.status_code == 400, response.content
    assert message in json.dumps(response.json()["config"])
    assert database_fingerprint() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task": "nope", "scope": {"type": "capture_set", "id": 1}, "config": {}}, "task"),
        ({"task": "rank_rollup", "scope": {"type": "galaxy", "id": 1}, "config": {}}, "scope"),
        ({"task": "rank_rollup", "scope": {"type": "capture_set", "id": 10**30}, "config": {}}, "scope"),
        (
            {"task": "small_size_filter", "scope": {"type": "capture_set", "id": 1}, "config": {"size_threshold": 1}},
            "config",
        ),
        ({"task": "rank_rollup", "scope": "everything", "config": {}}, "scope"),
    ],
)
def test_bad_job_requests_are_400(api, platform, body, field):  # noqa: F811
    before = database_fingerprint()
    response = api.post(f"{API}/jobs/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert database_fingerprint() == before


@pytest.mark.parametrize(
    ("thresholds", "extra", "message"),
    [
        ({"species": "0.9", "genus": "1.5"}, {}, "thresholds.genus: must be in (0, 1]"),
        ({"species": "0.9", "genus": "-1"}, {}, "thresholds.genus: must be in (0, 1]"),
        ({"species": "0.9"}, {"order": "genus, species"}, "fine to coarse"),
        ({}, {}, "at least one rank threshold"),
    ],
)
def test_the_admin_run_form_shows_the_error_and_changes_nothing(platform, staff, client, thresholds, extra, message):  # noqa: F811
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    client.force_login(staff)
    url = reverse("admin:observations_captureset_changelist")
    start = {"action": "run_rank_rollup", ACTION_CHECKBOX_NAME: [platform.pk], "index": 0}
    ranks = client.post(url, start).context["form"].fields["thresholds"].ranks
    data = {f"thresholds_{i}": "" for i in range(len(ranks))}
    data.update({f"thresholds_{ranks.index(rank)}": value for rank, value in thresholds.items()})
    before = database_fingerprint()
    response = client.post(url, {**start, **data, "mode": "lineage", **extra, "_run": "Run"})
    assert response.status_code == 200
    assert message in " ".join(" ".join(errors) for errors in response.context["form"].errors.values())
    assert database_fingerprint() == before


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
RANKS = st.sampled_from(["species", "genus", "family", "order", "tribe", "Species", "nope", ""])
CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "thresholds": st.dictionaries(RANKS, st.floats(-2, 2) | st.text(max_size=4) | st.none(), max_size=4) | JSON,
        "order": st.lists(RANKS, max_size=4) | JSON,
        "mode": st.sampled_from(["lineage", "distribution", "x"]) | JSON,
        "taxa_list": st.text(max_size=8) | JSON,
        "reweight": st.booleans() | JSON,
        "size_threshold": st.floats(-1, 2) | JSON,
        "source_algorithm": st.text(max_size=8) | JSON,
    },
)
PAYLOADS = st.fixed_dictionaries(
    {
        "task": st.sampled_from(["rank_rollup", "class_masking", "small_size_filter", "other"]) | JSON,
        "scope": st.fixed_dictionaries(
            {"type": st.sampled_from(["capture_set", "occurrence", "x"]), "id": st.integers(-5, 2**70) | JSON}
        )
        | JSON,
        "config": CONFIGS | JSON,
    },
    optional={"dry_run": st.booleans() | JSON},
)


def test_job_creation_survives_arbitrary_payloads(platform, staff, sync_jobs):  # noqa: F811
    """Whatever the JSON, the API answers 201 or 400: never a server error."""
    client = APIClient()
    client.force_login(staff)
    known = CaptureSet.objects.values_list("pk", flat=True).first()

    @FUZZ
    @given(payload=PAYLOADS)
    def check(payload: dict) -> None:
        if isinstance(payload.get("scope"), dict) and payload["scope"].get("id") == 1:
            payload["scope"]["id"] = known  # reach the task's own validation too
        response = client.post(f"{API}/jobs/", payload, format="json")
        assert response.status_code in (201, 400), (payload, response.status_code, response.content[:300])

    check()


@pytest.mark.parametrize(
    ("text", "message"),
    [("[" * 5000 + "]" * 5000, "nested too deeply"), ("1e999", "not a finite double"), ("NaN", "not a JSON number"),
     ("9" * 500, "500 digits"), ("{", "JSON parse error")],
)  # fmt: skip
def test_a_json_field_of_the_run_form_refuses_what_the_api_refuses(text, message):
    """Config fields typed as JSON (objects, unions) parse with the API's bounds: a form error, never a 500."""
    from django import forms
    from django.forms.fields import InvalidJSONInput

    from taxopost.postprocessing.forms import field_from_schema

    field = field_from_schema("weights", {"type": "object"}, required=True)
    with pytest.raises(forms.ValidationError, match=message):
        field.clean(text)
    assert isinstance(field.bound_data(text, None), InvalidJSONInput)  # shown again as typed
    assert field.clean('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}


# -- strings no database stores: NUL, unpaired surrogates -------------------------------------------

UNSTORABLE_BODIES = {
    "NUL in a config string": ('{"task": "class_masking", "scope": {"type": "capture_set", "id": ID}, '
                               '"config": {"taxa_list": "reg\\u0000ional"}}', "$.config.taxa_list"),
    "an unpaired surrogate in a config string": (
        '{"task": "class_masking", "scope": {"type": "capture_set", "id": ID}, '
        '"config": {"taxa_list": "regional", "source_algorithm": "\\udfff"}}', "$.config.source_algorithm"),
    "NUL in a scope's name": ('{"task": "rank_rollup", "scope": {"type": "capture_set", "name": "sta\\u0000tion"}}',
                              "$.scope.name"),
    "NUL in a key": ('{"task": "rank_rollup", "scope": {"type": "capture_set", "id": ID}, "config": {"a\\u0000": 1}}',
                     "$.config"),
}  # fmt: skip


@pytest.mark.parametrize("case", UNSTORABLE_BODIES)
def test_strings_no_database_stores_are_400_naming_their_place(api, platform, case):  # noqa: F811
    raw, where = UNSTORABLE_BODIES[case]
    before = database_fingerprint()
    response = api.post(f"{API}/jobs/", raw.replace("ID", str(platform.pk)), content_type="application/json")
    text = response.content.decode()
    assert response.status_code == 400 and where in text and "NUL character or an unpaired surrogate" in text
    assert database_fingerprint() == before


def test_a_config_from_a_file_with_nul_is_refused_naming_the_field():
    """The CLI's and the jobs' configs are checked where every config is: parse_config."""
    from taxopost.errors import InputError
    from taxopost.tasks import parse_config
    from taxopost.tasks.class_masking import ClassMaskingConfig

    with pytest.raises(InputError, match=r"config\.taxa_list.*must not hold NUL characters"):
        parse_config(ClassMaskingConfig, {"taxa_list": "reg\x00ional"}, prefix="config.")
    with pytest.raises(InputError, match=r"config\.source_algorithm.*unpaired surrogates"):
        parse_config(ClassMaskingConfig, {"taxa_list": "x", "source_algorithm": "\udfff"}, prefix="config.")


@pytest.mark.parametrize("path", [
    "/api/v1/capture-sets/?name=a%00b", "/api/v1/occurrences/?algorithm=a%00b",
    "/evaluation/capture-sets/PK/?algorithm=a%00b", "/admin/observations/occurrence/?q=a%00b",
])  # fmt: skip
def test_a_nul_in_a_query_parameter_is_400(platform, staff, client, path):  # noqa: F811
    client.force_login(staff)
    response = client.get(path.replace("PK", str(platform.pk)))
    assert response.status_code == 400 and "holds a NUL character" in response.content.decode()


@pytest.mark.parametrize("value", ["abc", "9" * 30, "-1"])
@pytest.mark.parametrize("model", ["occurrence", "detection"])
def test_a_capture_set_filter_that_is_no_id_is_the_admins_error_page(platform, staff, client, model, value):  # noqa: F811
    client.force_login(staff)
    response = client.get(f"/admin/observations/{model}/?capture_set={value}")
    assert response.status_code == 302 and "e=1" in response["Location"]  # the admin's "bad filter" redirect


ADMIN_ACTIONS = [
    ("jobs/job", "cancel_jobs"), ("taxa/taxon", "delete_selected"), ("access/accesstoken", "revoke_tokens"),
    ("auth/user", "delete_selected"), ("auth/group", "delete_selected"),
]  # fmt: skip


@pytest.mark.parametrize("value", ["abc", "9" * 30])
@pytest.mark.parametrize(("model", "action"), ADMIN_ACTIONS)
def test_an_admin_action_on_ids_that_are_no_ids_does_nothing_and_says_so(platform, client, model, action, value):  # noqa: F811
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("root", "root@example.org", "pw-1234567-x"))
    before = database_fingerprint()
    response = client.post(f"/admin/{model}/", {"action": action, "_selected_action": [value]}, follow=True)
    assert response.status_code == 200 and f"&#x27;{value}&#x27; is not the id of a" in response.content.decode()
    assert database_fingerprint() == before
