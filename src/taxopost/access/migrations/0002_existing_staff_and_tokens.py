"""Nobody loses what they could do before roles existed, and no token stays in clear.

- A staff account that could run or change jobs (``jobs.add_job`` / ``jobs.change_job``, given
  to it or to one of its groups) becomes project manager of every existing project; one that
  could only view the data (a ``view_`` permission on observations or jobs) becomes viewer of
  every project. Superusers need no role. Plain accounts get none: grant them one with
  ``taxopost manage grant_role``.
- Tokens of DRF's former token table become hashed tokens (same key, so clients keep working,
  expiring after ``TAXOPOST_TOKEN_TTL_DAYS``), and the keys in clear are deleted from that table.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.db.models import Q
from django.utils import timezone

JOB_PERMISSIONS = ("add_job", "change_job")
LEGACY_TOKENS = "authtoken_token"


def _with_permission(user_model, app_labels, codenames=None, prefix=None):
    def match(path):
        q = Q(**{f"{path}__content_type__app_label__in": app_labels})
        if codenames is not None:
            q &= Q(**{f"{path}__codename__in": codenames})
        if prefix is not None:
            q &= Q(**{f"{path}__codename__startswith": prefix})
        return q

    return user_model.objects.filter(is_staff=True, is_superuser=False, is_active=True).filter(
        match("user_permissions") | match("groups__permissions")
    )


def keep_staff_access(apps, schema_editor):
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    project_model = apps.get_model("observations", "Project")
    membership = apps.get_model("access", "Membership")
    projects = list(project_model.objects.all())
    if not projects:
        return
    managers = set(_with_permission(user_model, ["jobs"], JOB_PERMISSIONS).values_list("pk", flat=True))
    viewers = set(_with_permission(user_model, ["observations", "jobs"], prefix="view_").values_list("pk", flat=True))
    rows = [
        membership(user_id=user_id, project=project, role="project_manager" if user_id in managers else "viewer")
        for user_id in sorted(managers | viewers)
        for project in projects
    ]
    membership.objects.bulk_create(rows, ignore_conflicts=True)


def hash_legacy_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TOKENS not in connection.introspection.table_names():
        return
    token_model = apps.get_model("access", "AccessToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {LEGACY_TOKENS}")
        legacy = cursor.fetchall()
        expires = timezone.now() + timedelta(days=getattr(settings, "TOKEN_TTL_DAYS", 90))
        token_model.objects.bulk_create(
            [
                token_model(
                    user_id=user_id,
                    name="from the former token table",
                    prefix=key[:8],
                    digest=hashlib.sha256(key.encode("utf-8")).hexdigest(),
                    expires_at=expires,
                )
                for key, user_id in legacy
            ],
            ignore_conflicts=True,
        )
        cursor.execute(f"DELETE FROM {LEGACY_TOKENS}")


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0001_memberships_and_tokens"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("jobs", "0002_chunks"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(keep_staff_access, migrations.RunPython.noop),
        migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop),
    ]
