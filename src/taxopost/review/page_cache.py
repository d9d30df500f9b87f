"""The expensive parts of the review and evaluation pages, computed once per state of their data.

A capture set's evaluation takes seconds and a job's review summary reads all of the job's
output. Both are cached under a key holding the capture set and a *version* of what they read
(:func:`data_version`): the project's latest job, its jobs' statuses, when they last finished or were reverted,
the newest classification, identification, taxon and taxa list, and the count of edits of
existing rows (an identification withdrawn, a taxon renamed, an image taken out of a capture
set: :mod:`taxopost.observations.edits`). A job that finishes or is reverted, an import, a new
identification or such an edit therefore changes the key: nothing stale is served and nothing
needs deleting (old entries age out after ``TAXOPOST_PAGE_CACHE_SECONDS``).

Concurrent requests for the same page compute it once (:func:`cached`): the threads of one
process wait on a lock, and processes sharing the cache (``TAXOPOST_CACHE_URL``) take turns
through the cache's atomic ``add``; the others read the result when it is stored.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from taxopost.jobs.models import Job
from taxopost.observations.models import CaptureSet, Classification, DataEdits, Identification
from taxopost.taxa.models import TaxaList, Taxon

T = TypeVar("T")

#: How long a computation may hold the cross-process lock before another process takes over
#: (a worker that died mid-computation must not block the page for good).
LOCK_SECONDS = 300
#: How often a request waiting for another process's computation looks for its result.
POLL_SECONDS = 0.01
#: Locks of this process, by hash of the key: a bounded set however many pages there are.
_STRIPES = [threading.Lock() for _ in range(64)]


def data_version(capture_set: CaptureSet) -> str:
    """A short digest of what a capture set's pages read; it changes whenever their content may.

    One query of a few index lookups and a sum over the project's jobs (a cached page costs
    little more than this), its SQL built from the models' table names only.
    """
    models = (Job, Classification, Identification, Taxon, TaxaList, DataEdits)
    table = {model: connection.ops.quote_name(model._meta.db_table) for model in models}
    jobs, of_project = f"FROM {table[Job]} WHERE project_id = %s AND dry_run = %s", [capture_set.project_id, False]
    statuses = [status for status, _ in Job.STATUSES]
    # Every job's status, weighed by its id: a job reopened, queued or started changes it, where
    # no time column need move (a reopened job's finished_at is cleared, say).
    by_status = "CASE status " + " ".join(f"WHEN %s THEN {n}" for n in range(1, len(statuses) + 1)) + " ELSE 0 END"
    columns = [
        (f"(SELECT max(id) {jobs})", of_project), (f"(SELECT max(finished_at) {jobs})", of_project),
        (f"(SELECT max(reverted_at) {jobs})", of_project),
        (f"(SELECT sum(id * {by_status}) {jobs})", statuses + of_project),
        (f"(SELECT count(*) {jobs})", of_project), (f"(SELECT max(id) FROM {table[Classification]})", []),
        (f"(SELECT max(id) FROM {table[Identification]})", []), (f"(SELECT count(*) FROM {table[Identification]})", []),
        (f"(SELECT max(id) FROM {table[Taxon]})", []), (f"(SELECT max(id) FROM {table[TaxaList]})", []),
        (f"(SELECT count(*) FROM {table[TaxaList]})", []), (f"(SELECT max(count) FROM {table[DataEdits]})", []),
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(sql for sql, _ in columns), [v for _, params in columns for v in params])
        parts = [capture_set.pk, *cursor.fetchone()]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def page_key(kind: str, capture_set: CaptureSet, *parts: object, version: str | None = None) -> str:
    """The cache key of one page: its kind, capture set, data version (``version``: one already
    read for this request) and own parameters (hashed)."""
    own = hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
    return f"taxopost:{kind}:{capture_set.pk}:{version or data_version(capture_set)}:{own}"


def cached(key: str, compute: Callable[[], T]) -> T:
    """The value stored under ``key``, else ``compute()`` stored there, computed by one request at a time.

    An exception from ``compute`` is raised to its caller and nothing is stored.
    """
    value = cache.get(key)
    if value is not None:
        return value
    with _STRIPES[hash(key) % len(_STRIPES)]:
        value = cache.get(key)
        if value is not None:  # computed by another thread while this one waited
            return value
        lock, token = f"{key}:computing", uuid.uuid4().hex
        deadline = time.monotonic() + LOCK_SECONDS
        while not cache.add(lock, token, LOCK_SECONDS):  # another process computes it
            time.sleep(POLL_SECONDS)
            value = cache.get(key)
            if value is not None:
                return value
            if time.monotonic() > deadline:
                break
        try:
            value = compute()
            cache.set(key, value, settings.PAGE_CACHE_SECONDS)
        finally:
            if cache.get(lock) == token:
                cache.delete(lock)
    return value
