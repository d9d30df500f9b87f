"""Admin of projects, images, capture sets, detections, occurrences, classifications and identifications.

Predictions (classifications, determination history) are shown, not edited: they are written
by importers and jobs, and a hand edit would break the ``applied_to`` chains. Every admin here
shows the rows of the projects the user may view and edits where the user's role allows it
(:class:`taxopost.access.scoping.ProjectScopedAdmin`). Every changelist
loads what its columns show with joins or annotations, so a page costs the same number of
queries whatever its size.
"""

from __future__ import annotations

import numpy as np
from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR, IncorrectLookupParameters
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from taxopost.access.roles import IDENTIFY, MANAGE
from taxopost.access.rules import visible_projects
from taxopost.access.scoping import ProjectScopedAdmin
from taxopost.ml.admin import key_values
from taxopost.observations.admin_forms import CaptureSetForm, DetectionForm, SourceImageForm
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.edits import count_edit
from taxopost.observations.models import (
    CaptureSet,
    Classification,
    Detection,
    DeterminationChange,
    Identification,
    Occurrence,
    Project,
    SourceImage,
)
from taxopost.observations.provenance import classification_chains
from taxopost.observations.vectors import stack
from taxopost.taxa.admin import rank_filter

#: The project filter offers only the projects of the rows the user may see (not every project's name).
PROJECT_FILTER = ("project", admin.RelatedOnlyFieldListFilter)


class ReadOnlyAdmin(ProjectScopedAdmin):
    """Rows written by importers and jobs: viewable, never added or edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def three_decimals(value: float | None) -> str:
    """A score as every admin page shows it: three decimals (a float's 17 digits say nothing more)."""
    return "–" if value is None else f"{value:.3f}"


def provenance_html(classification_id: int | None) -> str:
    if classification_id is None:
        return "–"
    chain = classification_chains([classification_id])[classification_id]
    return render_to_string("observations/provenance_chain.html", {"chain": chain})


class ScopeAdmin(ProjectScopedAdmin):
    """Admin of a scope that other apps add actions to, so that this app imports none of them.

    ``action_providers`` (one list per subclass) are callables ``(model_admin, request)`` that
    return admin actions as ``get_actions`` does, ``{name: (function, name, description)}``: the
    task framework adds its "Run <task>" actions this way, one per registered task.
    """

    action_providers: list = []

    def get_actions(self, request):
        actions = super().get_actions(request)
        if IS_POPUP_VAR in request.GET:
            return actions
        for provider in self.action_providers:
            actions.update(provider(self, request))
        return actions


class CaptureSetFilter(admin.SimpleListFilter):
    """Occurrences or detections of one capture set (one query for the choices, a subquery to filter)."""

    title = "capture set"
    parameter_name = "capture_set"

    def lookups(self, request, model_admin):
        visible = CaptureSet.objects.filter(project__in=visible_projects(request.user).values("pk"))
        return list(visible.order_by("name").values_list("id", "name"))

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isdecimal() or len(self.value()) > 18:  # not an id: the admin says so
            raise IncorrectLookupParameters(f"capture_set={self.value()[:40]!r} is not a capture set's id")
        detections = CaptureSet.detections_of(int(self.value()))
        column = "occurrence_id" if queryset.model is Occurrence else "id"
        return queryset.filter(id__in=detections.values(column))


@admin.register(Project)
class ProjectAdmin(ProjectScopedAdmin):
    """A project manager edits the project; only superusers add or delete projects."""

    project_path = "pk"
    edit_action = MANAGE
    list_display = ("name", "description", "public", "created_at")
    list_filter = ("public",)
    search_fields = ("name",)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(SourceImage)
class SourceImageAdmin(ProjectScopedAdmin):
    form = SourceImageForm
    list_display = ("path", "project", "width", "height", "timestamp")
    list_filter = (PROJECT_FILTER,)
    search_fields = ("path",)
    list_select_related = ("project",)
    show_full_result_count = False


@admin.register(CaptureSet)
class CaptureSetAdmin(ScopeAdmin):
    form = CaptureSetForm
    list_display = ("name", "project", "n_images", "review_link", "created_at")
    list_filter = (PROJECT_FILTER,)
    search_fields = ("name",)
    list_select_related = ("project",)
    raw_id_fields = ("images",)
    related_project_paths = {"images": "project"}
    action_providers = []

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_images=Count("images"))

    @admin.display(description="images", ordering="n_images")
    def n_images(self, obj) -> int:
        return obj.n_images

    @admin.display(description="review")
    def review_link(self, obj) -> str:
        return format_html('<a href="{}">review changes</a>', reverse("review:capture-set", args=[obj.pk]))


