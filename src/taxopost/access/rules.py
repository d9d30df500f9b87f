"""The one check every entrance calls: may this user do this action on this project?

Superusers may do everything everywhere; ``is_staff`` grants nothing here (it only opens the
admin's door). Anyone, anonymous included, may view a project marked ``public``; everything else
comes from the user's :class:`~taxopost.access.models.Membership` of the project.
"""

from __future__ import annotations

from django.db import models

from taxopost.access.models import Membership
from taxopost.access.roles import PUBLIC_ACTIONS, VIEW, roles_allowing
from taxopost.observations.models import Project


def projects_where(user, action: str) -> models.QuerySet[Project]:
    """The projects on which ``user`` (anonymous too) may do ``action``, as a subquery-ready queryset."""
    roles = roles_allowing(action)
    if user is not None and user.is_active and user.is_superuser:
        return Project.objects.all()
    allowed = models.Q(public=True) if action in PUBLIC_ACTIONS else models.Q(pk__in=[])
    if user is not None and user.is_authenticated and user.is_active:
        allowed |= models.Q(pk__in=_memberships(user, roles))
    return Project.objects.filter(allowed)


def visible_projects(user) -> models.QuerySet[Project]:
    return projects_where(user, VIEW)


def can(user, action: str, project: Project | int | None) -> bool:
    """May ``user`` do ``action`` on ``project`` (a row or its id)? None (a job whose project was deleted)
    is the superusers' alone."""
    roles = roles_allowing(action)
    if user is not None and user.is_active and user.is_superuser:
        return True
    if project is None:
        return False
    project_id = project.pk if isinstance(project, Project) else project
    if action in PUBLIC_ACTIONS and Project.objects.filter(pk=project_id, public=True).exists():
        return True
    if user is None or not (user.is_authenticated and user.is_active):
        return False
    return _memberships(user, roles).filter(project_id=project_id).exists()


def can_anywhere(user, action: str) -> bool:
    """May ``user`` do ``action`` on at least one project? (What a list page or a menu entry needs.)

    A superuser may, even before any project exists (the first one is theirs to add).
    """
    if user is not None and user.is_active and user.is_superuser:
        roles_allowing(action)  # still refuses an unknown action
        return True
    return projects_where(user, action).exists()


def scoped(queryset: models.QuerySet, user, path: str, action: str = VIEW) -> models.QuerySet:
    """``queryset`` narrowed to rows whose project (reached by the lookup ``path``) allows ``action``.

    Superusers get the queryset unchanged, so their lists cost no extra join.
    """
    if user is not None and user.is_active and user.is_superuser:
        return queryset
    return queryset.filter(**{f"{path}__in": projects_where(user, action).values("pk")})


def project_of(model: type[models.Model], pk, path: str) -> int | None:
    """The id of the project of row ``pk`` of ``model``, reached by the lookup ``path``."""
    return model._default_manager.filter(pk=pk).values_list(path, flat=True).first()


def _memberships(user, roles: list[str]) -> models.QuerySet:
    return Membership.objects.filter(user=user, role__in=roles).values("project_id")
