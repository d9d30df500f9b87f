"""Login forms limited by :mod:`taxopost.access.login_limits`: the members' login and the admin's."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from taxopost.access import login_limits


class LimitedAuthenticationForm(AuthenticationForm):
    """Refuses every attempt, the right password too, once a username failed too often from an address."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = login_limits.client_address(self.request)
        if not login_limits.attempt(username, address):
            raise forms.ValidationError(login_limits.locked_message(), code="throttled")
        cleaned = super().clean()  # a wrong password raises: the attempt stays counted
        if self.get_user() is not None:  # an empty password raises nothing here, and authenticates no one
            login_limits.succeeded(username, address)
        return cleaned


class LimitedAdminAuthenticationForm(LimitedAuthenticationForm, AdminAuthenticationForm):
    """The same limit on the admin's login, which also needs ``is_staff``."""
