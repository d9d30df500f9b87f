"""Jobs: create a post-processing job, follow its progress and metrics, cancel or revert it.

``POST /api/v1/jobs/`` takes ``{"task", "scope": {"type", "id"}, "config", "dry_run"}``. Bad input
is a 400 whose body names each field; config errors come from the task's pydantic model, keyed
by their path inside the config::

    {"config": {"thresholds.genus": ["must be in (0, 1] (got 1.5)"], "mode": ["Input should be ..."]}}
    {"scope": {"id": ["no capture set has this id (got 99)"]}}
    {"task": ["\\"nope\\" is not a valid choice."]}

Cancel and revert answer 409 when the job's state does not allow them (already finished,
a later job built on its output, ...).

A job is created and sent to the workers in one step: when the broker refuses it, the answer
is a 503 ``{"detail": "...", "job": {...}}`` and the job is failed, resumable, never left
queued. An ``Idempotency-Key`` header (any text up to 255 characters) makes a retry safe: the
same key from the same user answers the job it first made (200, ``Idempotent-Replayed: true``),
sends it again if the broker had refused it, and refuses another request under that key (422).
"""

from __future__ import annotations

import logging

import django_filters
from django.db import IntegrityError, transaction
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from pydantic import ValidationError
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from taxopost.api.filters import MAX_ID, IdFilter
from taxopost.api.permissions import ReadLoggedInWriteStaff
from taxopost.errors import InputError, ServiceUnavailable, quote
from taxopost.jobs.models import Job
from taxopost.postprocessing.registry import all_tasks, get_task
from taxopost.postprocessing.running.operations import can_resume, create_job, resume_job, scope_project
from taxopost.postprocessing.running.web import job_operations, submit_from_web, web_executor
from taxopost.tasks import config_field_errors, parse_config

LOG_LINES = 200
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Seconds a client is told to wait before retrying when the broker is away.
RETRY_AFTER = 10

logger = logging.getLogger(__name__)


class ScopeSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[Job.CAPTURE_SET, Job.OCCURRENCE])
    id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class JobSerializer(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    operations = serializers.SerializerMethodField(help_text="What can be done to this job now")

    class Meta:
        model = Job
        fields = ("id", "task", "task_version", "config", "scope", "dry_run", "status", "progress", "stage", "stages",
                  "metrics", "result", "error", "cancel_requested", "executor", "created_by", "created_at",
                  "started_at", "heartbeat_at", "finished_at", "reverted_at", "operations")  # fmt: skip

    @extend_schema_field(ScopeSerializer)
    def get_scope(self, obj):
        return {"type": obj.scope_type, "id": obj.scope_id}

    def get_operations(self, obj) -> list[str]:
        return [name for name, operation in job_operations().items() if operation.applies(obj)]


class JobLogSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField()
    level = serializers.CharField()
    message = serializers.CharField()


class JobDetailSerializer(JobSerializer):
    log = serializers.SerializerMethodField(help_text=f"The last {LOG_LINES} log lines, oldest first")

    class Meta(JobSerializer.Meta):
        fields = (*JobSerializer.Meta.fields, "log")

    @extend_schema_field(JobLogSerializer(many=True))
    def get_log(self, obj):
        lines = list(obj.logs.order_by("-created_at", "-id")[:LOG_LINES])[::-1]
        return JobLogSerializer(lines, many=True).data


class JobCreateSerializer(serializers.Serializer):
    task = serializers.ChoiceField(choices=[], help_text="A registered task's key (see /tasks/)")
    scope = ScopeSerializer()
    config = serializers.DictField(required=False, default=dict, help_text="The task's config (see /tasks/)")
    dry_run = serializers.BooleanField(default=False, help_text="Compute a summary of what would change; write nothing")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["task"].choices = [task.key for task in all_tasks()]  # every task registered by now

    def validate(self, data):
        """Every config problem at once (from the task's pydantic model) and the scope's.

        create_job reports only the first problem; what the config names (a taxa list, an
        algorithm) is checked there, once the config and the scope are valid.
        """
        errors = {}
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:  # a misspelt "dry_run" must not turn a preview into a run
            errors["non_field_errors"] = [f"unknown fields: {', '.join(unknown)} (expected {', '.join(self.fields)})"]
        try:
            get_task(data["task"]).config_model.model_validate(data.get("config") or {})
        except ValidationError as exc:
            errors["config"] = config_field_errors(exc)
        try:
            scope_project(data["scope"]["type"], data["scope"]["id"])
        except InputError as exc:
            errors.update(input_error_detail(exc))
        if errors:
            raise serializers.ValidationError(errors)
        return data


class JobFilter(django_filters.FilterSet):
    scope_id = IdFilter()

    class Meta:
        model = Job
        fields = ("status", "task", "scope_type", "scope_id", "dry_run")


def input_error_detail(exc: InputError) -> dict:
    """An InputError from the domain as DRF field errors (``config.x`` -> ``{"config": {"x": [...]}}``)."""
    message = f"{exc.reason} (got {quote(exc.value)})"
    head, _, rest = exc.field.partition(".")
    if head == "config":
        return {"config": {rest or "config": [message]}}
    if head == "scope":
        return {"scope": {"type" if rest == "type" else "id": [message]}}
    if head in ("task", "job"):
        return {head: [message]}
    return {"non_field_errors": [exc.message]}


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key: printable ASCII, 1 to 255 characters (else a 400)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not (0 < len(key) <= 255 and key.isascii() and key.isprintable()):
        raise serializers.ValidationError(
            {IDEMPOTENCY_HEADER: [f"must be 1 to 255 printable ASCII characters (got {quote(key)})"]}
        )
    return key


def same_request(job: Job, data: dict) -> bool:
    """Whether a request asks for exactly the job an earlier one made (config compared once validated)."""
    config = parse_config(get_task(data["task"]).config_model, data.get("config"), prefix="config.")
    asked = (data["task"], data["scope"]["type"], data["scope"]["id"], data["dry_run"], config.model_dump(mode="json"))
    return asked == (job.task, job.scope_type, job.scope_id, job.dry_run, job.config)


def unavailable(exc: ServiceUnavailable, job: Job) -> Response:
    """503: the broker is away; the job is failed and resumable (a retry with its key sends it again)."""
    logger.warning("%s", exc)
    job.refresh_from_db()
    body = {"detail": str(exc), "job": JobDetailSerializer(job).data}
    return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER)})


