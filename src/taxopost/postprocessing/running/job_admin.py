"""Admin of jobs: status, a live progress bar, stages, metrics, log; cancel and revert (and resume
where the operations provide it), each calling the domain operation the API and the CLI call.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Case, CharField, F, OuterRef, Q, Subquery, Value, When
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme

from taxopost.access.roles import MANAGE, RUN_JOBS, VIEW
from taxopost.access.rules import projects_where
from taxopost.access.scoping import ProjectScopedAdmin, may
from taxopost.errors import InputError, ServiceUnavailable
from taxopost.jobs.models import Job, JobLog
from taxopost.jobs.replacements import replacement_notes
from taxopost.ml.admin import key_values
from taxopost.observations.models import CaptureSet, Occurrence
from taxopost.postprocessing.running.job_display import metrics_html, result_html
from taxopost.postprocessing.running.web import JobOperation, job_operations, refusal


def progress_bar(job: Job) -> str:
    return format_html(
        '<progress class="job-progress" max="1" value="{}" title="{}%"></progress> '
        '<span class="job-percent">{}%</span>',
        f"{job.progress:.4f}",
        round(job.progress * 100),
        round(job.progress * 100),
    )


def _operation_action(operation: JobOperation):
    def action(modeladmin, request, queryset):
        return run_operation(modeladmin, request, queryset, operation)

    action.__name__ = f"{operation.name}_jobs"
    return admin.action(description=f"{operation.label} selected jobs", permissions=["operate"])(action)


def run_operation(modeladmin, request, queryset, operation: JobOperation):
    """Thin: confirm first when the operation asks for it, then call it on each job and report."""
    if request.POST.get("select_across") == "1":
        modeladmin.message_user(request, f"{operation.label} is refused on all jobs across pages.", messages.WARNING)
        return None
    jobs = list(queryset.order_by("pk"))
    if operation.confirm and "_confirm" not in request.POST:
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": f"{operation.label} {len(jobs)} job(s)?",
            "operation": operation,
            "jobs": jobs,
            "opts": modeladmin.model._meta,
            "action_name": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "next": _next_url(request),
        }
        return TemplateResponse(request, "admin/jobs/job/confirm_operation.html", context)
    for job in jobs:
        if not may(request, RUN_JOBS, job.project_id):
            modeladmin.message_user(request, f"job {job.pk}: {operation.name} needs the data manager role on its "
                                    "project", messages.ERROR)  # fmt: skip
            continue
        if not operation.applies(job):
            modeladmin.message_user(request, f"job {job.pk} ({job.status}): cannot {operation.name}", messages.WARNING)
            continue
        try:
            operation.function(job)
        except InputError as exc:
            modeladmin.message_user(request, refusal(exc), messages.ERROR)
        except ServiceUnavailable as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
        else:
            modeladmin.message_user(request, f"job {job.pk}: {operation.past}", messages.SUCCESS)
    next_url = _next_url(request)
    return HttpResponseRedirect(next_url) if next_url else None


def _next_url(request) -> str:
    """Where the job page's buttons return to (only a path on this site)."""
    url = request.POST.get("_next", "")
    return url if url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}) else ""


