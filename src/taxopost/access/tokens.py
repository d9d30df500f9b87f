"""API tokens: made with a random key shown once, stored as its SHA-256, expiring, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from taxopost.access.models import AccessToken
from taxopost.errors import InputError

#: last_used_at is written at most this often per token (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_token(user, *, name: str = "", days: float | None = None) -> tuple[AccessToken, str]:
    """A new token for ``user`` and its key (the only time the key exists outside the client).

    ``days`` defaults to ``TAXOPOST_TOKEN_TTL_DAYS``.
    """
    token = AccessToken(user=user, name=name)
    key = issue(token, days=days)
    token.save()
    return token, key


#: The longest life a token may be given (a hundred years): a date past year 9999 cannot be stored.
MAX_DAYS = 36_500


def issue(token: AccessToken, *, days: float | None = None) -> str:
    """Give an unsaved token a new random key and its expiry; returns the key (never stored)."""
    days = settings.TOKEN_TTL_DAYS if days is None else days
    if not 0 < days <= MAX_DAYS:
        raise InputError("--days", days, f"must be a number of days above 0 and at most {MAX_DAYS:,}")
    key = secrets.token_hex(20)
    token.prefix, token.digest = key[:8], digest(key)
    token.expires_at = timezone.now() + timedelta(days=days)
    return key


def find_token(key: str) -> AccessToken | None:
    """The token of ``key`` (valid or not), with its user."""
    return AccessToken.objects.select_related("user").filter(digest=digest(key)).first()


def touch(token: AccessToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)


def revoke(tokens) -> int:
    """Revoke every token of a queryset not revoked yet; returns how many were."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