@admin.register(Occurrence)
class OccurrenceAdmin(ScopeAdmin):
    list_display = ("key", "project", "determination", "determination_rank", "score", "decided_by")
    list_filter = (CaptureSetFilter, PROJECT_FILTER, rank_filter("determination"))
    search_fields = ("key", "determination__name")
    list_select_related = ("project", "determination", "determined_by__algorithm")
    # Computed from identifications and predictions (observations.determinations), never typed:
    # not even on a new occurrence, whose form would otherwise take any project's classification.
    readonly_fields = ("determination", "score", "determined_by", "determined_by_identification", "provenance",
                       "determination_history", "detections_summary")  # fmt: skip
    fieldsets = (
        (None, {"fields": ("project", "key")}),
        ("Determination", {"fields": ("determination", "score", "determined_by",
                                       "determined_by_identification", "provenance")}),
        ("History", {"fields": ("determination_history",)}),
        ("Detections", {"fields": ("detections_summary",)}),
    )  # fmt: skip
    action_providers = []

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a determination is recomputed from identifications and predictions, never typed

    @admin.display(description="rank", ordering="determination__rank")
    def determination_rank(self, obj) -> str:
        return obj.determination.rank if obj.determination_id else "–"

    @admin.display(description="score", ordering="determination_score")
    def score(self, obj) -> str:
        return three_decimals(obj.determination_score)

    @admin.display(description="decided by")
    def decided_by(self, obj) -> str:
        if obj.determined_by_identification_id:
            return "identification"
        return obj.determined_by.algorithm.key if obj.determined_by_id else "–"

    @admin.display(description="provenance of the determination")
    def provenance(self, obj) -> str:
        if obj.determined_by_identification_id:
            return "A person's identification (it outranks every prediction)."
        return provenance_html(obj.determined_by_id)

    @admin.display(description="determination history")
    def determination_history(self, obj) -> str:
        rows = obj.determination_history.select_related(
            "taxon", "classification__algorithm", "identification", "job"
        ).order_by("-created_at", "-id")[:200]
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{change.created_at:%Y-%m-%d %H:%M:%S}",
                    f"{change.taxon.name} ({change.taxon.rank})" if change.taxon_id else "none",
                    "–" if change.score is None else f"{change.score:.3f}",
                    _decided_by(change),
                    format_html('<a href="{}">job {} ({})</a>', reverse("admin:jobs_job_change", args=[change.job_id]),
                                change.job_id, change.job.task) if change.job_id else "import",
                )
                for change in rows
            ),
        )  # fmt: skip
        head = "<tr><th>when</th><th>determination</th><th>score</th><th>decided by</th><th>made by</th></tr>"
        return format_html('<table class="determination-history"><thead>{}</thead><tbody>{}</tbody></table>',
                           mark_safe(head), body)  # fmt: skip

    @admin.display(description="current classifications of its detections")
    def detections_summary(self, obj) -> str:
        rows = (
            Classification.objects.filter(detection__occurrence=obj, terminal=True)
            .select_related("taxon", "algorithm")
            .defer("scores", "logits")
            .order_by("detection_id", "-score")[:100]
        )
        return format_html_join(
            "",
            '<div>detection {}: <a href="{}">{} ({}) {}</a> by {}</div>',
            (
                (c.detection_id, reverse("admin:observations_classification_change", args=[c.pk]), c.taxon.name,
                 c.taxon.rank, f"{c.score:.3f}", c.algorithm.key)
                for c in rows
            ),
        )  # fmt: skip


def _decided_by(change: DeterminationChange) -> str:
    if change.identification_id:
        return format_html("identification by {}", change.identification.who or change.identification.user or "?")
    if change.classification_id:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:observations_classification_change", args=[change.classification_id]),
            change.classification.algorithm.key,
        )
    return "–"


@admin.register(Detection)
class DetectionAdmin(ProjectScopedAdmin):
    form = DetectionForm
    project_path = "source_image__project"
    related_project_paths = {"occurrence": "project"}
    list_display = ("id", "source_image", "occurrence", "bbox")
    list_filter = (CaptureSetFilter,)
    search_fields = ("key", "occurrence__key")
    list_select_related = ("source_image", "occurrence")
    raw_id_fields = ("source_image", "occurrence")
    show_full_result_count = False

    # A detection moved to another occurrence, or deleted with its classifications, changes the
    # determination of the occurrence it left as well as of the one it joined.
    # Counted as an edit, so the cached review and evaluation pages see it (a signal on
    # Detection's deletes would take the fast path from every cascade that reaches detections).
    def save_model(self, request, obj, form, change):
        left = _stored_occurrence(Detection, obj) if change else None
        super().save_model(request, obj, form, change)
        recompute_determinations({o for o in (left, obj.occurrence_id) if o is not None})
        count_edit()

    def delete_model(self, request, obj):
        occurrence_id = obj.occurrence_id
        super().delete_model(request, obj)
        recompute_determinations([occurrence_id] if occurrence_id is not None else [])
        count_edit()

    def delete_queryset(self, request, queryset):
        occurrences = set(queryset.exclude(occurrence=None).values_list("occurrence_id", flat=True))
        super().delete_queryset(request, queryset)
        recompute_determinations(occurrences)
        count_edit()


