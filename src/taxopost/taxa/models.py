"""Taxa and taxa lists.

A taxon's lineage is stored as a materialised path of ids (``/1/7/42/``), so its ancestors are
one ``id__in`` query and its descendants one ``path__startswith`` query, whatever the depth.
"""

from __future__ import annotations

from django.db import models

from taxopost.core.ranks import RANKS, UNKNOWN

RANK_CHOICES = [(rank, rank) for rank in RANKS] + [(UNKNOWN, UNKNOWN)]


class Taxon(models.Model):
    name = models.CharField(max_length=255, unique=True)
    rank = models.CharField(max_length=32, choices=RANK_CHOICES, db_index=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    path = models.CharField(max_length=2048, help_text="Ids of the lineage, coarse to fine: /1/7/42/")
    depth = models.PositiveSmallIntegerField(default=0)
    external_ids = models.JSONField(default=list, blank=True, help_text="Keys such as GBIF or iNaturalist ids")
    synonyms = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "taxa"
        ordering = ["name"]
        # varchar_pattern_ops lets PostgreSQL serve ``path LIKE '/1/7/%'`` (descendants) from the index.
        indexes = [
            models.Index(fields=["path"], name="taxon_path_like_idx", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.rank})"

    @property
    def lineage_ids(self) -> list[int]:
        """Ids from the root to this taxon."""
        return [int(part) for part in self.path.strip("/").split("/") if part]

    def ancestors(self) -> models.QuerySet[Taxon]:
        """This taxon's ancestors, coarse to fine (one query)."""
        ids = self.lineage_ids[:-1]
        return Taxon.objects.filter(id__in=ids).order_by("depth")

    def descendants(self) -> models.QuerySet[Taxon]:
        """Every taxon below this one (one query)."""
        return Taxon.objects.filter(path__startswith=self.path).exclude(pk=self.pk)


class TaxaList(models.Model):
    """A named set of taxa, e.g. a regional checklist; a listed taxon admits its descendants."""

    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    taxa = models.ManyToManyField(Taxon, related_name="taxa_lists", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
