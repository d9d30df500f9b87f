"""Login attempts per (username, client address): after too many failures, even the right password is refused.

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


def attempt(username: str, address: str) -> bool:
    """Count one login attempt of this username from this address, before its password is
    checked; False when it is over the limit: refuse it without checking the password.

    Counted first, in one statement that locks the row, so that attempts sent at the same
    moment cannot all pass a check made before any of them failed: of any number of them, at
    most ``LOGIN_FAILURES_ALLOWED`` get their password checked. A success clears the count
    (:func:`succeeded`); the count is forgotten ``LOGIN_LOCK_SECONDS`` after its first attempt.
    """
    return _count(_key(username, address)) <= settings.LOGIN_FAILURES_ALLOWED


def _count(key: str) -> int:
    """The key's attempts in the window, this one included (committed before the password is checked)."""
    start = _window_start()
    with transaction.atomic():
        current = LoginFailures.objects.filter(key=key, first_at__gt=start)
        if current.update(count=F("count") + 1):  # the row stays locked until this commits
            return current.values_list("count", flat=True).get()
        LoginFailures.objects.filter(first_at__lte=start).delete()  # this key's old count, and anyone's
        try:
            with transaction.atomic():
                LoginFailures.objects.create(key=key, first_at=timezone.now())
            return 1
        except IntegrityError:  # a concurrent attempt of the same username and address made it first
            LoginFailures.objects.filter(key=key).update(count=F("count") + 1)
            return LoginFailures.objects.filter(key=key).values_list("count", flat=True).get()


def succeeded(username: str, address: str) -> None:
    LoginFailures.objects.filter(key=_key(username, address)).delete()


def locked_message() -> str:
    minutes = max(1, round(settings.LOGIN_LOCK_SECONDS / 60))
    return f"Too many failed logins for this account from this address: try again in up to {minutes} minute(s)."
