"""Who may do what through the API: the project roles of :mod:`taxopost.access.rules`.

Reading needs the view role on at least one project (or a public project): lists hold the rows
of the projects the user may view, and a row of another project is a 404. Writing (only jobs
are writable) needs the view's ``write_action`` (data manager: ``run_jobs``) on at least one
project to get past the door, then on the project of the job or of its scope.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from taxopost.access.roles import RUN_JOBS, VIEW
from taxopost.access.rules import can, can_anywhere, scoped

#: The refusal of a user with no role anywhere (nothing to read, let alone to write).
NO_ROLE = "This needs a role on a project (docs/access.md)."
#: The refusal of a user who may view the project but not do the write, by the view's write action
#: (the same words as the job creation's own check, taxopost.api.jobs.JobCreateSerializer).
NEEDS_ROLE = {RUN_JOBS: "Running jobs on this project needs the data manager role on it."}


class ProjectAccess(BasePermission):
    """The door of every API view; its refusal says which role is missing.

    ``message`` is set per check (DRF reads it from this instance, made per request): a user who
    holds a role but not the one a write needs is told that role, not that they have none.
    """

    message = NO_ROLE

    def has_permission(self, request, view) -> bool:
        action = VIEW if request.method in SAFE_METHODS else getattr(view, "write_action", VIEW)
        if can_anywhere(request.user, action):
            return True
        if action != VIEW and can_anywhere(request.user, VIEW):
            self.message = NEEDS_ROLE.get(action, NO_ROLE)
        return False

    def has_object_permission(self, request, view, obj) -> bool:
        """Reads are scoped by the queryset already; a write needs its action on the row's project
        (a row the user may not view is a 404 before this, so a refusal here is a missing role)."""
        if request.method in SAFE_METHODS:
            return True
        action = getattr(view, "write_action", VIEW)
        if can(request.user, action, view.project_id_of(obj)):
            return True
        self.message = NEEDS_ROLE.get(action, NO_ROLE)
        return False


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
