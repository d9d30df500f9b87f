"""The rules behind the matrix, the commands that grant roles and tokens, and the migration that locks nobody out."""

from __future__ import annotations

import importlib
import itertools
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from taxopost.access.models import AccessToken, Membership
from taxopost.access.roles import ACTIONS, ROLE_ACTIONS, ROLES, roles_allowing
from taxopost.access.rules import can, can_anywhere, projects_where, scoped
from taxopost.access.tokens import digest
from taxopost.observations.models import CaptureSet, Project

pytestmark = pytest.mark.django_db

PASSWORD = "a-roles-password-1"


def test_each_role_can_do_what_the_one_before_it_can_and_more():
    assert ROLES == ("viewer", "identifier", "data_manager", "project_manager")
    for weaker, stronger in itertools.pairwise(ROLES):
        assert ROLE_ACTIONS[weaker] < ROLE_ACTIONS[stronger]
    assert ROLE_ACTIONS["project_manager"] == set(ACTIONS)
    with pytest.raises(ValueError, match="action must be one of view, identify, run_jobs, manage; got 'fly'"):
        roles_allowing("fly")


def test_superusers_anonymous_inactive_and_projects_without_a_row(platform, django_user_model):
    project = platform.project
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", PASSWORD)
    assert can(boss, "manage", project) and can(boss, "run_jobs", None)  # a job whose project was deleted
    assert can_anywhere(boss, "manage")
    boss.is_active = False
    assert not can(boss, "view", project)
    anonymous = AnonymousUser()
    assert not can(anonymous, "view", project) and not can_anywhere(anonymous, "view")
    project.public = True
    project.save()
    assert can(anonymous, "view", project) and not can(anonymous, "run_jobs", project)
    assert list(projects_where(anonymous, "view")) == [project]
    viewer = django_user_model.objects.create_user("v", password=PASSWORD)
    Membership.objects.create(user=viewer, project=project, role="viewer")
    assert not can(viewer, "run_jobs", None)


def test_scoped_lists_leave_other_projects_out(platform, django_user_model):
    elsewhere = Project.objects.create(name="elsewhere")
    theirs = CaptureSet.objects.create(project=elsewhere, name="theirs")
    user = django_user_model.objects.create_user("u", password=PASSWORD)
    Membership.objects.create(user=user, project=elsewhere, role="data_manager")
    assert list(scoped(CaptureSet.objects.all(), user, "project")) == [theirs]
    assert can(user, "run_jobs", elsewhere) and not can(user, "view", platform.project)


def test_staff_flag_only_opens_the_admin(platform, django_user_model, client):
    """A member who is not staff reads the API and the review page; the admin wants staff."""
    member = django_user_model.objects.create_user("member", password=PASSWORD)
    Membership.objects.create(user=member, project=platform.project, role="viewer")
    api = APIClient()
    api.force_login(member)
    assert api.get("/api/v1/capture-sets/").json()["count"] == 1
    client.force_login(member)
    assert client.get(f"/review/capture-sets/{platform.pk}/").status_code == 200
    assert client.get("/admin/").status_code == 302


def test_admin_filters_name_only_the_projects_the_user_may_see(platform, django_user_model, client):
    Project.objects.create(name="secret-survey")
    CaptureSet.objects.create(project=Project.objects.get(name="secret-survey"), name="secret-1")
    member = django_user_model.objects.create_user("member", password=PASSWORD, is_staff=True)
    Membership.objects.create(user=member, project=platform.project, role="viewer")
    client.force_login(member)
    for url in ("/admin/observations/captureset/", "/admin/observations/occurrence/", "/admin/access/membership/"):
        html = client.get(url).content.decode()
        assert "secret" not in html, url
    client.force_login(django_user_model.objects.create_superuser("boss", "b@example.org", PASSWORD))
    assert "secret-survey" in client.get("/admin/observations/captureset/").content.decode()


def test_grant_and_revoke_role_commands(platform, django_user_model):
    django_user_model.objects.create_user("ana", password=PASSWORD)
    out = StringIO()
    call_command("grant_role", "ana", platform.project.name, "identifier", stdout=out)
    assert out.getvalue().strip() == "ana is identifier of default"
    call_command("grant_role", "ana", platform.project.name, "data_manager", stdout=out)
    assert "(role replaced)" in out.getvalue()
    assert Membership.objects.get(user__username="ana").role == "data_manager"
    with pytest.raises(
        CommandError, match="ROLE='owner': must be one of viewer, identifier, data_manager, project_manager"
    ):
        call_command("grant_role", "ana", "default", "owner")
    with pytest.raises(CommandError, match="USER='nobody': no user has this username"):
        call_command("grant_role", "nobody", "default", "viewer")
    with pytest.raises(CommandError, match="PROJECT='nowhere': no project has this name"):
        call_command("grant_role", "ana", "nowhere", "viewer")
    call_command("revoke_role", "ana", "default", stdout=out)
    assert "ana is no longer data manager of default" in out.getvalue()
    assert not Membership.objects.exists()
    with pytest.raises(CommandError, match="ana has no role on default"):
        call_command("revoke_role", "ana", "default")


