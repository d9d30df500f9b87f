"""Security defaults: no server on the public key outside development, DEBUG off, production switches
that pass the deploy check, CSRF, size limits, user values kept out of SQL, a demo that never
lands in a real database."""

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

SWITCHES = {
    "TAXOPOST_SECRET_KEY": "a-long-random-secret-key-from-the-environment-0123456789-abcdefghij",
    "TAXOPOST_ALLOWED_HOSTS": "taxopost.example.org",
    "TAXOPOST_HSTS_SECONDS": "31536000",
    "TAXOPOST_HSTS_INCLUDE_SUBDOMAINS": "1",
    "TAXOPOST_HSTS_PRELOAD": "1",
    "TAXOPOST_SECURE_COOKIES": "1",
    "TAXOPOST_SSL_REDIRECT": "1",
    "TAXOPOST_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "TAXOPOST_CSRF_TRUSTED_ORIGINS": "https://taxopost.example.org",
    "TAXOPOST_CSP": "on",
}


def _environment(tmp_path=None, **env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TAXOPOST_", "DATABASE_URL"))}
    if tmp_path is not None:
        environment["TAXOPOST_DATA_DIR"] = str(tmp_path)
    return {**environment, **env}


def _start_wsgi(**env: str) -> subprocess.CompletedProcess:
    code = "import taxopost.wsgi; from django.conf import settings; print('DEBUG', settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code], env=_environment(**env), capture_output=True, text=True, timeout=120
    )


def test_a_server_refuses_to_start_on_the_public_key_outside_development():
    started = _start_wsgi()
    assert started.returncode != 0 and "DEBUG" not in started.stdout
    assert "ImproperlyConfigured: TAXOPOST_SECRET_KEY is not set" in started.stderr
    assert "TAXOPOST_DEVELOPMENT=1" in started.stderr
    assert "tokens are random and not signed" in started.stderr  # the old text said tokens were signed


def test_the_public_key_is_allowed_in_debug_or_development_mode_and_a_real_key_starts_quietly():
    assert "WARNING" not in _start_wsgi(TAXOPOST_SECRET_KEY="s3cret-from-the-environment").stderr
    debug = _start_wsgi(TAXOPOST_DEBUG="1")
    assert "DEBUG True" in debug.stdout and "WARNING" not in debug.stderr
    development = _start_wsgi(TAXOPOST_DEVELOPMENT="1")
    assert "DEBUG False" in development.stdout and "WARNING: development mode" in development.stderr


def test_taxopost_serve_is_development_mode_on_loopback_only(tmp_path):
    command = [sys.executable, "-c", "from taxopost.cli import run; run()", "serve", "--host", "0.0.0.0"]
    public = subprocess.run(command, env=_environment(tmp_path), capture_output=True, text=True, timeout=120)
    assert public.returncode == 2
    assert public.stderr.startswith("taxopost: error: TAXOPOST_SECRET_KEY is not set")
    assert len(public.stderr.strip().splitlines()) == 1
    # On loopback it serves (tests/cli/test_serve.py requests its pages) with a one-line notice.


def test_deploy_check_is_clean_with_the_production_switches(tmp_path):
    command = [str(Path(sys.executable).with_name("taxopost")), "manage", "check", "--deploy", "--fail-level", "INFO"]
    checked = subprocess.run(command, env=_environment(tmp_path, **SWITCHES), capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues (0 silenced)" in checked.stdout
    plain = subprocess.run(command, env=_environment(tmp_path), capture_output=True, text=True)
    assert plain.returncode == 1  # the embedded defaults are not a deployment
    for warning in ("taxopost.W001", "security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in plain.stderr, warning


def test_the_production_switches_reach_the_responses(tmp_path):
    code = """
from django.test import Client
from taxopost.django_setup import setup
setup()
client = Client(HTTP_HOST="taxopost.example.org")
plain = client.get("/admin/login/")
print("redirect", plain.status_code, plain.get("Location"))
secure = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
print("hsts", secure.get("Strict-Transport-Security"))
print("csp", secure.get("Content-Security-Policy"))
print("cookie", secure.cookies["csrftoken"]["secure"])
"""
    out = subprocess.run([sys.executable, "-c", code], env=_environment(tmp_path, **SWITCHES), capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines["redirect"] == "301 https://taxopost.example.org/admin/login/"
    assert lines["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert lines["csp"].startswith("default-src 'self'; script-src 'self'")
    assert lines["cookie"] == "True"


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
    assert check.returncode == 0 and "taxopost.W001" in check.stderr and "tokens are random" in check.stderr
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


def test_the_demo_refuses_a_database_that_holds_other_projects(tmp_path):
    command = str(Path(sys.executable).with_name("taxopost"))
    env = _environment(tmp_path)

    def taxopost(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([command, *args], env=env, capture_output=True, text=True, timeout=120)

    shell = "from taxopost.observations.models import Project; Project.objects.get_or_create(name='Field survey')"
    assert taxopost("manage", "shell", "-c", shell).returncode == 0
    refused = taxopost("demo")
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "already holds other projects ('Field survey'" in lines[0], refused.stderr
    users = taxopost(
        "manage", "shell", "-c", "from django.contrib.auth.models import User; print(User.objects.count())"
    )
    assert users.stdout.strip().splitlines()[-1] == "0"  # no demo/demo superuser was made
