"""Admin of algorithms and category maps (label spaces are shown, never edited by hand)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from taxopost.access.scoping import SharedDataAdmin
from taxopost.ml.models import Algorithm, CategoryMap


def pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


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
        return pretty_json(obj.config)
