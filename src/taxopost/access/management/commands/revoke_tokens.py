"""``taxopost manage revoke_tokens USER [--prefix P]``: revoke a user's tokens (all, or the one named)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from taxopost.access.models import AccessToken
from taxopost.access.tokens import revoke


class Command(BaseCommand):
    help = "Revoke USER's API tokens: every one, or the one whose key starts with --prefix."

    def add_arguments(self, parser) -> None:
        parser.add_argument("user", help="username")
        parser.add_argument("--prefix", default="", help="the token's first characters, as the admin lists them")

    def handle(self, *args, user: str, prefix: str, **options) -> None:
        tokens = AccessToken.objects.filter(user__username=user)
        if prefix:
            tokens = tokens.filter(prefix__startswith=prefix[:8])
        if not tokens.exists():
            raise CommandError(f"no token of {user!r}" + (f" starts with {prefix!r}" if prefix else ""))
        self.stdout.write(f"{revoke(tokens)} token(s) of {user} revoked")
