"""Failed logins per (username, client address): after too many, even the right password is refused.

One rule for the admin's login form and the API's token endpoint. Counters live in Django's
default cache, so several server processes share them only when that cache is shared (Redis,
memcached); the default local-memory cache counts per process.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(username: str, address: str) -> str:
    who = f"{(username or '').strip().lower()}|{address}".encode()
    return "taxopost:login-failures:" + hashlib.sha256(who).hexdigest()


def locked(username: str, address: str) -> bool:
    """True while this username has failed too often from this address."""
    return (cache.get(_key(username, address)) or 0) >= settings.LOGIN_FAILURES_ALLOWED


def failed(username: str, address: str) -> None:
    """Count one failure; the count is forgotten ``LOGIN_LOCK_SECONDS`` after the first one."""
    key = _key(username, address)
    if not cache.add(key, 1, timeout=settings.LOGIN_LOCK_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=settings.LOGIN_LOCK_SECONDS)


def succeeded(username: str, address: str) -> None:
    cache.delete(_key(username, address))


def locked_message() -> str:
    minutes = max(1, round(settings.LOGIN_LOCK_SECONDS / 60))
    return f"Too many failed logins for this account from this address: try again in up to {minutes} minute(s)."
