"""``taxopost manage create_token USER [--name N] [--days D]``: a new API token, its key printed once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from taxopost.access.tokens import create_token
from taxopost.errors import InputError


class Command(BaseCommand):
    help = "Make an API token for USER and print its key (shown only now: only its digest is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("user", help="username")
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument("--days", type=float, default=None, help="days until it expires (TAXOPOST_TOKEN_TTL_DAYS)")

    def handle(self, *args, user: str, name: str, days: float | None, **options) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(InputError("USER", user, "no user has this username").message)
        try:
            token, key = create_token(owner, name=name, days=days)
        except InputError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"token {token.prefix}… for {owner}, expires {token.expires_at:%Y-%m-%d %H:%M} UTC")
        self.stdout.write(key)
