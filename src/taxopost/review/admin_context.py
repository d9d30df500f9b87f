"""The admin's context for the review and evaluation pages, with the navigation sidebar cached.

Why: once a page's body is cached (:mod:`taxopost.review.page_cache`), building the user's app
list (a permission check per registered model) and rendering the sidebar from it were a third of
a cached request. Both depend on the user, not on the page, so the sidebar's HTML is kept per
user for :data:`SIDEBAR_SECONDS`: a role granted or withdrawn shows in the sidebar's links within
that time. What a user may see is never taken from it: every request checks access itself.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe

#: How long a user's rendered sidebar is reused.
SIDEBAR_SECONDS = 60


def admin_page_context(request) -> dict:
    """``admin.site.each_context(request)`` without ``available_apps`` (only the sidebar and the
    admin's index read it), plus ``nav_sidebar``: the sidebar's HTML, which the pages' templates
    put in the ``nav-sidebar`` block."""
    site = admin.site
    script_name = request.META.get("SCRIPT_NAME", "")
    return {
        # The keys of AdminSite.each_context (Django 5.2), without building the app list eagerly.
        "site_title": site.site_title,
        "site_header": site.site_header,
        "site_url": script_name if site.site_url == "/" and script_name else site.site_url,
        "has_permission": site.has_permission(request),
        "is_popup": False,
        "is_nav_sidebar_enabled": site.enable_nav_sidebar,
        "log_entries": site.get_log_entries(request),
        "nav_sidebar": nav_sidebar(request) if site.enable_nav_sidebar else "",
    }


def nav_sidebar(request) -> SafeString:
    """The admin's navigation sidebar for this user, rendered at most once a minute per user and language."""
    key = f"taxopost:nav-sidebar:{request.user.pk}:{translation.get_language()}"
    html = cache.get(key)
    if html is None:
        # Rendered without the page's path: no entry is highlighted as current (these pages are no model's).
        context = {"available_apps": admin.site.get_app_list(request), "is_nav_sidebar_enabled": True}
        html = render_to_string("admin/nav_sidebar.html", context)
        cache.set(key, html, SIDEBAR_SECONDS)
    return mark_safe(html)
