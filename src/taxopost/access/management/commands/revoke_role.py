"""``taxopost manage revoke_role USER PROJECT``: remove a user's role on a project."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from taxopost.access.memberships import revoke_role
from taxopost.errors import InputError


class Command(BaseCommand):
    help = "Remove USER's membership of PROJECT (whatever its role)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("user", help="username")
        parser.add_argument("project", help="project name")

    def handle(self, *args, user: str, project: str, **options) -> None:
        try:
            role = revoke_role(user, project)
        except InputError as exc:
            raise CommandError(exc.message) from None
        if role is None:
            raise CommandError(f"{user} has no role on {project}: nothing to revoke")
        self.stdout.write(f"{user} is no longer {role} of {project}")
