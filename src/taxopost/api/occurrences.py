"""Occurrences: the determination, and the current classification that made it with its provenance."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets

from taxopost.api.common import ProvenanceField, ProvenanceStepSerializer, TaxonRefSerializer
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
from taxopost.observations.models import CaptureSet, Occurrence
from taxopost.observations.provenance import describe_step
from taxopost.taxa.models import RANK_CHOICES


class OccurrenceSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="name", read_only=True)
    determination = TaxonRefSerializer(read_only=True, allow_null=True)
    decided_by = serializers.SerializerMethodField(help_text="identification, classification, or null")
    classification = serializers.SerializerMethodField(
        help_text="The terminal classification that decided the determination (null when a person did)"
    )
    provenance = ProvenanceField(help_text="That classification, then each applied_to step down to the model output")

    class Meta:
        model = Occurrence
        fields = ("id", "key", "project", "determination", "determination_score", "decided_by",
                  "determined_by_identification", "classification", "provenance")  # fmt: skip

    def get_decided_by(self, obj) -> str | None:
        if obj.determined_by_identification_id:
            return "identification"
        return "classification" if obj.determined_by_id else None

    @extend_schema_field(ProvenanceStepSerializer(allow_null=True))
    def get_classification(self, obj):
        chain = getattr(obj, "provenance", None)
        return describe_step(chain[0]) if chain else None


class OccurrenceFilter(VisibleCaptureSets):
    capture_set = CaptureSetFilter(method="in_capture_set", help_text="Capture set id or name")
    taxon = IdFilter(field_name="determination_id", help_text="Determination's taxon id")
    rank = django_filters.ChoiceFilter(field_name="determination__rank", choices=RANK_CHOICES)
    algorithm = KnownValueFilter(
        field_name="determined_by__algorithm__key",
        check=check_algorithm,
        help_text="Key of the algorithm that decided the determination",
    )
    identified = TrueFalseFilter(field_name="determined_by_identification", lookup_expr="isnull", exclude=True)
    project = IdFilter(field_name="project_id", help_text="Project id")

    class Meta:
        model = Occurrence
        fields = ("capture_set", "taxon", "rank", "algorithm", "identified", "project")

    def in_capture_set(self, queryset, name, value):
        return queryset.filter(id__in=CaptureSet.detections_of(value).values("occurrence_id"))


class OccurrenceViewSet(ProjectScopedViewSet, ProvenanceMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Occurrence.objects.select_related("project", "determination").order_by("id")
    serializer_class = OccurrenceSerializer
    filterset_class = OccurrenceFilter

    def chain_head_id(self, obj) -> int | None:
        return obj.determined_by_id
