"""``taxopost manage grant_role USER PROJECT ROLE``: give a user a role on a project."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from taxopost.access.memberships import grant_role
from taxopost.access.roles import ROLES
from taxopost.errors import InputError


class Command(BaseCommand):
    help = f"Give USER the ROLE on PROJECT ({', '.join(ROLES)}), replacing the role held before."

    def add_arguments(self, parser) -> None:
        parser.add_argument("user", help="username")
        parser.add_argument("project", help="project name")
        parser.add_argument("role", help=", ".join(ROLES))

    def handle(self, *args, user: str, project: str, role: str, **options) -> None:
        try:
            membership, created = grant_role(user, project, role)
        except InputError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{membership}{'' if created else ' (role replaced)'}")
