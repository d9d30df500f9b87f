"""Who may do what through the API: the project roles of :mod:`taxopost.access.rules`.

Reading needs the view role on at least one project (or a public project): lists hold the rows
of the projects the user may view, and a row of another project is a 404. Writing (only jobs
are writable) needs the view's ``write_action`` (data manager: ``run_jobs``) on at least one
project to get past the door, then on the project of the job or of its scope.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from taxopost.access.roles import VIEW
from taxopost.access.rules import can, can_anywhere, scoped


class ProjectAccess(BasePermission):
    message = "This needs a role on a project (docs/access.md)."

    def has_permission(self, request, view) -> bool:
        action = VIEW if request.method in SAFE_METHODS else getattr(view, "write_action", VIEW)
        return can_anywhere(request.user, action)

    def has_object_permission(self, request, view, obj) -> bool:
        """Reads are scoped by the queryset already; a write needs its action on the row's project."""
        if request.method in SAFE_METHODS:
            return True
        return can(request.user, getattr(view, "write_action", VIEW), view.project_id_of(obj))


class ProjectScopedViewSet:
    """A viewset mixin: the queryset holds rows of the projects the user may view.

    ``project_path`` is the lookup from the model to its project. Viewsets of reference data
    that belongs to no project (taxa, taxa lists, algorithms, tasks) do without it: whoever may
    view some project reads them.
    """

    project_path: str = "project"

    def get_queryset(self):
        return scoped(super().get_queryset(), self.request.user, self.project_path)

    def project_id_of(self, obj) -> int | None:
        return getattr(obj, "project_id", None)
