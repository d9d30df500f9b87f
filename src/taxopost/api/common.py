"""Small nested representations shared by several resources."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from taxopost.ml.models import Algorithm
from taxopost.observations.provenance import describe_step
from taxopost.taxa.models import Taxon


class TaxonRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Taxon
        fields = ("id", "name", "rank")


class AlgorithmRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Algorithm
        fields = ("id", "key", "name", "task_type")


class ProvenanceStepSerializer(serializers.Serializer):
    """One step of an ``applied_to`` chain: what it says, and which algorithm (with config) said it."""

    classification = serializers.IntegerField()
    taxon = serializers.CharField()
    rank = serializers.CharField()
    score = serializers.FloatField()
    algorithm = serializers.CharField(help_text="Algorithm key")
    algorithm_name = serializers.CharField()
    task = serializers.CharField(help_text="classification for a model's own output, else the task key")
    config = serializers.DictField(help_text="The post-processing algorithm's config ({} for a model)")
    job = serializers.IntegerField(allow_null=True)
    terminal = serializers.BooleanField()
    replaced_by = serializers.IntegerField(
        allow_null=True, help_text="The job that re-ran its task with another config and replaced it"
    )


@extend_schema_field(ProvenanceStepSerializer(many=True))
class ProvenanceField(serializers.Field):
    """The chain set on the object by :class:`~taxopost.api.provenance.ProvenanceMixin`."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("source", "*")
        super().__init__(**kwargs)

    def to_representation(self, value):
        chain = getattr(value, "provenance", None) or []
        return [describe_step(step) for step in chain]
