"""Failed logins per (username, client address): after too many, even the right password is refused.

One rule for the admin's login form and the API's token endpoint. The counts are rows of
:class:`~taxopost.access.models.LoginFailures`: shared by every server process whatever the
cache, and out of reach of the cache's eviction (failing with many other usernames in between
used to push a count out of the local-memory cache and start it again).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from taxopost.access.models import LoginFailures


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(username: str, address: str) -> str:
    who = f"{(username or '').strip().lower()}|{address}".encode()
    return hashlib.sha256(who).hexdigest()


def _window_start() -> datetime:
    """Failures that began before this are forgotten."""
    return timezone.now() - timedelta(seconds=settings.LOGIN_LOCK_SECONDS)


def locked(username: str, address: str) -> bool:
    """True while this username has failed too often from this address."""
    return LoginFailures.objects.filter(
        key=_key(username, address), first_at__gt=_window_start(), count__gte=settings.LOGIN_FAILURES_ALLOWED
    ).exists()


def failed(username: str, address: str) -> None:
    """Count one failure; the count is forgotten ``LOGIN_LOCK_SECONDS`` after the first one."""
    key, start = _key(username, address), _window_start()
    with transaction.atomic():
        if LoginFailures.objects.filter(key=key, first_at__gt=start).update(count=F("count") + 1):
            return
        LoginFailures.objects.filter(first_at__lte=start).delete()  # this key's old count, and anyone's
        try:
            with transaction.atomic():
                LoginFailures.objects.create(key=key, first_at=timezone.now())
        except IntegrityError:  # a concurrent failure of the same username and address made it first
            LoginFailures.objects.filter(key=key).update(count=F("count") + 1)


def succeeded(username: str, address: str) -> None:
    LoginFailures.objects.filter(key=_key(username, address)).delete()


def locked_message() -> str:
    minutes = max(1, round(settings.LOGIN_LOCK_SECONDS / 60))
    return f"Too many failed logins for this account from this address: try again in up to {minutes} minute(s)."
