"""Capture sets: the usual scope of a post-processing job (read-only)."""

from __future__ import annotations

from django.db.models import Count
from rest_framework import serializers, viewsets

from taxopost.observations.models import CaptureSet


class CaptureSetSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="name", read_only=True)
    n_images = serializers.IntegerField(read_only=True)

    class Meta:
        model = CaptureSet
        fields = ("id", "name", "project", "description", "n_images", "created_at")


class CaptureSetViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = CaptureSet.objects.select_related("project").annotate(n_images=Count("images")).order_by("id")
    serializer_class = CaptureSetSerializer
    filterset_fields = ("project", "name")
