"""The OpenAPI schema is valid, and the live API answers generated requests without a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error

from taxopost.access.tokens import create_token
from tests.platform.helpers import run

pytestmark = pytest.mark.django_db

#: Generated requests per operation: enough to hit every parameter and body shape, bounded in time.
MAX_EXAMPLES = 20


def test_schema_is_served_without_login_and_is_valid_openapi(client):
    response = client.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    paths = set(schema["paths"])
    for expected in ("/api/v1/jobs/", "/api/v1/jobs/{id}/cancel/", "/api/v1/jobs/{id}/revert/",
                     "/api/v1/tasks/{key}/", "/api/v1/occurrences/", "/api/v1/classifications/"):  # fmt: skip
        assert expected in paths
    parameters = {p["name"] for p in schema["paths"]["/api/v1/classifications/"]["get"]["parameters"]}
    assert {"capture_set", "taxon", "rank", "algorithm", "terminal", "page", "page_size"} <= parameters
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_swagger_ui_documents_the_schema_from_local_files(client):
    """The page loads without a login and references only this server's files (no CDN)."""
    import re

    swagger = client.get("/api/v1/schema/swagger/")
    assert swagger.status_code == 200
    html = swagger.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(src.startswith("/") for src in sources), sources
    assert "<script>" not in html  # its start-up script is a file: a strict CSP allows the page
    for src in sources:
        asset = client.get(src)
        assert asset.status_code == 200, src
        if "script=" in src:
            assert b"/api/v1/schema/" in b"".join(asset.streaming_content if asset.streaming else [asset.content])


@pytest.fixture
def in_process_requests():
    """Keep the test's connection across WSGI calls, as Django's test client does: the end of a
    request closes a connection that is inside a transaction (the test's), or older than
    CONN_MAX_AGE."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_generated_requests_never_get_a_server_error(platform, staff, in_process_requests, settings):
    """Every operation, as staff (so writes are exercised too), through the WSGI app in-process."""
    settings.DEVELOPMENT = True  # the WSGI module refuses the public key outside development
    from taxopost.wsgi import application

    job = run("rank_rollup", platform)
    token = create_token(staff)[1]
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    seen: dict[str, set[int]] = {}
    for operation in operations:
        _exercise(operation, {"Authorization": f"Token {token}"}, seen)
    assert job.pk  # the data the generated ids may hit
    assert len(seen) == len(operations)


def _exercise(operation, headers: dict, seen: dict[str, set[int]]) -> None:
    """Send MAX_EXAMPLES generated requests to one operation; any 5xx fails the test."""

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
        seen.setdefault(operation.label, set()).add(response.status_code)

    check()