class JobLogInline(admin.TabularInline):
    model = JobLog
    fields = ("created_at", "level", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    ordering = ("created_at", "id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return may(request, VIEW, anywhere=True)  # the job's page is scoped already


class JobAdmin(ProjectScopedAdmin):
    # Fits a 1366-pixel window beside the navigation and the filters: "(dry run)" and "(reverted)"
    # follow the status, the scope is its name, the time is compact and its user below it.
    list_display = ("id", "task", "scope_name", "status_column", "progress_column", "changed", "created")
    list_filter = ("status", "task", "dry_run", "scope_type")
    search_fields = ("task", "=id", "=scope_id")
    list_select_related = ("created_by",)
    change_form_template = "admin/jobs/job/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "task",
                    "task_version",
                    "scope",
                    "dry_run",
                    "stack",
                    "config_display",
                    "executor",
                    "created_by",
                )
            },
        ),
        ("Progress", {"fields": ("status_display", "progress_display", "stage", "stages_display", "error")}),
        ("Results", {"fields": ("replaces", "metrics_display", "result_display", "review")}),
        ("Times", {"fields": ("created_at", "started_at", "heartbeat_at", "finished_at", "reverted_at")}),
    )
    readonly_fields = ("task", "task_version", "scope", "dry_run", "stack", "config_display", "executor", "created_by",
                       "replaces",
                       "status_display", "progress_display", "stage", "stages_display", "error", "metrics_display",
                       "result_display", "review", "created_at", "started_at", "heartbeat_at", "finished_at",
                       "reverted_at")  # fmt: skip
    inlines = (JobLogInline,)
    permission_actions = {"operate": RUN_JOBS}
    actions = [_operation_action(operation) for operation in job_operations().values()]

    def get_queryset(self, request):
        # The scope's name in the same query as the job (a per-row lookup would grow with the page),
        # and the creator's name where the viewer may see it (see _sees_creator).
        managed = projects_where(request.user, MANAGE).values("pk")
        shown = Q(created_by_id=request.user.pk) | Q(project_id__in=managed)
        name = Case(When(shown, then=F("created_by__username")), default=Value(None), output_field=CharField())
        return (
            super()
            .get_queryset(request)
            .annotate(
                capture_set_name=Subquery(CaptureSet.objects.filter(pk=OuterRef("scope_id")).values("name")[:1]),
                occurrence_key=Subquery(Occurrence.objects.filter(pk=OuterRef("scope_id")).values("key")[:1]),
                creator_shown=name,
            )
        )

    def has_add_permission(self, request) -> bool:
        return False  # jobs start from the "Run ..." actions of capture sets and occurrences

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revert undoes a job; deleting its row would only lose the record of what it did

    def has_operate_permission(self, request) -> bool:
        """Cancel, revert and resume are offered to data managers; each job is checked on its project."""
        return may(request, RUN_JOBS, anywhere=True)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        operations = []
        if job is not None and may(request, RUN_JOBS, job.project_id):
            operations = [op for op in job_operations().values() if op.applies(job)]
        extra = {"job_operations": operations, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    @admin.display(description="scope")
    def scope(self, obj) -> str:
        if obj.scope_type == Job.CAPTURE_SET:
            name = getattr(obj, "capture_set_name", None) or f"#{obj.scope_id}"
            url = reverse("admin:observations_captureset_change", args=[obj.scope_id])
            return format_html('capture set <a href="{}">{}</a>', url, name)
        key = getattr(obj, "occurrence_key", None) or f"#{obj.scope_id}"
        url = reverse("admin:observations_occurrence_change", args=[obj.scope_id])
        return format_html('occurrence <a href="{}">{}</a>', url, key)

    @admin.display(description="scope")
    def scope_name(self, obj) -> str:
        if obj.scope_type == Job.CAPTURE_SET:
            name = getattr(obj, "capture_set_name", None) or f"#{obj.scope_id}"
            return format_html('<a href="{}">{}</a>', reverse("admin:observations_captureset_change",
                               args=[obj.scope_id]), name)  # fmt: skip
        return self.scope(obj)

    @admin.display(description="status", ordering="status")
    def status_column(self, obj) -> str:
        dry_run = " (dry run)" if obj.dry_run else ""
        return format_html("{}{}", self.status_display(obj), dry_run)

    @admin.display(description="progress", ordering="progress")
    def progress_column(self, obj) -> str:
        percent = round(obj.progress * 100)
        return format_html('<progress class="job-progress" max="1" value="{}" title="{}%" style="width: 5em">'
                           "</progress>", f"{obj.progress:.4f}", percent)  # fmt: skip

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self._sees_creator(request, obj):
            return fieldsets
        return [(name, {**options, "fields": tuple(f for f in options["fields"] if f != "created_by")})
                for name, options in fieldsets]  # fmt: skip

    @staticmethod
    def _sees_creator(request, obj) -> bool:
        """Who created a job tells who holds a role on its project: the creator and the project's
        managers see it, as they see memberships (docs/access.md)."""
        return obj.created_by_id == request.user.pk or may(request, MANAGE, obj.project_id)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj) -> str:
        when = timezone.localtime(obj.created_at)
        name = getattr(obj, "creator_shown", None)
        by = format_html('<br><span class="quiet">by {}</span>', name) if name else ""
        return format_html('<span style="white-space: nowrap">{}</span>{}', f"{when:%Y-%m-%d %H:%M}", by)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj) -> str:
        suffix = " (reverted)" if obj.reverted_at else ""
        return format_html('<span class="job-status status-{}">{}</span>{}', obj.status, obj.status, suffix)

    @admin.display(description="progress", ordering="progress")
    def progress_display(self, obj) -> str:
        return progress_bar(obj)

    @admin.display(description="changed")
    def changed(self, obj):
        return (obj.metrics or {}).get("changed", "–")

    @admin.display(description="config")
    def config_display(self, obj) -> str:
        return key_values(obj.config)

    @admin.display(description="stages")
    def stages_display(self, obj) -> str:
        stages = obj.stages or []
        items = format_html_join("", "<li>{} – {}%</li>", ((s["name"], round(s["progress"] * 100)) for s in stages))
        return format_html('<ol class="job-stages">{}</ol>', items)

    @admin.display(description="replaces")
    def replaces(self, obj) -> str:
        notes = replacement_notes(obj)
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((n,) for n in notes))) if notes else "–"

    @admin.display(description="metrics")
    def metrics_display(self, obj) -> str:
        return metrics_html(obj.metrics, dry_run=obj.dry_run)

    @admin.display(description="result")
    def result_display(self, obj) -> str:
        return result_html(obj.result)

    @admin.display(description="review")
    def review(self, obj) -> str:
        if obj.scope_type != Job.CAPTURE_SET or obj.dry_run:
            return "–"
        try:
            url = reverse("review:capture-set", args=[obj.scope_id])
        except NoReverseMatch:
            return "–"
        return format_html('<a href="{}?job={}" class="review-link">review what this job changed</a>', url, obj.pk)


class JobLogAdmin(ProjectScopedAdmin):
    project_path = "job__project"

    list_display = ("created_at", "job_id", "level", "message")
    list_filter = ("level",)
    search_fields = ("message",)
    raw_id_fields = ("job",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
