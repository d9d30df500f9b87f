"""Counting the edits of existing rows that cached pages must see (:class:`DataEdits`).

Why: a page's data version (``taxopost.review.page_cache``) follows the newest ids and the jobs;
an identification imported again as withdrawn, a renamed taxon or an image taken out of a
capture set moves none of them. Bulk writes call :func:`count_edit` themselves; the admin's
saves reach it through the review app's signals. Human-paced writes only: a job's chunks never
count (the jobs are in the version already), so no chunk waits on this row.
"""

from __future__ import annotations

from django.db.models import F

from taxopost.observations.models import DataEdits


def count_edit() -> None:
    """One more edit, in the caller's transaction (its pages change when it commits)."""
    counter = DataEdits.objects.filter(pk=1)
    if not counter.update(count=F("count") + 1):
        _, created = DataEdits.objects.get_or_create(pk=1, defaults={"count": 1})
        if not created:  # another transaction created it meanwhile: count this edit on top
            counter.update(count=F("count") + 1)
