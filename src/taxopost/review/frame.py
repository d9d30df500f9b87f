"""The admin's frame around a page's cached content (the review and evaluation pages), kept per user.

Why: once a page's content is cached (:mod:`taxopost.review.page_cache`), rendering the admin's
frame around it (header, breadcrumbs, styles, the sidebar's slot) was half of a cached request's
time in the application, and a burst of requests is served one after another on one
interpreter lock. The frame depends on who asks (name, staff, password, sidebar), the language
and the page's context (title, capture set), never on the content: it is rendered once per such
key and kept for :data:`FRAME_SECONDS`, split where the content goes, and each request fills in
its own CSRF token. A request with messages waiting (after an admin action) is rendered afresh,
which shows them and marks them read. Access is never taken from here: each view checks it first.
"""

from __future__ import annotations

import hashlib

from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe

#: How long a user's rendered frame of a page is reused (as their sidebar, which it holds).
FRAME_SECONDS = 60
#: Stand-ins rendered into the kept frame: where the content goes, and the CSRF token.
_CONTENT = "<!-- taxopost: the page's content -->"
_CSRF = "taxopost-csrf-token-of-the-request"


def framed_page(
    request: HttpRequest, template: str, context: dict, slot: str, content: SafeString, *, status: int = 200
) -> HttpResponse:
    """``template`` rendered with ``context``, and ``content`` (safe HTML) as its ``slot`` variable."""
    if len(get_messages(request)):  # shown (and marked read) by a fresh rendering
        return TemplateResponse(request, template, {**context, slot: content}, status=status)
    key = _frame_key(request, template, context)
    frame = cache.get(key)
    if frame is None:
        html = render_to_string(template, {**context, slot: mark_safe(_CONTENT), "csrf_token": _CSRF}, request)
        if html.count(_CONTENT) != 1:  # a template that shows its slot twice, or not at all
            return TemplateResponse(request, template, {**context, slot: content}, status=status)
        frame = tuple(html.split(_CONTENT))
        cache.set(key, frame, FRAME_SECONDS)
    head, tail = frame
    token = get_token(request)  # the request's own, as the template's {% csrf_token %} gives it
    return HttpResponse(head.replace(_CSRF, token) + content + tail.replace(_CSRF, token), status=status)


def _frame_key(request: HttpRequest, template: str, context: dict) -> str:
    user = request.user  # anonymous on a public project: no name, no password
    short_name = user.get_short_name() if hasattr(user, "get_short_name") else ""
    password = user.has_usable_password() if hasattr(user, "has_usable_password") else False
    who = (user.pk, user.get_username(), short_name, user.is_active, user.is_staff, password)
    parts = [template, *who, translation.get_language()]
    parts += [(name, _identity(value)) for name, value in sorted(context.items())]
    return "taxopost:frame:" + hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _identity(value: object) -> object:
    """What of a context value the frame can show: a model as its label, key and text; a
    queryset (the admin's log entries, which only its index shows) as its type."""
    if isinstance(value, Model):
        return (value._meta.label, value.pk, str(value))
    if isinstance(value, str | int | float | bool | type(None)):
        return value
    return type(value).__name__
