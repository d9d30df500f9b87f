"""Granting and revoking roles: what ``taxopost manage grant_role`` / ``revoke_role`` and the demo call."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from taxopost.access.models import Membership
from taxopost.access.roles import ROLES
from taxopost.errors import InputError
from taxopost.observations.models import Project


def grant_role(username: str, project_name: str, role: str) -> tuple[Membership, bool]:
    """Give ``username`` the ``role`` on ``project_name`` (replacing the role held before); True if new."""
    if role not in ROLES:
        raise InputError("ROLE", role, f"must be one of {', '.join(ROLES)}")
    user, project = _user(username), _project(project_name)
    membership, created = Membership.objects.update_or_create(user=user, project=project, defaults={"role": role})
    return membership, created


def revoke_role(username: str, project_name: str) -> str | None:
    """Remove ``username``'s membership of ``project_name``; returns the role it held, as shown (None: none)."""
    user, project = _user(username), _project(project_name)
    membership = Membership.objects.filter(user=user, project=project).first()
    if membership is None:
        return None
    membership.delete()
    return membership.get_role_display()


def _user(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InputError("USER", username, "no user has this username")
    return user


def _project(name: str) -> Project:
    project = Project.objects.filter(name=name).first()
    if project is None:
        raise InputError("PROJECT", name, "no project has this name")
    return project
