"""Admin of memberships (by the project's managers) and of API tokens (listed without their keys).

The admin's login form is replaced here by the limited one of :mod:`taxopost.access.forms`, and
Django's user and group admins by the same ones with their actions' selections checked
(:class:`~taxopost.access.scoping.CheckedSelectionAdmin`).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.html import format_html

from taxopost.access.forms import LimitedAdminAuthenticationForm
from taxopost.access.models import AccessToken, Membership
from taxopost.access.roles import MANAGE
from taxopost.access.scoping import CheckedSelectionAdmin, ProjectScopedAdmin
from taxopost.access.tokens import MAX_DAYS, issue, revoke

admin.site.login_form = LimitedAdminAuthenticationForm

for model, django_admin in ((get_user_model(), UserAdmin), (Group, GroupAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, type(django_admin.__name__, (CheckedSelectionAdmin, django_admin), {}))


@admin.register(Membership)
class MembershipAdmin(ProjectScopedAdmin):
    """Who holds which role is seen by the project's managers only: a viewer's role, or a public
    project's, does not show its members' accounts."""

    view_action = MANAGE
    list_display = ("user", "project", "role", "created_at")
    list_filter = ("role", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "project__name")
    list_select_related = ("user", "project")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """A project manager names the account to add by its username: a list of choices would
        show them every account of the installation (superusers keep the list)."""
        if db_field.name == "user" and not request.user.is_superuser:
            return forms.ModelChoiceField(
                queryset=get_user_model().objects.filter(is_active=True),
                to_field_name="username",
                widget=forms.TextInput(attrs={"autocomplete": "off"}),
                label="User",
                help_text="The account's username (accounts are not listed).",
                error_messages={"invalid_choice": "No active account has this username."},
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        """A membership stays its account's: another account gets a membership of its own."""
        return ("user",) if obj is not None and not request.user.is_superuser else ()


class TokenCreateForm(forms.ModelForm):
    days = forms.FloatField(
        required=False, min_value=0.001, max_value=MAX_DAYS,
        help_text="Days until it expires (blank: TAXOPOST_TOKEN_TTL_DAYS)",
    )  # fmt: skip

    class Meta:
        model = AccessToken
        fields = ("user", "name")


@admin.register(AccessToken)
class AccessTokenAdmin(CheckedSelectionAdmin):
    """Anyone in the admin manages their own tokens; superusers see everyone's. No key is ever shown
    again after the page that made it: only its first characters and its digest are stored."""

    list_display = ("prefix_display", "name", "user", "created_at", "expires_at", "last_used_at", "state")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("prefix_display", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    actions = ["revoke_tokens"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request) and (obj is None or self._own(request, obj))

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the row tells when a token was made, used and revoked

    def _own(self, request, obj) -> bool:
        return request.user.is_superuser or obj.user_id == request.user.pk

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TokenCreateForm
            kwargs["fields"] = ("user", "name", "days") if request.user.is_superuser else ("name", "days")
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "days") if request.user.is_superuser else ("name", "days")
        return ("prefix_display", "name", "user", "created_at", "expires_at", "last_used_at", "revoked_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        if not request.user.is_superuser or obj.user_id is None:
            obj.user = request.user
        key = issue(obj, days=form.cleaned_data.get("days"))
        obj.save()
        self.message_user(
            request,
            format_html('The token\'s key, shown only now (copy it): <code class="token-key">{}</code>', key),
            messages.WARNING,
        )

    @admin.display(description="token")
    def prefix_display(self, obj) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="state")
    def state(self, obj) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        return "expired" if obj.expires_at <= timezone.now() else "valid"

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        count = revoke(queryset)  # the queryset holds only tokens this user may see
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)