@pytest.mark.parametrize("command", ["create_token", "drf_create_token"])
def test_token_commands_print_the_key_once(platform, django_user_model, command):
    user = django_user_model.objects.create_user("ana", password=PASSWORD)
    Membership.objects.create(user=user, project=platform.project, role="viewer")
    out, err = StringIO(), StringIO()
    call_command(command, "ana", "--days", "7", stdout=out, stderr=err)
    key = out.getvalue().strip()
    token = AccessToken.objects.get()
    assert token.digest == digest(key) and "expires" in err.getvalue() and key not in err.getvalue()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/capture-sets/").status_code == 200
    call_command("revoke_tokens", "ana", "--prefix", key[:8], stdout=out)
    assert "1 token(s) of ana revoked" in out.getvalue()
    assert api.get("/api/v1/capture-sets/").status_code == 401
    with pytest.raises(CommandError, match="--days=0.0: must be a number of days above 0 and at most 36,500"):
        call_command(command, "ana", "--days", "0")
    with pytest.raises(CommandError, match="USER='nobody': no user has this username"):
        call_command(command, "nobody")


def test_the_demo_user_manages_the_demo_project(django_user_model):
    from taxopost import demo

    django_user_model.objects.create_superuser(demo.DEMO_USER, "demo@example.org", demo.DEMO_PASSWORD)
    Project.objects.create(name=demo.PROJECT)
    demo.manage_demo_project()
    demo.manage_demo_project()  # again: the same single membership
    assert Membership.objects.get().role == "project_manager"


# -- the data migration ---------------------------------------------------------------------------

MIGRATION = importlib.import_module("taxopost.access.migrations.0002_existing_staff_and_tokens")


def test_the_migration_keeps_staff_their_access(platform, django_user_model):
    from django.apps import apps

    second = Project.objects.create(name="second")
    runner = django_user_model.objects.create_user("runner", password=PASSWORD, is_staff=True)
    runner.user_permissions.add(Permission.objects.get(codename="add_job"))
    looker = django_user_model.objects.create_user("looker", password=PASSWORD, is_staff=True)
    looker.user_permissions.add(Permission.objects.get(codename="view_occurrence"))
    django_user_model.objects.create_user("plain", password=PASSWORD, is_staff=True)  # no permission: no role
    django_user_model.objects.create_user("reader", password=PASSWORD)
    MIGRATION.keep_staff_access(apps, None)
    roles = set(Membership.objects.values_list("user__username", "project__name", "role"))
    assert roles == {
        ("runner", "default", "project_manager"), ("runner", "second", "project_manager"),
        ("looker", "default", "viewer"), ("looker", "second", "viewer"),
    }  # fmt: skip
    assert second.pk
    MIGRATION.keep_staff_access(apps, None)  # run twice: nothing doubled
    assert Membership.objects.count() == 4


def test_the_migration_hashes_drf_tokens_and_deletes_their_keys(platform, django_user_model):
    from django.apps import apps

    user = django_user_model.objects.create_user("old-client", password=PASSWORD)
    Membership.objects.create(user=user, project=platform.project, role="viewer")
    key = "a" * 40
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, user_id bigint)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [key, "2026-01-01 00:00:00", user.pk])
    MIGRATION.hash_legacy_tokens(apps, SimpleNamespace(connection=connection))
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
    token = AccessToken.objects.get()
    assert (
        token.user == user and token.digest == digest(key) and key not in repr(list(AccessToken.objects.values_list()))
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/capture-sets/").status_code == 200  # the client keeps working


def test_capture_set_names_resolve_only_among_what_the_user_may_view(platform, django_user_model):
    """A near miss's "did you mean" never names another project's capture set."""
    elsewhere = Project.objects.create(name="elsewhere")
    CaptureSet.objects.create(project=elsewhere, name="Secret station · July")
    user = django_user_model.objects.create_user("reader", password=PASSWORD)
    Membership.objects.create(user=user, project=platform.project, role="data_manager")
    client = APIClient()
    client.force_authenticate(user)
    for url in ("/api/v1/occurrences/", "/api/v1/classifications/", "/api/v1/jobs/"):
        response = client.get(url, {"capture_set": "secret station july"})
        assert response.status_code == 400, url
        assert "Secret" not in response.content.decode(), url
    ours = platform.name
    assert client.get("/api/v1/occurrences/", {"capture_set": ours.upper()}).status_code == 200
    body = {"task": "rank_rollup", "scope": {"type": "capture_set", "name": "Secret station · July"}, "dry_run": True}
    response = client.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400 and "Secret" not in response.content.decode().replace(
        "Secret station · July", ""
    ), response.content
    body["scope"]["name"] = ours
    assert client.post("/api/v1/jobs/", body, format="json").status_code == 201
