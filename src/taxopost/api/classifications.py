"""Classifications: predictions with their algorithm, ``applied_to`` and provenance chain (read-only)."""

from __future__ import annotations

import django_filters
from django.db.models import F
from rest_framework import serializers, viewsets

from taxopost.api.common import AlgorithmRefSerializer, ProvenanceField, TaxonRefSerializer
from taxopost.api.filters import (
    CaptureSetFilter,
    IdFilter,
    KnownValueFilter,
    TrueFalseFilter,
    VisibleCaptureSets,
    check_algorithm,
)
from taxopost.api.permissions import ProjectScopedViewSet
from taxopost.api.provenance import ProvenanceMixin
from taxopost.observations.models import CaptureSet, Classification
from taxopost.tasks.registry import check_algorithm_kind
from taxopost.taxa.models import RANK_CHOICES


class ClassificationSerializer(serializers.ModelSerializer):
    taxon = TaxonRefSerializer(read_only=True)
    algorithm = AlgorithmRefSerializer(read_only=True)
    occurrence = serializers.IntegerField(read_only=True, allow_null=True)
    provenance = ProvenanceField(help_text="This classification, then each applied_to step down to the model output")

    class Meta:
        model = Classification
        fields = ("id", "detection", "occurrence", "taxon", "score", "algorithm", "terminal", "applied_to", "job",
                  "replaced_by", "details", "created_at", "provenance")  # fmt: skip


class ClassificationFilter(VisibleCaptureSets):
    capture_set = CaptureSetFilter(method="in_capture_set", help_text="Capture set id or name")
    occurrence = IdFilter(field_name="detection__occurrence_id")
    taxon = IdFilter(field_name="taxon_id")
    rank = django_filters.ChoiceFilter(field_name="taxon__rank", choices=RANK_CHOICES)
    algorithm = KnownValueFilter(field_name="algorithm__key", check=check_algorithm, help_text="Algorithm key")
    task = KnownValueFilter(
        field_name="algorithm__task_type", check=check_algorithm_kind, help_text="classification or a task key"
    )
    terminal = TrueFalseFilter()
    job = IdFilter(field_name="job_id")

    class Meta:
        model = Classification
        fields = ("capture_set", "occurrence", "taxon", "rank", "algorithm", "task", "terminal", "job")

    def in_capture_set(self, queryset, name, value):
        return queryset.filter(detection__in=CaptureSet.detections_of(value))


class ClassificationViewSet(ProjectScopedViewSet, ProvenanceMixin, viewsets.ReadOnlyModelViewSet):
    project_path = "detection__source_image__project"
    queryset = (
        Classification.objects.select_related("taxon", "algorithm")
        .defer("scores", "logits")  # kilobytes a row; not part of the representation
        .annotate(occurrence=F("detection__occurrence_id"))
        .order_by("id")
    )
    serializer_class = ClassificationSerializer
    filterset_class = ClassificationFilter
