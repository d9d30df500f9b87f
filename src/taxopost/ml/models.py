"""Algorithms and their label spaces (category maps)."""

from __future__ import annotations

import hashlib
import json

from django.core.exceptions import ValidationError
from django.db import models

from taxopost.errors import InputError
from taxopost.tasks.registry import CLASSIFICATION, check_algorithm_kind, get_spec
from taxopost.taxa.models import Taxon


class CategoryMap(models.Model):
    """A classifier's label space: labels in class-index order, each resolved to a taxon.

    ``taxa`` holds the taxon id of each class (``None`` for a label excluded as unresolved).
    Identical label spaces are stored once (``digest`` of the labels).
    """

    digest = models.CharField(max_length=64, unique=True)
    labels = models.JSONField()
    taxa = models.JSONField()
    n_classes = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.n_classes} classes ({self.digest[:10]})"

    @staticmethod
    def digest_of(labels: list[str]) -> str:
        return hashlib.sha256(json.dumps(labels, separators=(",", ":")).encode()).hexdigest()


def validate_task_type(value: str) -> None:
    try:
        check_algorithm_kind(value)
    except InputError as exc:
        raise ValidationError(exc.reason) from None


class Algorithm(models.Model):
    """A classifier or a post-processing step, keyed by what makes its output unique.

    Post-processing algorithms are keyed by task and config (``rank_rollup-<hash>``): the same
    settings always write under the same algorithm, so re-runs are recognised. ``task_type`` is
    checked against the task registry, not a list of choices: a new task needs no migration.
    """

    CLASSIFICATION = CLASSIFICATION

    key = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=64, blank=True)
    task_type = models.CharField(
        max_length=32,
        default=CLASSIFICATION,
        db_index=True,
        validators=[validate_task_type],
        help_text="classification, or the key of the registered task that wrote its outputs",
    )
    category_map = models.ForeignKey(CategoryMap, null=True, blank=True, on_delete=models.PROTECT)
    config = models.JSONField(default=dict, blank=True)
    source_algorithm = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="derived_algorithms"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name if self.name == self.key else f"{self.name} [{self.key}]"

    def save(self, *args, **kwargs) -> None:
        check_algorithm_kind(self.task_type)
        super().save(*args, **kwargs)

    @property
    def task_label(self) -> str:
        """What kind of step this is, in words: "classification", "rank roll-up", ..."""
        if self.task_type == CLASSIFICATION:
            return CLASSIFICATION
        try:
            return get_spec(self.task_type).name.lower()
        except InputError:  # a task no longer installed
            return self.task_type


__all__ = ["Algorithm", "CategoryMap", "Taxon"]
