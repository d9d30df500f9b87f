"""Admin of taxa and taxa lists: searchable, so large foreign keys elsewhere can autocomplete."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Exists, OuterRef

from taxopost.access.scoping import SharedDataAdmin
from taxopost.core.ranks import rank_code
from taxopost.taxa.models import UNKNOWN, TaxaList, Taxon


def rank_filter(taxon_field: str = "") -> type[admin.SimpleListFilter]:
    """A rank filter offering only the ranks present, coarse to fine (not every rank there is).

    ``taxon_field`` is the path from the admin's model to its taxon (``"taxon"``,
    ``"determination"``); blank for the taxa themselves. The choices are the ranks of the taxa
    some row the user may see refers to: one query, an index probe per taxon, whatever the size
    of the table.
    """
    prefix = f"{taxon_field}__" if taxon_field else ""

    class RankFilter(admin.SimpleListFilter):
        title = "rank"
        parameter_name = f"{prefix}rank"

        def lookups(self, request, model_admin):
            taxa = Taxon.objects.all()
            if taxon_field:
                rows = model_admin.get_queryset(request).order_by()  # the user's rows: no other project's ranks
                taxa = taxa.filter(Exists(rows.filter(**{taxon_field: OuterRef("pk")})))
            present = set(taxa.order_by().values_list("rank", flat=True).distinct())
            ordered = sorted(present - {UNKNOWN}, key=rank_code) + sorted(present & {UNKNOWN})
            return [(rank, rank) for rank in ordered]

        def queryset(self, request, queryset):
            return queryset.filter(**{f"{prefix}rank": self.value()}) if self.value() else queryset

    return RankFilter


@admin.register(Taxon)
class TaxonAdmin(SharedDataAdmin):
    list_display = ("name", "rank", "parent", "depth")
    list_filter = (rank_filter(),)
    search_fields = ("name",)
    list_select_related = ("parent",)
    autocomplete_fields = ("parent",)
    readonly_fields = ("path", "depth", "created_at", "updated_at")
    show_full_result_count = False  # a taxonomy can hold a million names: skip the second COUNT


@admin.register(TaxaList)
class TaxaListAdmin(SharedDataAdmin):
    list_display = ("name", "n_taxa", "description", "created_at")
    search_fields = ("name",)
    autocomplete_fields = ("taxa",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_taxa=Count("taxa"))

    @admin.display(description="taxa", ordering="n_taxa")
    def n_taxa(self, obj) -> int:
        return obj.n_taxa
