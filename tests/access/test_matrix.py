"""The permission matrix: every row (who) against every column (each API route and method, each
admin page and action, each page outside the admin), one assertion per cell.

Columns are generated from the URL conf, the router and the admin's registry; a route, a model
admin or an action that the rules below do not cover fails ``test_every_route_is_in_the_matrix``,
so a new entrance cannot escape the matrix. The expectations are written out from the roles'
promise (docs/access.md), never read back from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client, RequestFactory
from django.urls import URLResolver, get_resolver, reverse

from tests.access.world import PASSWORD, ROWS, Row, build_world

pytestmark = pytest.mark.django_db

# -- the columns, from the URL conf -----------------------------------------------------------------


def url_patterns(patterns=None, prefix: str = "", namespace: str = ""):
    """(route text, namespaced name, pattern) of every URL the project serves."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            space = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern), space)
        else:
            yield prefix + str(pattern.pattern), f"{namespace}{pattern.name}" if pattern.name else None, pattern


@dataclass(frozen=True)
class Column:
    name: str
    check: Callable  # (row, client, world) -> list of problems ("" for none)


def denied_api(row: Row) -> int:
    return 403 if row.logged_in else 401


def api_columns() -> list[Column]:
    columns = []
    for route, name, pattern in url_patterns():
        if not route.startswith("api/v1/") or "(?P<format>" in route:
            continue
        callback = pattern.callback
        actions = getattr(callback, "actions", None) or {"get": "get"}
        for method, action in actions.items():
            column = Column(f"{method.upper()} {name} ({action})", api_rule(name, method, action))
            if column.name not in {c.name for c in columns}:  # the root is served with and without a slash
                columns.append(column)
    return columns


REFERENCE = ("api:taxon", "api:taxalist", "api:algorithm", "api:task")
SCOPED = ("api:captureset", "api:occurrence", "api:classification", "api:job")


def api_rule(name: str, method: str, action: str) -> Callable:
    base = name.rsplit("-", 1)[0]

    def check(row: Row, client: Client, world) -> list[str]:
        url = api_url(name, base, world, row, action)
        if name in ("api:schema", "api:swagger-ui"):  # they describe the API, not its data
            return expect(client.get(url), 200)
        if name == "api:api-root":
            return expect(client.get(url), 200 if "view" in row.anywhere else denied_api(row))
        if base in REFERENCE:
            return expect(client.get(url), 200 if "view" in row.anywhere else denied_api(row))
        if base in SCOPED and action == "list":
            response = client.get(url, {"page_size": 500})
            problems = expect(response, 200 if "view" in row.anywhere else denied_api(row))
            if response.status_code == 200:
                listed = world.ids[base] in {item["id"] for item in response.json()["results"]}
                problems += [] if listed == ("view" in row.here) else [f"our row listed: {listed}"]
            return problems
        if base in SCOPED and action == "retrieve":
            wanted = 200 if "view" in row.here else 404 if "view" in row.anywhere else denied_api(row)
            return expect(client.get(url), wanted)
        if name == "api:job-list" and action == "create":
            from taxopost.jobs.models import Job

            before = Job.objects.count()
            body = {
                "task": "rank_rollup",
                "scope": {"type": "capture_set", "id": world.capture_set.pk},
                "dry_run": True,
            }
            response = client.post(url, body, content_type="application/json")
            wanted = 201 if "run" in row.here else denied_job_write(row, create=True)
            created = Job.objects.count() - before
            return expect(response, wanted) + ([] if created == (wanted == 201) else [f"{created} job(s) created"])
        if base == "api:job" and action in ("cancel", "revert", "resume"):
            job = {"cancel": world.job_created, "revert": world.job_done, "resume": world.job_failed}[action]
            state = job_state(job)
            response = client.post(url)
            wanted = 200 if "run" in row.here else denied_job_write(row, create=False)
            changed = job_state(job) != state
            return expect(response, wanted) + ([] if changed == (wanted == 200) else [f"job changed: {changed}"])
        if base == "api:token":
            if action == "create":
                credentials = {"username": row.name if row.logged_in else "nobody", "password": PASSWORD}
                return expect(
                    client.post(url, credentials, content_type="application/json"), 201 if row.logged_in else 400
                )
            response = client.post(url) if method == "post" else client.get(url)
            problems = expect(response, 200 if row.logged_in else 401)
            if action == "revoke" and row.logged_in:
                world.tokens[row.name].refresh_from_db()
                problems += [] if world.tokens[row.name].revoked_at else ["token not revoked"]
            return problems
        return [f"no rule for {method.upper()} {name} ({action}): add it to the matrix"]

    return check


