"""Roles and the actions each allows (the checks themselves are in :mod:`taxopost.access.rules`).

A user holds at most one role per project (:class:`~taxopost.access.models.Membership`).
Superusers may do everything everywhere; ``is_staff`` grants nothing here (it only opens the
admin's door). Anyone, anonymous included, may view a project marked ``public``.
"""

from __future__ import annotations

VIEWER, IDENTIFIER, DATA_MANAGER, PROJECT_MANAGER = "viewer", "identifier", "data_manager", "project_manager"
ROLE_CHOICES = [
    (VIEWER, "viewer"),
    (IDENTIFIER, "identifier"),
    (DATA_MANAGER, "data manager"),
    (PROJECT_MANAGER, "project manager"),
]
ROLES = tuple(role for role, _ in ROLE_CHOICES)

#: What a role allows on its project: read everything of it; add, change and withdraw
#: identifications; create, cancel, revert and resume jobs; edit the project, its capture
#: sets, images and detections, and its memberships.
VIEW, IDENTIFY, RUN_JOBS, MANAGE = "view", "identify", "run_jobs", "manage"
ACTIONS = (VIEW, IDENTIFY, RUN_JOBS, MANAGE)
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    VIEWER: frozenset({VIEW}),
    IDENTIFIER: frozenset({VIEW, IDENTIFY}),
    DATA_MANAGER: frozenset({VIEW, IDENTIFY, RUN_JOBS}),
    PROJECT_MANAGER: frozenset({VIEW, IDENTIFY, RUN_JOBS, MANAGE}),
}
#: What anyone may do on a public project.
PUBLIC_ACTIONS = frozenset({VIEW})


def roles_allowing(action: str) -> list[str]:
    """The roles whose holders may do ``action``; a ValueError naming an unknown action."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
    return [role for role in ROLES if action in ROLE_ACTIONS[role]]