def _stored_occurrence(model, obj) -> int | None:
    """The occurrence ``obj`` belongs to in the database, before the change form's save."""
    return model.objects.filter(pk=obj.pk).values_list("occurrence_id", flat=True).first()


@admin.register(Classification)
class ClassificationAdmin(ReadOnlyAdmin):
    project_path = "detection__source_image__project"
    # Names rather than foreign keys (whose columns never wrap), so the list fits a 1366-pixel window.
    list_display = ("id", "detection_column", "taxon_name", "rank", "score_display", "algorithm_name", "terminal",
                    "applied_to_column", "job_column")  # fmt: skip
    list_filter = ("terminal", "algorithm__task_type", "algorithm", rank_filter("taxon"))
    search_fields = ("taxon__name", "algorithm__key")
    list_select_related = ("taxon", "algorithm")
    raw_id_fields = ("detection", "taxon", "category_map", "algorithm", "applied_to", "job")
    fields = ("detection", "taxon", "score_display", "algorithm", "terminal", "applied_to", "job", "created_at",
              "provenance", "details_display", "top_classes")  # fmt: skip
    readonly_fields = ("score_display", "provenance", "details_display", "top_classes")
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("scores", "logits")

    @admin.display(description="rank", ordering="taxon__rank")
    def rank(self, obj) -> str:
        return obj.taxon.rank

    @admin.display(description="score", ordering="score")
    def score_display(self, obj) -> str:
        return three_decimals(obj.score)

    @admin.display(description="taxon", ordering="taxon__name")
    def taxon_name(self, obj) -> str:
        return obj.taxon.name

    @admin.display(description="algorithm", ordering="algorithm__name")
    def algorithm_name(self, obj) -> str:
        return format_html('<span title="{}">{}</span>', obj.algorithm.key, obj.algorithm.name)

    @admin.display(description="detection", ordering="detection_id")
    def detection_column(self, obj) -> int:
        return obj.detection_id

    @admin.display(description="applied to", ordering="applied_to_id")
    def applied_to_column(self, obj) -> int | str:
        return obj.applied_to_id or "–"

    @admin.display(description="job", ordering="job_id")
    def job_column(self, obj) -> int | str:
        return obj.job_id or "–"

    @admin.display(description="provenance (applied_to chain to the model output)")
    def provenance(self, obj) -> str:
        return provenance_html(obj.pk)

    @admin.display(description="details")
    def details_display(self, obj) -> str:
        return key_values(obj.details)

    @admin.display(description="top classes")
    def top_classes(self, obj) -> str:
        row = Classification.objects.filter(pk=obj.pk).values_list("scores", "category_map__labels").first()
        if row is None or row[0] is None or row[1] is None:
            return "no score vector"
        scores = stack([row[0]], len(row[1]))[0]
        top = np.argsort(-scores, kind="stable")[:5]
        return format_html_join(", ", "{} {}", ((row[1][i], f"{float(scores[i]):.3f}") for i in top))


@admin.register(Identification)
class IdentificationAdmin(ProjectScopedAdmin):
    """Identifications are ground truth: saving or deleting one recomputes its occurrence's determination.

    Identifiers (and the roles above them) add, change and delete them on their projects.
    """

    project_path = "occurrence__project"
    edit_action = IDENTIFY

    list_display = ("occurrence", "taxon", "who", "user", "withdrawn", "created_at")
    list_filter = ("withdrawn",)
    search_fields = ("occurrence__key", "taxon__name", "who")
    list_select_related = ("occurrence", "taxon", "user")
    raw_id_fields = ("occurrence", "user")
    autocomplete_fields = ("taxon",)

    def get_readonly_fields(self, request, obj=None):
        # Whose it is, is who added it: only a superuser attributes one to another account
        # (``who`` names an identifier without an account).
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, "user")

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser:
            obj.user = request.user
        left = _stored_occurrence(Identification, obj) if change else None  # moved: that one changes too
        super().save_model(request, obj, form, change)
        recompute_determinations({o for o in (left, obj.occurrence_id) if o is not None})

    def delete_model(self, request, obj):
        occurrence_id = obj.occurrence_id
        super().delete_model(request, obj)
        recompute_determinations([occurrence_id])

    def delete_queryset(self, request, queryset):
        occurrences = set(queryset.values_list("occurrence_id", flat=True))
        super().delete_queryset(request, queryset)
        recompute_determinations(occurrences)


@admin.register(DeterminationChange)
class DeterminationChangeAdmin(ReadOnlyAdmin):
    project_path = "occurrence__project"
    list_display = ("occurrence", "taxon", "score_display", "classification_id", "identification_id", "job_id",
                    "created_at")  # fmt: skip
    list_filter = (rank_filter("taxon"),)
    search_fields = ("occurrence__key", "taxon__name")
    list_select_related = ("occurrence", "taxon")
    raw_id_fields = ("occurrence", "taxon", "classification", "identification", "job")
    show_full_result_count = False

    @admin.display(description="score", ordering="score")
    def score_display(self, obj) -> str:
        return three_decimals(obj.score)