@extend_schema_view(
    create=extend_schema(
        request=JobCreateSerializer,
        responses={
            201: JobDetailSerializer,
            200: OpenApiResponse(JobDetailSerializer, description="The job an earlier request with this key made"),
            400: OpenApiResponse(description="Field errors, see the module doc"),
            422: OpenApiResponse(description="The Idempotency-Key was used for another request"),
            503: OpenApiResponse(description="The broker refused the job: it is failed and resumable"),
        },
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, description="A retry with it returns the same job"
            )
        ],
    ),
)
class JobViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Job.objects.select_related("created_by").order_by("-created_at", "-id")
    permission_classes = (ReadLoggedInWriteStaff,)
    filterset_class = JobFilter

    def get_serializer_class(self):
        if self.action == "create":
            return JobCreateSerializer
        return JobSerializer if self.action == "list" else JobDetailSerializer

    def create(self, request, *args, **kwargs):
        key = idempotency_key(request)
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if key is not None:
            earlier = Job.objects.filter(created_by=request.user, idempotency_key=key).first()
            if earlier is not None:
                return self._replay(earlier, data, key)
        try:
            with transaction.atomic():
                job = create_job(
                    data["task"], data["scope"]["type"], data["scope"]["id"], data.get("config") or {},
                    dry_run=data["dry_run"], user=request.user, idempotency_key=key,
                )  # fmt: skip
                submit_from_web(job)  # sent once the transaction commits, as it leaves this block
        except InputError as exc:
            raise serializers.ValidationError(input_error_detail(exc)) from None
        except IntegrityError:  # the same key's first request committed meanwhile
            earlier = Job.objects.filter(created_by=request.user, idempotency_key=key).first()
            if key is None or earlier is None:
                raise
            return self._replay(earlier, data, key)
        except ServiceUnavailable as exc:
            return unavailable(exc, job)
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)

    def _replay(self, job: Job, data: dict, key: str) -> Response:
        """The job an earlier request with this key made; sent again if the broker had refused it."""
        if not same_request(job, data):
            detail = f"{IDEMPOTENCY_HEADER} {quote(key)} was used for job {job.pk}, with another request"
            return Response({"detail": detail}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        if job.status == Job.FAILED and job.started_at is None and can_resume(job):
            try:
                job = resume_job(job, web_executor())
            except ServiceUnavailable as exc:
                return unavailable(exc, job)
        job.refresh_from_db()
        return Response(JobDetailSerializer(job).data, headers={"Idempotent-Replayed": "true"})

    def _operate(self, name: str):
        job = self.get_object()
        operation = job_operations()[name]
        if not operation.applies(job):
            state = job.status + (", reverted" if job.reverted_at else "") + (", dry run" if job.dry_run else "")
            return Response({"detail": f"job {job.pk} ({state}): cannot {name}"}, status=status.HTTP_409_CONFLICT)
        try:
            outcome = operation.function(job)
        except InputError as exc:
            return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
        except ServiceUnavailable as exc:
            return unavailable(exc, job)
        job.refresh_from_db()
        body = JobDetailSerializer(job).data
        if isinstance(outcome, dict):
            body = {**body, name: outcome}
        return Response(body)

    @extend_schema(request=None, responses={200: JobDetailSerializer, 409: OpenApiResponse(description="Not now")})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop the job at its next chunk boundary (a job not yet started is canceled at once)."""
        return self._operate("cancel")

    @extend_schema(request=None, responses={200: JobDetailSerializer, 409: OpenApiResponse(description="Not now")})
    @action(detail=True, methods=["post"])
    def revert(self, request, pk=None):
        """Remove what the job wrote, restore what it demoted, recompute determinations."""
        return self._operate("revert")

    @extend_schema(request=None, responses={200: JobDetailSerializer, 409: OpenApiResponse(description="Not now")})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Resume a stale, failed or canceled job from its last finished chunk."""
        return self._operate("resume")
