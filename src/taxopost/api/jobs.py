"""Jobs: create a post-processing job, follow its progress and metrics, cancel or revert it.

``POST /api/v1/jobs/`` takes ``{"task", "scope": {"type", "id"}, "config", "dry_run", "stack"}`` (a
capture set's scope may give its ``"name"`` instead of its id; ``?capture_set=`` filters by either).
A job's ``replaces`` says in words what it replaces (a re-run of a task with another config
replaces that task's earlier outputs; ``"stack": true`` applies it on top of them). Bad input
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

from django.db import IntegrityError, transaction
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from pydantic import ValidationError
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from taxopost.access.roles import MANAGE, RUN_JOBS, VIEW
from taxopost.access.rules import can
from taxopost.api.filters import (
    MAX_ID,
    CaptureSetFilter,
    IdFilter,
    KnownValueFilter,
    TrueFalseFilter,
    VisibleCaptureSets,
    visible_capture_sets,
)
from taxopost.api.permissions import ProjectScopedViewSet
from taxopost.errors import InputError, ServiceUnavailable, quote
from taxopost.jobs.models import Job
from taxopost.jobs.replacements import replacement_notes
from taxopost.observations.models import CaptureSet
from taxopost.postprocessing.registry import all_tasks, get_task
from taxopost.postprocessing.running.operations import can_resume, create_job, resume_job, scope_project
from taxopost.postprocessing.running.web import job_operations, refusal, submit_from_web, web_executor
from taxopost.tasks import config_field_errors, get_spec, parse_config

LOG_LINES = 200
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Seconds a client is told to wait before retrying when the broker is away.
RETRY_AFTER = 10

logger = logging.getLogger(__name__)


def _unknown_fields(data: dict, fields) -> str | None:
    """The message for keys of ``data`` that are none of ``fields``, else None."""
    unknown = sorted(str(key) for key in set(data) - set(fields))
    return f"unknown fields: {', '.join(unknown)} (expected {', '.join(fields)})" if unknown else None


class ScopeSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[Job.CAPTURE_SET, Job.OCCURRENCE])
    id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    name = serializers.CharField(required=False, write_only=True, help_text="A capture set's name, instead of its id")

    def to_internal_value(self, data):
        """Unknown keys refused, as at the top level: a misspelt key must not go unnoticed."""
        if isinstance(data, dict) and (unknown := _unknown_fields(data, self.fields)):
            raise serializers.ValidationError([unknown])
        return super().to_internal_value(data)

    def validate(self, data):
        """One of ``id`` and ``name`` (a capture set's only); the job's validation resolves the name."""
        if ("id" in data) == ("name" in data) or ("name" in data and data["type"] != Job.CAPTURE_SET):
            needed = "id or name" if data["type"] == Job.CAPTURE_SET else "id"
            raise serializers.ValidationError({"id": [f"give the scope's {needed}, once"]})
        return data


class JobSerializer(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField(
        help_text="Who created it: shown to them and to the project's managers only (it tells who holds a role)"
    )
    operations = serializers.SerializerMethodField(help_text="What can be done to this job now")
    warnings = serializers.SerializerMethodField(
        help_text="What to think twice about before running it, each a message with its numbers "
        "(e.g. a taxa list keeping few classes: kept_classes, n_classes, kept_mass, rows)"
    )

    class Meta:
        model = Job
        fields = ("id", "task", "task_version", "config", "scope", "dry_run", "stack", "status", "progress", "stage",
                  "stages", "metrics", "result", "error", "cancel_requested", "executor", "created_by", "created_at",
                  "started_at", "heartbeat_at", "finished_at", "reverted_at", "operations", "warnings")  # fmt: skip

    @extend_schema_field(ScopeSerializer)
    def get_scope(self, obj):
        return {"type": obj.scope_type, "id": obj.scope_id}

    def get_operations(self, obj) -> list[str]:
        """What applies to the job now and the caller may do (``run_jobs`` on its project): a
        viewer is offered nothing. Without a request in the context, what applies."""
        request = self.context.get("request")
        if request is not None and not self._may(request.user, RUN_JOBS, obj):
            return []
        return [name for name, operation in job_operations().items() if operation.applies(obj)]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, obj) -> str | None:
        """The creator's username for the creator and whoever manages the project (superusers too);
        None for the others, as memberships are (docs/access.md): a job names who may run jobs there."""
        if obj.created_by_id is None:
            return None
        request = self.context.get("request")
        if request is not None and request.user.pk != obj.created_by_id and not self._may(request.user, MANAGE, obj):
            return None
        return obj.created_by.username

    def _may(self, user, action: str, job: Job) -> bool:
        """Checked once per action and project for a whole page of jobs (the list's rows share the context)."""
        known = self.context.setdefault("may", {})
        key = (action, job.project_id)
        if key not in known:
            known[key] = can(user, action, job.project_id)
        return known[key]

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_warnings(self, obj) -> list[dict]:
        return list((obj.result or {}).get("warnings", []))


class JobLogSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField()
    level = serializers.CharField()
    message = serializers.CharField()


class JobDetailSerializer(JobSerializer):
    replaces = serializers.SerializerMethodField(
        help_text='What the job replaces, in words: "3,318 outputs of job 5 (species 0.8, ...) are replaced"'
    )
    log = serializers.SerializerMethodField(help_text=f"The last {LOG_LINES} log lines, oldest first")

    class Meta(JobSerializer.Meta):
        fields = (*JobSerializer.Meta.fields, "replaces", "log")

    def get_replaces(self, obj) -> list[str]:
        return replacement_notes(obj)

    @extend_schema_field(JobLogSerializer(many=True))
    def get_log(self, obj):
        lines = list(obj.logs.order_by("-created_at", "-id")[:LOG_LINES])[::-1]
        return JobLogSerializer(lines, many=True).data


class JobCreateSerializer(serializers.Serializer):
    task = serializers.ChoiceField(choices=[], help_text="A registered task's key (see /tasks/)")
    scope = ScopeSerializer()
    config = serializers.DictField(required=False, default=dict, help_text="The task's config (see /tasks/)")
    dry_run = serializers.BooleanField(default=False, help_text="Compute a summary of what would change; write nothing")
    stack = serializers.BooleanField(
        default=False,
        help_text="Apply the task on top of its own earlier output instead of replacing it (a re-run with "
        "another config replaces by default)",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["task"].choices = [task.key for task in all_tasks()]  # every task registered by now

    def validate(self, data):
        """Every config problem at once (from the task's pydantic model) and the scope's.

        create_job reports only the first problem; what the config names (a taxa list, an
        algorithm) is checked there, once the config and the scope are valid.
        """
        errors = {}
        if unknown := _unknown_fields(self.initial_data, self.fields):  # a misspelt "dry_run" must not run
            errors["non_field_errors"] = [unknown]
        try:
            get_task(data["task"]).config_model.model_validate(data.get("config") or {})
        except ValidationError as exc:
            errors["config"] = config_field_errors(exc)
        try:
            scope = data["scope"]
            if "name" in scope:  # with "did you mean" for a near miss
                among = visible_capture_sets(self.context["request"])
                scope["id"] = CaptureSet.named(scope.pop("name"), field="scope.name", among=among).pk
            self._check_access(scope, scope_project(scope["type"], scope["id"]))
        except InputError as exc:
            errors.update(input_error_detail(exc))
        if errors:
            raise serializers.ValidationError(errors)
        return data

    def _check_access(self, scope: dict, project_id: int) -> None:
        """A scope in a project the user may not view does not exist for them; one they may only
        view is a 403 (running jobs needs the data manager role there)."""
        user = self.context["request"].user
        if not can(user, VIEW, project_id):
            label = dict(Job.SCOPES)[scope["type"]]
            raise InputError("scope.id", scope["id"], f"no {label} has this id")
        if not can(user, RUN_JOBS, project_id):
            raise exceptions.PermissionDenied("Running jobs on this project needs the data manager role on it.")


class JobFilter(VisibleCaptureSets):
    task = KnownValueFilter(check=get_spec, help_text="A registered task's key")
    scope_id = IdFilter()
    dry_run = TrueFalseFilter()
    capture_set = CaptureSetFilter(method="on_capture_set", help_text="Jobs on this capture set (id or name)")

    class Meta:
        model = Job
        fields = ("status", "task", "scope_type", "scope_id", "capture_set", "dry_run")

    def on_capture_set(self, queryset, name, value):
        return queryset.filter(scope_type=Job.CAPTURE_SET, scope_id=value)


def input_error_detail(exc: InputError) -> dict:
    """An InputError from the domain as DRF field errors (``config.x`` -> ``{"config": {"x": [...]}}``).

    Several problems at once (an :class:`~taxopost.errors.InputErrors`) are each kept.
    """
    if len(several := getattr(exc, "errors", [exc])) > 1:
        merged: dict = {}
        for error in several:
            for key, value in input_error_detail(error).items():
                if isinstance(value, dict):
                    for field, messages in value.items():
                        merged.setdefault(key, {}).setdefault(field, []).extend(messages)
                else:
                    merged.setdefault(key, []).extend(value)
        return merged
    message = f"{exc.reason} (got {quote(exc.value)})"
    head, _, rest = exc.field.partition(".")
    if head == "config":
        return {"config": {rest or "config": [message]}}
    if head == "scope":
        return {"scope": {rest if rest in ("type", "name") else "id": [message]}}
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
    asked = (
        data["task"], data["scope"]["type"], data["scope"]["id"], data["dry_run"], data["stack"],
        config.model_dump(mode="json"),
    )  # fmt: skip
    return asked == (job.task, job.scope_type, job.scope_id, job.dry_run, job.stack, job.config)


def unavailable(exc: ServiceUnavailable, job: Job, request) -> Response:
    """503: the broker is away; the job is failed and resumable (a retry with its key sends it again)."""
    logger.warning("%s", exc)
    job.refresh_from_db()
    body = {"detail": str(exc), "job": JobDetailSerializer(job, context={"request": request}).data}
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
class JobViewSet(ProjectScopedViewSet, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Job.objects.select_related("created_by").order_by("-created_at", "-id")
    write_action = RUN_JOBS  # creating, canceling, reverting, resuming: data manager of the job's project
    filterset_class = JobFilter

    def get_serializer_class(self):
        if self.action == "create":
            return JobCreateSerializer
        return JobSerializer if self.action == "list" else JobDetailSerializer

    def create(self, request, *args, **kwargs):
        key = idempotency_key(request)
        serializer = JobCreateSerializer(data=request.data, context={"request": request})
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
                    dry_run=data["dry_run"], stack=data["stack"], user=request.user, idempotency_key=key,
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
            return unavailable(exc, job, self.request)
        return Response(JobDetailSerializer(job, context={"request": request}).data, status=status.HTTP_201_CREATED)

    def _replay(self, job: Job, data: dict, key: str) -> Response:
        """The job an earlier request with this key made; sent again if the broker had refused it."""
        if not same_request(job, data):
            detail = f"{IDEMPOTENCY_HEADER} {quote(key)} was used for job {job.pk}, with another request"
            return Response({"detail": detail}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        if job.status == Job.FAILED and job.started_at is None and can_resume(job):
            try:
                job = resume_job(job, web_executor())
            except ServiceUnavailable as exc:
                return unavailable(exc, job, self.request)
        job.refresh_from_db()
        body = JobDetailSerializer(job, context={"request": self.request}).data
        return Response(body, headers={"Idempotent-Replayed": "true"})

    def _operate(self, name: str):
        job = self.get_object()
        operation = job_operations()[name]
        if not operation.applies(job):
            state = job.status + (", reverted" if job.reverted_at else "") + (", dry run" if job.dry_run else "")
            return Response({"detail": f"job {job.pk} ({state}): cannot {name}"}, status=status.HTTP_409_CONFLICT)
        try:
            outcome = operation.function(job)
        except InputError as exc:
            return Response({"detail": refusal(exc)}, status=status.HTTP_409_CONFLICT)
        except ServiceUnavailable as exc:
            return unavailable(exc, job, self.request)
        job.refresh_from_db()
        body = JobDetailSerializer(job, context={"request": self.request}).data
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
