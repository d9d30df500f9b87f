"""Admin of algorithms and category maps (label spaces are shown, never edited by hand)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from taxopost.access.scoping import SharedDataAdmin
from taxopost.ml.models import Algorithm, CategoryMap
from taxopost.tasks.describe import in_rank_order


def scalar_text(value) -> str:
    """One value as a page shows it: floats to three decimals, booleans as yes/no, none as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _flat(value) -> bool:
    return not isinstance(value, dict | list | tuple)


def key_values(value) -> str:
    """A config, details or result as a readable key/value table (not a JSON dump).

    A mapping of plain values (``{"species": 0.8, "genus": 0.6}``) reads on one line, a list of
    plain values as a comma-separated list; deeper structures nest.
    """
    if isinstance(value, dict):
        if not value:
            return "–"
        if all(_flat(item) for item in value.values()) and len(value) <= 12 and _nested_level(value):
            return format_html_join(" · ", "{} {}", ((key, scalar_text(item)) for key, item in in_rank_order(value)))
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((k, key_values(v)) for k, v in value.items()))
        return format_html('<table class="key-values">{}</table>', rows)
    if isinstance(value, list | tuple):
        if not value:
            return "–"
        if all(_flat(item) for item in value):
            return ", ".join(scalar_text(item) for item in value)
        return format_html_join("", "<div>{}</div>", ((key_values(item),) for item in value))
    return scalar_text(value)


def _nested_level(value: dict) -> bool:
    """Whether a flat mapping reads better inline: one of numbers by name, not a record of fields."""
    return all(isinstance(item, int | float) and not isinstance(item, bool) for item in value.values())


@admin.register(CategoryMap)
class CategoryMapAdmin(SharedDataAdmin):
    list_display = ("id", "n_classes", "short_digest", "created_at")
    fields = ("digest", "n_classes", "first_labels", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # label spaces come in with their classifier (import category-map)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="digest")
    def short_digest(self, obj) -> str:
        return obj.digest[:12]

    @admin.display(description="labels (first 50)")
    def first_labels(self, obj) -> str:
        return ", ".join(obj.labels[:50]) + (" ..." if len(obj.labels) > 50 else "")


@admin.register(Algorithm)
class AlgorithmAdmin(SharedDataAdmin):
    list_display = ("key", "name", "version", "task_type", "category_map", "source_algorithm", "created_at")
    list_filter = ("task_type",)
    search_fields = ("key", "name")
    list_select_related = ("category_map", "source_algorithm")
    raw_id_fields = ("category_map", "source_algorithm")
    readonly_fields = ("config_display", "created_at")
    exclude = ("config",)

    @admin.display(description="config")
    def config_display(self, obj) -> str:
        return key_values(obj.config)
