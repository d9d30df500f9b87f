"""A view mixin that loads the provenance chains of a page at once (one query per chain level)."""

from __future__ import annotations

from taxopost.observations.provenance import classification_chains


class ProvenanceMixin:
    """Sets ``obj.provenance`` on the page's objects after pagination, and on a retrieved object."""

    def chain_head_id(self, obj) -> int | None:
        """The classification whose chain ``obj`` shows."""
        return obj.pk

    def attach(self, objects) -> None:
        heads = {obj.pk: self.chain_head_id(obj) for obj in objects}
        chains = classification_chains(head for head in heads.values() if head is not None)
        for obj in objects:
            head = heads[obj.pk]
            obj.provenance = chains.get(head, []) if head is not None else []

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page is not None:
            self.attach(page)
        return page

    def get_object(self):
        obj = super().get_object()
        self.attach([obj])
        return obj