def denied_job_write(row: Row, *, create: bool) -> int:
    if not row.logged_in:
        return 401
    if "run" not in row.anywhere or "view" in row.here:
        return 403
    return 400 if create else 404  # the scope or job of a project one may not view does not exist for them


def job_state(job) -> tuple:
    """What an operation on the job changes (its log gets a line for each, whatever the outcome)."""
    job.refresh_from_db()
    return job.status, job.reverted_at, job.cancel_requested, job.logs.count()


def api_url(name: str, base: str, world, row: Row, action: str) -> str:
    pattern = next(p for _, n, p in url_patterns() if n == name)
    kwargs = {}
    for group in pattern.pattern.regex.groupindex:
        if base == "api:task":
            kwargs[group] = "rank_rollup"
        elif base == "api:token":
            kwargs[group] = world.tokens[row.name if row.logged_in else "superuser"].pk
        elif base == "api:job" and action in ("cancel", "resume"):
            kwargs[group] = (world.job_created if action == "cancel" else world.job_failed).pk
        else:
            kwargs[group] = world.ids.get(base) or world.reference_ids[base]
    return reverse(name, kwargs=kwargs)


def expect(response, status: int) -> list[str]:
    return [] if response.status_code == status else [f"status {response.status_code}, expected {status}"]


# -- admin pages ------------------------------------------------------------------------------------

# What each admin needs on the project of its row: change (else the page is read-only), add, delete.
# Kinds: "scoped" (seen with a role there), "managed" (seen by its managers), "shared", "own", "django".
# "super": superusers only; "never": nobody; "staff": any staff account; "own": the row's owner.
ADMIN_POLICY = {
    "observations.project": ("scoped", "manage", "super", "super"),
    "observations.sourceimage": ("scoped", "manage", "manage", "manage"),
    "observations.captureset": ("scoped", "manage", "manage", "manage"),
    "observations.occurrence": ("scoped", "never", "manage", "manage"),
    "observations.detection": ("scoped", "manage", "manage", "manage"),
    "observations.classification": ("scoped", "never", "never", "manage"),
    "observations.identification": ("scoped", "identify", "identify", "identify"),
    "observations.determinationchange": ("scoped", "never", "never", "manage"),
    "jobs.job": ("scoped", "never", "never", "never"),
    "jobs.joblog": ("scoped", "never", "never", "manage"),
    "access.membership": ("managed", "manage", "manage", "manage"),
    "access.accesstoken": ("own", "own", "staff", "never"),
    "taxa.taxon": ("shared", "super", "super", "super"),
    "taxa.taxalist": ("shared", "super", "super", "super"),
    "ml.algorithm": ("shared", "super", "super", "super"),
    "ml.categorymap": ("shared", "never", "never", "super"),
    "auth.user": ("django", "super", "super", "super"),
    "auth.group": ("django", "super", "super", "super"),
}
ADMIN_PAGES = ("changelist", "add", "change", "history", "delete")
#: Admin routes that are not a model's page, with why they are not columns of their own.
ADMIN_SITE_ROUTES = {
    "admin:index": "a column (every staff account)",
    "admin:app_list": "a column per app",
    "admin:login": "tests/access/test_login_limits.py",
    "admin:logout": "ends a session; needs none",
    "admin:password_change": "Django's own, for every staff account",
    "admin:password_change_done": "Django's own, for every staff account",
    "admin:jsi18n": "the admin's translations, no data",
    "admin:autocomplete": "answers with the related admin's view permission (its changelist column)",
    "admin:view_on_site": "no model here has get_absolute_url",
}


def allowed(need: str, row: Row, *, here: bool = True) -> bool:
    if need == "never":
        return False
    if need == "super":
        return row.superuser
    if need == "staff":
        return row.logged_in
    return need in (row.here if here else row.anywhere)


def admin_columns() -> list[Column]:
    columns = []
    for model in admin.site._registry:
        label = model._meta.label_lower
        for page in ADMIN_PAGES:
            columns.append(Column(f"admin {label} {page}", admin_page_rule(model, page)))
    apps = {model._meta.app_label for model in admin.site._registry}
    columns.append(
        Column("admin index", lambda row, client, world: expect_admin(client.get(reverse("admin:index")), row, 200))
    )
    for app in sorted(apps):
        columns.append(Column(f"admin app {app}", app_list_rule(app)))
    return columns


def expect_admin(response, row: Row, status: int) -> list[str]:
    if not row.logged_in:
        location = response.get("Location", "")
        return (
            []
            if response.status_code == 302 and "/admin/login/" in location
            else [f"anonymous got {response.status_code}"]
        )
    return expect(response, status)


