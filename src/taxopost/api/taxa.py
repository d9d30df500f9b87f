"""Taxa and taxa lists (read-only)."""

from __future__ import annotations

import django_filters
from django.db.models import Count
from rest_framework import serializers, viewsets

from taxopost.api.filters import IdFilter
from taxopost.taxa.models import RANK_CHOICES, TaxaList, Taxon


class TaxonSerializer(serializers.ModelSerializer):
    class Meta:
        model = Taxon
        fields = ("id", "name", "rank", "parent", "depth", "external_ids", "synonyms")


class TaxonFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    rank = django_filters.ChoiceFilter(choices=RANK_CHOICES)
    parent = IdFilter(field_name="parent_id")

    class Meta:
        model = Taxon
        fields = ("name", "rank", "parent")


class TaxonViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Taxon.objects.order_by("id")
    serializer_class = TaxonSerializer
    filterset_class = TaxonFilter


class TaxaListSerializer(serializers.ModelSerializer):
    n_taxa = serializers.IntegerField(read_only=True)

    class Meta:
        model = TaxaList
        fields = ("id", "name", "description", "n_taxa", "taxa", "created_at")


class TaxaListViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = TaxaList.objects.annotate(n_taxa=Count("taxa")).prefetch_related("taxa").order_by("name")
    serializer_class = TaxaListSerializer
    filterset_fields = ("name",)
