"""Admin of taxa and taxa lists: searchable, so large foreign keys elsewhere can autocomplete."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from taxopost.access.scoping import SharedDataAdmin
from taxopost.taxa.models import TaxaList, Taxon


@admin.register(Taxon)
class TaxonAdmin(SharedDataAdmin):
    list_display = ("name", "rank", "parent", "depth")
    list_filter = ("rank",)
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
