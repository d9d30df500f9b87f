"""Admin actions "Run <task>" on capture sets and occurrences, one per registered task.

They reach the capture-set and occurrence admins through the ``action_providers`` of
:class:`taxopost.observations.admin.ScopeAdmin` (see :mod:`taxopost.postprocessing.admin`), and
are computed per request, so a task registered at any time gets its action.

Thin, like ``delete_selected``: the first POST (from the changelist) shows an intermediate page
with the task's config form, generated from its pydantic schema, re-posting the selected ids;
"Preview" runs a dry-run job per row and shows its summary; "Run" creates one job per row with
:func:`~taxopost.postprocessing.running.operations.create_job` (the function the API and the CLI call) and submits
it to the web executor. A run the task warns about (:func:`~taxopost.postprocessing.running.operations.task_warnings`,
e.g. a taxa list keeping few classes) shows the warnings and runs only once their checkbox is
ticked. Nothing else lives here.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from pydantic import ValidationError

from taxopost.access.roles import RUN_JOBS
from taxopost.access.scoping import may
from taxopost.errors import InputError, ServiceUnavailable
from taxopost.jobs.models import Job
from taxopost.jobs.replacements import replacement_notes
from taxopost.ml.admin import key_values
from taxopost.postprocessing.forms import config_form_class
from taxopost.postprocessing.registry import all_tasks
from taxopost.postprocessing.running.embedded import EmbeddedExecutor
from taxopost.postprocessing.running.job_display import metrics_html
from taxopost.postprocessing.running.operations import create_job, submit_job, task_warnings
from taxopost.postprocessing.running.web import submit_from_web
from taxopost.tasks import config_field_errors

#: One job per selected row: a selection larger than this is refused (select fewer, or use the API).
MAX_SELECTED = 50


class JobOptionsForm(forms.Form):
    """What a job takes besides its task's config."""

    stack = forms.BooleanField(
        required=False,
        label="Stack on earlier output",
        help_text="Apply the task on top of its own earlier output in each chain. By default a run with "
        "another config replaces that output and starts from the source it was derived from.",
    )


def run_task_actions(scope_type: str) -> Callable[[admin.ModelAdmin, HttpRequest], dict]:
    """An action provider: "Run <task>" for every registered task, to users who may create jobs."""

    def provide(modeladmin: admin.ModelAdmin, request: HttpRequest) -> dict:
        if not may_run(request):
            return {}
        actions = (_run_action(task_class, scope_type) for task_class in all_tasks())
        return {action.__name__: (action, action.__name__, action.short_description) for action in actions}

    return provide


def may_run(request: HttpRequest) -> bool:
    """Who is offered the run actions: a data manager of some project (or a superuser)."""
    return may(request, RUN_JOBS, anywhere=True)


def _run_action(task_class: type, scope_type: str):
    @admin.action(description=f"Run {task_class.name.lower()}")
    def action(modeladmin, request, queryset):
        if not may_run(request):
            raise PermissionDenied
        modeladmin.check_all(request, queryset, RUN_JOBS)  # every selected row's project, not just one
        return run_task_view(modeladmin, request, queryset, task_class, scope_type)

    action.__name__ = f"run_{task_class.key}"
    return action


