"""Capture sets: the usual scope of a post-processing job (read-only)."""

from __future__ import annotations

import django_filters
from django.db.models import Count
from rest_framework import serializers, viewsets

from taxopost.api.filters import IdFilter
from taxopost.api.permissions import ProjectScopedViewSet
from taxopost.observations.models import CaptureSet


class CaptureSetSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="name", read_only=True)
    n_images = serializers.IntegerField(read_only=True)

    class Meta:
        model = CaptureSet
        fields = ("id", "name", "project", "description", "n_images", "created_at")


class CaptureSetFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id", help_text="Project id")

    class Meta:
        model = CaptureSet
        fields = ("project", "name")


class CaptureSetViewSet(ProjectScopedViewSet, viewsets.ReadOnlyModelViewSet):
    queryset = CaptureSet.objects.select_related("project").annotate(n_images=Count("images")).order_by("id")
    serializer_class = CaptureSetSerializer
    filterset_class = CaptureSetFilter
