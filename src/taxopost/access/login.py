"""The login of the review and evaluation pages: any active account, staff or not.

The admin's login takes staff accounts only, so a member without ``is_staff`` (whose roles
let them view a project's review pages) could not log in to them. Same look as the admin's,
same failure limits (:class:`~taxopost.access.forms.LimitedAuthenticationForm`).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import LoginView

from taxopost.access.forms import LimitedAuthenticationForm


class MemberLoginView(LoginView):
    form_class = LimitedAuthenticationForm
    template_name = "admin/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return {**admin.site.each_context(self.request), **context, "title": "Log in",
                "app_path": self.request.get_full_path()}  # fmt: skip
