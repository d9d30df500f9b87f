"""Admin classes whose pages, lists, forms and actions follow the roles of :mod:`taxopost.access.rules`.

``ProjectScopedAdmin`` is for rows that belong to a project (``project_path`` leads from the model
to it): a list shows the rows of the projects the user may view, a page opens where the user may
view the row's project, and adding, changing or deleting needs ``edit_action`` there.
``SharedDataAdmin`` is for reference data that belongs to no project (taxa, taxa lists,
algorithms, category maps): whoever may view some project reads it, and editing it needs
Django's model permission (superusers have it), as before.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect

from taxopost.access.id_fields import (
    IdCheckedAutocompleteSelect,
    IdCheckedAutocompleteSelectMultiple,
    IdCheckedChoiceField,
    IdCheckedMultipleChoiceField,
    is_id,
)
from taxopost.access.roles import MANAGE, VIEW
from taxopost.access.rules import can, can_anywhere, project_of, projects_where, scoped


def may(request, action: str, project_id: int | None = None, *, anywhere: bool = False) -> bool:
    """``can`` / ``can_anywhere`` for the request's user, remembered for the rest of the request."""
    memo = request.__dict__.setdefault("_taxopost_access", {})
    key = (action, None if anywhere else project_id, anywhere)
    if key not in memo:
        memo[key] = can_anywhere(request.user, action) if anywhere else can(request.user, action, project_id)
    return memo[key]


class CheckedSelectionAdmin(admin.ModelAdmin):
    """An action on rows selected by ids that are not ids does nothing and says so.

    Django's admin passes the selected values to ``pk__in`` as they are: a value that is not a
    number, or a number no id column holds (a crafted form), was a server error. Checked once,
    before the list runs any action (or an action's confirmation page). The forms' related-row
    fields check their values the same way (:mod:`taxopost.access.id_fields`).
    """

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", IdCheckedChoiceField)
        if db_field.name in self.get_autocomplete_fields(request) and "widget" not in kwargs:
            kwargs["widget"] = IdCheckedAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", IdCheckedMultipleChoiceField)
        if db_field.name in self.get_autocomplete_fields(request) and "widget" not in kwargs:
            kwargs["widget"] = IdCheckedAutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and self._selection_refused(request):
            return HttpResponseRedirect(request.get_full_path())  # as Django's admin does after a failed action
        return super().changelist_view(request, extra_context)

    def _selection_refused(self, request) -> bool:
        """True, with a message, when a selected value is not an id of this model."""
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            if not is_id(self.model._meta.pk, value):
                text = f"{value[:40]!r} is not the id of a {self.model._meta.verbose_name}: nothing was done."
                self.message_user(request, text, messages.ERROR)
                return True
        return False


class ProjectScopedAdmin(CheckedSelectionAdmin):
    #: The lookup from this model to its project ("pk" for the project itself).
    project_path: str = "project"
    #: What seeing a row needs on its project.
    view_action: str = VIEW
    #: What adding, changing or deleting a row needs on its project.
    edit_action: str = MANAGE
    #: Other relations a form may set, with the lookup from the related model to its project: a
    #: form offers only related rows of projects where the user may do ``edit_action``.
    related_project_paths: dict[str, str] = {}

    def get_queryset(self, request):
        return scoped(super().get_queryset(request), request.user, self.project_path, self.view_action)

    def project_id_of(self, obj) -> int | None:
        return obj.pk if self.project_path == "pk" else project_of(self.model, obj.pk, self.project_path)

    def allows(self, request, action: str, obj=None) -> bool:
        if obj is None:
            return may(request, action, anywhere=True)
        return may(request, action, self.project_id_of(obj))

    def has_module_permission(self, request) -> bool:
        return self.allows(request, self.view_action)

    def has_view_permission(self, request, obj=None) -> bool:
        return self.allows(request, self.view_action, obj)

    def has_add_permission(self, request) -> bool:
        return self.allows(request, self.edit_action)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.allows(request, self.edit_action, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.allows(request, self.edit_action, obj)

    #: What an action that declares Django's ``allowed_permissions`` needs on the project of every
    #: selected row (None: ``edit_action``).
    permission_actions: dict[str, str | None] = {"add": None, "change": None, "delete": None}

    def response_action(self, request, queryset):
        """Refuse an action, before its first page, when a selected row's project does not allow it
        (or when none of the selected rows exists for the user), instead of running it on fewer rows."""
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        chosen = queryset if request.POST.get("select_across") == "1" else queryset.filter(pk__in=selected)
        if selected and not chosen.exists():
            self.message_user(request, "None of the selected rows exists for you.", messages.WARNING)
            return None
        action = self.get_actions(request).get(request.POST.get("action", ""))
        for permission in getattr(action[0], "allowed_permissions", ()) if action else ():
            if permission in self.permission_actions:
                need = self.permission_actions[permission] or self.edit_action
                try:
                    self.check_all(request, chosen, need)
                except PermissionDenied:
                    self.message_user(request, f"Your role does not allow this on every selected row ({need}).",
                                      messages.ERROR)  # fmt: skip
                    return None
        return super().response_action(request, queryset)

    def delete_queryset(self, request, queryset) -> None:
        """ "Delete selected" on rows of several projects: all of them must allow it, or nothing goes."""
        self.check_all(request, queryset, self.edit_action)
        super().delete_queryset(request, queryset)

    def check_all(self, request, queryset, action: str) -> None:
        """PermissionDenied unless ``action`` is allowed on the project of every row of ``queryset``."""
        if request.user.is_superuser:
            return
        allowed = projects_where(request.user, action).values("pk")
        if queryset.exclude(**{f"{self.project_path}__in": allowed}).exists():
            raise PermissionDenied

    def _related_path(self, name: str) -> str | None:
        head, _, rest = self.project_path.partition("__")
        if name == head and head != "pk":
            return rest or "pk"
        return self.related_project_paths.get(name)

    def _limit(self, db_field, request, kwargs: dict) -> dict:
        path = self._related_path(db_field.name)
        if path is not None and not request.user.is_superuser:
            related = db_field.related_model._default_manager.all()
            kwargs["queryset"] = scoped(related, request.user, path, self.edit_action)
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **self._limit(db_field, request, kwargs))
        if isinstance(getattr(formfield, "widget", None), ForeignKeyRawIdWidget) and not request.user.is_superuser:
            formfield.widget = ScopedRawIdWidget(formfield.widget, formfield.queryset)
        return formfield

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(db_field, request, **self._limit(db_field, request, kwargs))


class SharedDataAdmin(CheckedSelectionAdmin):
    """Reference data of every project: read by whoever may view a project, edited with Django's permissions."""

    def has_module_permission(self, request) -> bool:
        return may(request, VIEW, anywhere=True) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return may(request, VIEW, anywhere=True) or super().has_view_permission(request, obj)


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id box that names only rows its field offers.

    Django's names whatever row the id given finds in the whole table (an add form takes its
    initial values from the URL), which told anyone who may add a row the names of other
    projects' occurrences, images and users, one id at a time.
    """

    def __init__(self, widget: ForeignKeyRawIdWidget, queryset) -> None:
        super().__init__(widget.rel, widget.admin_site, widget.attrs, using=widget.db)
        self.offered = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            offered = self.offered.filter(**{key: value}).exists()
        except (ValueError, TypeError, ValidationError):
            return "", ""
        return super().label_and_url_for_value(value) if offered else ("", "")
