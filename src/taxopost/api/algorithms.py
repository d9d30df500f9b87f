"""Algorithms: classifiers and the post-processing steps that derive from them (read-only)."""

from __future__ import annotations

import django_filters
from rest_framework import serializers, viewsets

from taxopost.api.filters import KnownValueFilter
from taxopost.ml.models import Algorithm
from taxopost.tasks.registry import check_algorithm_kind


class AlgorithmSerializer(serializers.ModelSerializer):
    n_classes = serializers.IntegerField(source="category_map.n_classes", allow_null=True, read_only=True)
    source_algorithm = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Algorithm
        fields = ("id", "key", "name", "version", "task_type", "config", "n_classes", "source_algorithm", "created_at")


class AlgorithmFilter(django_filters.FilterSet):
    task_type = KnownValueFilter(check=check_algorithm_kind, help_text="classification or a task key")

    class Meta:
        model = Algorithm
        fields = ("task_type", "key")


class AlgorithmViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Algorithm.objects.select_related("category_map", "source_algorithm").defer(
        "category_map__labels", "category_map__taxa"
    )
    serializer_class = AlgorithmSerializer
    filterset_class = AlgorithmFilter
