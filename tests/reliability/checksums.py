"""A fingerprint of every table: proof that a refused input changed nothing."""

from __future__ import annotations

import hashlib

from django.apps import apps


def database_fingerprint() -> dict[str, tuple[int, str]]:
    """``{table: (row count, sha256 of all rows in primary-key order)}`` for taxopost's tables."""
    fingerprint = {}
    for model in apps.get_models():
        if not model.__module__.startswith("taxopost."):
            continue
        digest = hashlib.sha256()
        rows = model.objects.order_by("pk").values_list()
        count = 0
        for row in rows.iterator(chunk_size=2000):
            digest.update(repr(row).encode())
            count += 1
        fingerprint[model._meta.db_table] = (count, digest.hexdigest())
    return fingerprint