def app_list_rule(app: str) -> Callable:
    def check(row: Row, client: Client, world) -> list[str]:
        models = [m for m in admin.site._registry if m._meta.app_label == app]
        visible = any(admin_visible(ADMIN_POLICY[m._meta.label_lower][0], row) for m in models)
        return expect_admin(client.get(reverse("admin:app_list", args=[app])), row, 200 if visible else 404)

    return check


def admin_visible(kind: str, row: Row) -> bool:
    """May the row open this admin's list at all?"""
    return {"scoped": "view" in row.anywhere, "managed": "manage" in row.anywhere, "shared": "view" in row.anywhere,
            "own": row.logged_in, "django": row.superuser}[kind]  # fmt: skip


def admin_page_rule(model, page: str) -> Callable:
    def check(row: Row, client: Client, world) -> list[str]:
        label = model._meta.label_lower
        if label not in ADMIN_POLICY:
            return [f"no policy for the admin of {label}: add it to the matrix"]
        kind, change, add, delete = ADMIN_POLICY[label]
        obj = world.objects[model]
        opts = model._meta
        url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_{page}", args=[] if page in ("changelist", "add") else [obj.pk]
        )
        response = client.get(url)
        if not row.logged_in:
            return expect_admin(response, row, 302)
        if kind == "django":
            return expect(response, 200 if row.superuser else 403)
        if page == "changelist":
            problems = expect(response, 200 if admin_visible(kind, row) else 403)
            if response.status_code == 200:
                listed = obj.pk in {item.pk for item in response.context["cl"].result_list}
                problems += [] if listed == sees_row(kind, row) else [f"our row listed: {listed}"]
            return problems
        if page == "add":
            return expect(response, 200 if allowed(add, row, here=False) else 403)
        # Django's order: the change page asks for the view permission before it finds the row, the
        # delete page for the delete permission, the history page finds the row first. A row the
        # user may not see does not exist for them: back to the admin's index (302).
        if kind == "shared" and not sees_row(kind, row):  # the row exists, the user may not see it
            return expect(response, 403)
        if not sees_row(kind, row):
            asked_first = {"change": admin_visible(kind, row), "delete": allowed(delete, row, here=False),
                           "history": True}[page]  # fmt: skip
            return expect(response, 302 if asked_first else 403)
        if page in ("change", "history"):
            problems = expect(response, 200)
            if page == "change" and response.status_code == 200:
                editable = bool(response.context.get("has_change_permission"))
                wanted = allowed(change, row) or (change == "own")
                problems += [] if editable == wanted else [f"editable: {editable}"]
            return problems
        return expect(response, 200 if allowed(delete, row) else 403)

    return check


def sees_row(kind: str, row: Row) -> bool:
    """Does the fixture's row of this admin exist for the user?"""
    if kind == "own":
        return row.superuser  # the row is the superuser's own token
    if kind == "managed":
        return "manage" in row.here
    return "view" in (row.here if kind == "scoped" else row.anywhere)


# -- admin actions ----------------------------------------------------------------------------------


def admin_action_columns() -> list[Column]:
    from django.contrib.auth import get_user_model

    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(is_superuser=True, is_staff=True, is_active=True)
    columns = []
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.get_actions(request):
            columns.append(Column(f"admin action {model._meta.label_lower} {name}", admin_action_rule(model, name)))
    return columns


def admin_action_rule(model, name: str) -> Callable:
    def check(row: Row, client: Client, world) -> list[str]:
        from taxopost.jobs.models import Job

        label = model._meta.label_lower
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        if name == "delete_selected":
            kind, _, _, delete = ADMIN_POLICY[label]
            obj = world.objects[model]
            response = client.post(changelist, {"action": name, ACTION_CHECKBOX_NAME: [obj.pk], "index": 0})
            confirmation = shown(response, "queryset", obj)
            wanted = allowed(delete, row) if kind != "django" else row.superuser
            still = model._default_manager.filter(pk=obj.pk).exists()
            return ([] if confirmation == wanted else [f"confirmation page shown: {confirmation}"]) + (
                [] if still else ["deleted without confirmation"]
            )
        if name.startswith("run_"):
            scope = world.objects[model]
            before = Job.objects.count()
            response = client.post(changelist, {"action": name, ACTION_CHECKBOX_NAME: [scope.pk], "index": 0})
            form = shown(response, "scopes", scope) and "form" in response.context
            problems = [] if form == ("run" in row.here) else [f"run form shown: {form}"]
            return problems + ([] if Job.objects.count() == before else ["a job was created by the first POST"])
        if name in ("cancel_jobs", "revert_jobs", "resume_jobs"):
            job = {"cancel_jobs": world.admin_job_created, "revert_jobs": world.job_done,
                   "resume_jobs": world.admin_job_failed}[name]  # fmt: skip
            state = job_state(job)
            response = client.post(changelist, {"action": name, ACTION_CHECKBOX_NAME: [job.pk], "index": 0})
            if name == "revert_jobs":  # asks first
                asked = shown(response, "jobs", job) and "Yes, revert" in response.content.decode()
                return [] if asked == ("run" in row.here) else [f"confirmation shown: {asked}"]
            changed = job_state(job) != state
            return [] if changed == ("run" in row.here) else [f"job changed: {changed}"]
        if name == "revoke_tokens":
            token = world.tokens["superuser"]
            client.post(changelist, {"action": name, ACTION_CHECKBOX_NAME: [token.pk], "index": 0})
            token.refresh_from_db()
            revoked = token.revoked_at is not None
            return [] if revoked == row.superuser else [f"revoked: {revoked}"]
        return [f"no rule for the admin action {name} of {label}: add it to the matrix"]

    return check


