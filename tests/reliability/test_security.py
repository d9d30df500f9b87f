"""Security defaults: secrets from the environment with loud warnings, DEBUG off, CSRF, size limits,
and user values kept out of SQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from taxopost.jobs.models import Job
from taxopost.taxa.models import Taxon
from tests.web import platform, staff  # noqa: F401

from .checksums import database_fingerprint


def _start_wsgi(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TAXOPOST_SECRET", "TAXOPOST_DEBUG"))}
    environment.update(env)
    code = "import taxopost.wsgi; from django.conf import settings; print('DEBUG', settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)


def test_a_server_started_on_the_development_key_warns_loudly_and_debug_is_off():
    started = _start_wsgi()
    assert "DEBUG False" in started.stdout
    assert "WARNING: TAXOPOST_SECRET_KEY is not set" in started.stderr


def test_no_warning_with_a_secret_key_from_the_environment_or_in_debug():
    assert "WARNING" not in _start_wsgi(TAXOPOST_SECRET_KEY="s3cret-from-the-environment").stderr
    debug = _start_wsgi(TAXOPOST_DEBUG="1")
    assert "DEBUG True" in debug.stdout and "WARNING" not in debug.stderr


def test_deploy_check_lists_the_development_defaults(db):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match="taxopost.W001"):
        call_command("check", "--deploy", "--fail-level", "WARNING")


def test_taxopost_manage_runs_the_deploy_check_and_creates_the_first_admin(tmp_path):
    """The console command end to end, on an embedded database of its own (Django's commands close
    their connections when they finish, which a test's transaction would not survive)."""
    command = str(Path(sys.executable).with_name("taxopost"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TAXOPOST_", "DATABASE_URL"))}
    environment.update(TAXOPOST_DATA_DIR=str(tmp_path), DJANGO_SUPERUSER_PASSWORD="a-long-admin-password")

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([command, "manage", *args], env=environment, capture_output=True, text=True, timeout=120)

    check = manage("check", "--deploy")
    assert check.returncode == 0 and "taxopost.W001" in check.stderr
    created = manage("createsuperuser", "--noinput", "--username", "root", "--email", "root@example.org")
    assert created.returncode == 0, created.stderr
    shell = manage("shell", "-c", "from django.contrib.auth.models import User; "
                   "print(User.objects.get(username='root').check_password('a-long-admin-password'))")  # fmt: skip
    assert shell.stdout.strip().splitlines()[-1] == "True", shell.stderr
    unknown = manage("nosuch")
    assert unknown.returncode == 1 and "Unknown command: 'nosuch'" in unknown.stderr


def test_admin_forms_refuse_posts_without_a_csrf_token(platform, staff):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    url = reverse("admin:observations_captureset_changelist")
    response = client.post(url, {"action": "run_rank_rollup", "_selected_action": [platform.pk]})
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_session_authenticated_api_writes_need_the_csrf_token(platform, staff):  # noqa: F811
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    body = {"task": "rank_rollup", "scope": {"type": "capture_set", "id": platform.pk}, "config": {}}
    assert client.post("/api/v1/jobs/", body, format="json").status_code == 403
    assert not Job.objects.exists()


def test_oversized_requests_are_refused(platform, staff):  # noqa: F811
    client = APIClient()
    client.force_login(staff)
    body = {
        "task": "rank_rollup",
        "scope": {"type": "capture_set", "id": platform.pk},
        "config": {"x": "a" * 11_000_000},
    }
    response = client.post("/api/v1/jobs/", body, format="json")
    assert response.status_code in (400, 413)
    assert not Job.objects.exists()


INJECTIONS = ["' OR '1'='1", "x'); DROP TABLE taxa_taxon; --", '"; DELETE FROM observations_classification; --']


@pytest.mark.parametrize("text", INJECTIONS)
def test_user_values_never_reach_sql_as_code(platform, staff, text):  # noqa: F811
    client = APIClient()
    client.force_login(staff)
    before = database_fingerprint()
    assert client.get("/api/v1/taxa/", {"name": text}).json()["count"] == 0
    response = client.get("/api/v1/occurrences/", {"capture_set": platform.pk, "taxon": text})
    assert response.status_code in (200, 400)
    body = {"task": "class_masking", "scope": {"type": "capture_set", "id": platform.pk}, "config": {"taxa_list": text}}
    assert client.post("/api/v1/jobs/", body, format="json").status_code == 400
    assert database_fingerprint() == before
    assert Taxon.objects.filter(name="Vanessa").exists()
