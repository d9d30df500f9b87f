"""The per-process session cache of ``taxopost serve``: Django's memory cache, each entry kept a few seconds at most.

Why: ``taxopost serve`` reads sessions through a cache in its own memory (``settings._session_engine``).
A logout in another process on the same database (a second server, a gunicorn beside it) ends the
session there and in the database, not in this memory: bounding how long an entry lives bounds how
long this process may still take the session, while a user's requests seconds apart are served
from memory.
"""

from __future__ import annotations

import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache

#: Longest an entry is kept, whatever it is stored with (a session is stored for its whole age).
MAX_SECONDS = 10.0


class BoundedLocMemCache(LocMemCache):
    """:class:`LocMemCache` whose entries expire within :data:`MAX_SECONDS`."""

    def get_backend_timeout(self, timeout: float | None = DEFAULT_TIMEOUT) -> float:
        expiry = super().get_backend_timeout(timeout)  # an instant; None: never
        bound = time.time() + MAX_SECONDS
        return bound if expiry is None else min(expiry, bound)