def run_task_view(modeladmin, request, queryset, task_class: type, scope_type: str):
    if request.POST.get("select_across") == "1":
        modeladmin.message_user(
            request,
            'Running a task on "all across pages" is refused: select the rows on this page '
            f"(at most {MAX_SELECTED}), or use the API for larger batches.",
            messages.WARNING,
        )
        return None
    scopes = list(queryset.order_by("pk")[: MAX_SELECTED + 1])
    if len(scopes) > MAX_SELECTED:
        modeladmin.message_user(
            request, f"Select at most {MAX_SELECTED} rows: one job is made per row.", messages.WARNING
        )
        return None
    form_class = config_form_class(task_class, scope_type, [scope.pk for scope in scopes])
    previews = warnings = None
    if "_preview" in request.POST or "_run" in request.POST:
        form = form_class(request.POST)
        options = JobOptionsForm(request.POST)
        config = _validated_config(form, task_class)
        stack = options.is_valid() and options.cleaned_data["stack"]  # a checkbox: always valid
        if config is not None and "_run" in request.POST:
            warnings = _warnings(form, task_class, scope_type, scopes, config)
            confirmed = request.POST.get("confirm_warnings") == "1"
            jobs = None
            if warnings is not None and (confirmed or not warnings):
                jobs = _create_jobs(
                    form, task_class, scope_type, scopes, config, request.user, dry_run=False, stack=stack
                )
            if jobs is not None:
                refused = []
                for job in jobs:
                    try:
                        submit_from_web(job)
                    except ServiceUnavailable as exc:  # the job is failed and resumable: none is left queued
                        refused.append(str(exc))
                if refused:
                    modeladmin.message_user(request, f"{len(refused)} of {len(jobs)}: {refused[0]}", messages.ERROR)
                    return None
                return _started(modeladmin, request, jobs)
        elif config is not None:
            jobs = _create_jobs(form, task_class, scope_type, scopes, config, request.user, dry_run=True, stack=stack)
            if jobs is not None:
                previews = [(scope, _preview(job)) for scope, job in zip(scopes, jobs, strict=True)]
    else:
        form, options = form_class(), JobOptionsForm()
    opts = modeladmin.model._meta
    noun = opts.verbose_name if len(scopes) == 1 else opts.verbose_name_plural
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{task_class.name} on {len(scopes)} {noun}",
        # A dict, not the class: templates call callables, and a class is one.
        "task": {key: getattr(task_class, key) for key in ("key", "name", "version", "description")},
        "form": form,
        "options": options,
        "scopes": scopes,
        "previews": previews,
        "warnings": warnings,
        "opts": opts,
        "action_name": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, "admin/postprocessing/run_task.html", context)


def _validated_config(form, task_class: type) -> dict | None:
    """The form's config if the form and pydantic accept it; else every problem is on the form and None.

    pydantic checks the fields the form could clean even when another could not, so that all
    problems show at once; a field the form already refused is not reported twice.
    """
    valid = form.is_valid()
    config = form.to_config()
    try:
        task_class.config_model.model_validate(config)
    except ValidationError as exc:
        errors = config_field_errors(exc)
        form.add_config_errors({path: found for path, found in errors.items() if path.split(".")[0] not in form.errors})
        return None
    return config if valid else None


def _create_jobs(form, task_class, scope_type, scopes, config, user, *, dry_run: bool, stack: bool) -> list[Job] | None:
    """All or nothing: a scope the task refuses (e.g. its taxa list keeps no class) creates no job."""
    try:
        with transaction.atomic():
            jobs = [
                create_job(task_class.key, scope_type, s.pk, config, dry_run=dry_run, stack=stack, user=user)
                for s in scopes
            ]
    except InputError as exc:
        _show_on_form(form, exc)
        return None
    return jobs


def _warnings(form, task_class, scope_type, scopes, config) -> list[tuple] | None:
    """``(scope, warning)`` pairs the run must be confirmed for; None (errors on the form) if refused."""
    try:
        return [
            (scope, warning)
            for scope in scopes
            for warning in task_warnings(task_class.key, scope_type, scope.pk, config)
        ]
    except InputError as exc:
        _show_on_form(form, exc)
        return None


def _show_on_form(form, exc: InputError) -> None:
    """A refusal on the form: a config problem at its field(s), anything else above the form."""
    if exc.field.startswith("config."):
        form.add_config_errors(config_field_errors(exc))
    else:
        form.add_error(None, exc.message)


def _preview(job: Job) -> dict:
    """Run a dry-run job here and now: it writes nothing but its job row, and the user waits for it."""
    submit_job(job, EmbeddedExecutor())
    job.refresh_from_db()
    preview = (job.result or {}).get("preview") or {}
    return {
        "job": job,
        "metrics": job.metrics or {},
        "sample": preview.get("sample", []),
        "warnings": (job.result or {}).get("warnings", []),
        "replaces": replacement_notes(job),
        "config": key_values(job.config),
        "tables": metrics_html(job.metrics, dry_run=True),
        "error": job.error,
    }


def _started(modeladmin, request, jobs: list[Job]) -> HttpResponseRedirect:
    links = format_html_join(
        ", ", '<a href="{}">job {}</a>', ((reverse("admin:jobs_job_change", args=[job.pk]), job.pk) for job in jobs)
    )
    modeladmin.message_user(request, format_html("Started {} job(s): {}.", len(jobs), links), messages.SUCCESS)
    if len(jobs) == 1:
        return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[jobs[0].pk]))
    ids = ",".join(str(job.pk) for job in jobs)
    return HttpResponseRedirect(f"{reverse('admin:jobs_job_changelist')}?id__in={ids}")
