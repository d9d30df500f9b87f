"""The admin's (and any single-object) edits that the cached pages must see, counted as edits.

Bulk writes count themselves (:mod:`taxopost.observations.edits`); these signals cover saves,
deletes and many-to-many changes of the rows the review and evaluation pages read beyond a job's
output: identifications, taxa, taxa lists and capture sets' images.
"""

from __future__ import annotations

from django.db.models.signals import m2m_changed, post_delete, post_save

from taxopost.observations.edits import count_edit
from taxopost.observations.models import CaptureSet, Identification
from taxopost.taxa.models import TaxaList, Taxon


def _saved(sender, instance, created=False, raw=False, **kwargs) -> None:
    if not raw and not created:  # a new row moves its table's newest id, which the version holds
        count_edit()


def _deleted(sender, instance, **kwargs) -> None:
    count_edit()


def _members_changed(sender, instance, action, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        count_edit()


def connect() -> None:
    """Called once, when the review app is ready."""
    for model in (Identification, Taxon, TaxaList, CaptureSet):
        post_save.connect(_saved, sender=model, dispatch_uid=f"taxopost-edit-saved-{model._meta.label}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"taxopost-edit-deleted-{model._meta.label}")
    for through in (CaptureSet.images.through, TaxaList.taxa.through):
        m2m_changed.connect(_members_changed, sender=through, dispatch_uid=f"taxopost-edit-m2m-{through._meta.label}")