def shown(response, key: str, obj) -> bool:
    """Is this the action's intermediate page, and does it list ``obj``?"""
    if response.status_code != 200 or response.context is None or key not in response.context:
        return False
    return obj.pk in {row.pk for row in response.context[key]}


# -- pages outside the admin and the API -----------------------------------------------------------


def page_columns() -> list[Column]:
    columns = []
    for route, name, _ in url_patterns():
        if route.startswith(("api/", "admin/")):
            continue
        columns.append(Column(f"page {name or route!r}", page_rule(name, route)))
    return columns


def page_rule(name: str | None, route: str) -> Callable:
    def check(row: Row, client: Client, world) -> list[str]:
        if route == "":
            return expect(client.get("/"), 302)
        if name == "login":  # the login form, for everyone (tests/access/test_login_limits.py)
            return expect(client.get(reverse("login")), 200)
        if name in ("review:capture-set", "evaluation:capture-set"):
            response = client.get(reverse(name, args=[world.capture_set.pk]))
            if "view" in row.here:  # the evaluation has nothing to evaluate here: a 400 that says so
                return expect(response, 200 if name.startswith("review") else 400)
            if not row.logged_in:
                return (
                    []
                    if response.status_code == 302 and "/login/" in response["Location"]
                    else [f"anonymous got {response.status_code}"]
                )
            return expect(response, 404)
        return [f"no rule for the page {name or route!r}: add it to the matrix"]

    return check


# -- the matrix -----------------------------------------------------------------------------------


def columns() -> list[Column]:
    return [*api_columns(), *admin_columns(), *admin_action_columns(), *page_columns()]


@pytest.fixture
def world(platform, django_user_model, sync_jobs, settings, request):
    # Seven accounts and a token request per row: a deliberately slow password hash would dominate.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = build_world(platform, django_user_model, public=request.param)
    world.ids = {
        "api:captureset": platform.pk,
        "api:occurrence": world.occurrence.pk,
        "api:classification": world.objects[next(m for m in world.objects if m.__name__ == "Classification")].pk,
        "api:job": world.job_done.pk,
    }
    world.reference_ids = {
        "api:taxon": world.objects[next(m for m in world.objects if m.__name__ == "Taxon")].pk,
        "api:taxalist": world.objects[next(m for m in world.objects if m.__name__ == "TaxaList")].pk,
        "api:algorithm": world.objects[next(m for m in world.objects if m.__name__ == "Algorithm")].pk,
    }
    return world


@pytest.mark.parametrize("world", [False, True], ids=["private", "public"], indirect=True)
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_permission_matrix(world, row):
    """Every column for this row; all the cells that fail are reported together."""
    client = Client()
    if row.logged_in:
        client.force_login(world.users[row.name])
    if world.project.public:
        row = row.on_public()
    failures = []
    for column in columns():
        problems = column.check(row, client, world)
        failures += [f"{column.name}: {problem}" for problem in problems]
    assert not failures, f"{row.name}: {len(failures)} cell(s) wrong:\n" + "\n".join(failures)


def test_every_route_is_in_the_matrix():
    """A route, an admin or an action without a rule would pass unchecked: each must have one."""
    problems = []
    for _, name, _pattern in url_patterns():
        if name and name.startswith("admin:"):
            covered = name in ADMIN_SITE_ROUTES or any(name.endswith(f"_{page}") for page in ADMIN_PAGES)
            if not covered:
                problems.append(f"admin route {name} has no column")
    for model in admin.site._registry:
        if model._meta.label_lower not in ADMIN_POLICY:
            problems.append(f"the admin of {model._meta.label_lower} has no policy")
    api_names = {
        name for route, name, _ in url_patterns() if route.startswith("api/v1/") and "(?P<format>" not in route
    }
    assert {c.name.split(" ")[1] for c in api_columns()} == api_names
    assert len(columns()) > 150
    assert not problems, "\n".join(problems)
