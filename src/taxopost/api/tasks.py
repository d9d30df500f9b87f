"""The task registry: each post-processing task with its config's JSON schema (drives forms and clients)."""

from __future__ import annotations

from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from taxopost.errors import InputError
from taxopost.postprocessing.registry import all_tasks, get_task


class TaskSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()
    description = serializers.CharField()
    config_schema = serializers.DictField(help_text="JSON schema of the task's config (pydantic)")


def describe_task(task_class: type) -> dict:
    return {
        "key": task_class.key,
        "name": task_class.name,
        "version": task_class.version,
        "description": task_class.description,
        "config_schema": task_class.config_model.model_json_schema(),
    }


class TaskViewSet(viewsets.ViewSet):
    serializer_class = TaskSerializer
    lookup_field = "key"
    lookup_value_regex = "[A-Za-z0-9_-]+"

    def list(self, request):
        return Response(TaskSerializer([describe_task(t) for t in all_tasks()], many=True).data)

    def retrieve(self, request, key=None):
        try:
            task_class = get_task(key)
        except InputError as exc:
            raise NotFound(exc.message) from None
        return Response(TaskSerializer(describe_task(task_class)).data)
