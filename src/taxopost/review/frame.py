"""The admin's frame around a page's cached content (the review and evaluation pages), kept per user.

Why: once a page's content is cached (:mod:`taxopost.review.page_cache`), rendering the admin's
frame around it (header, breadcrumbs, styles, the sidebar's slot) was half of a cached request's
time in the application, and a burst of requests is served one after another on one
interpreter lock. The frame depends on who asks (name, staff, password, sidebar), the language,
the script prefix and the page's context (title, capture set), never on the content: it is
rendered once per such key and kept for a minute in this process (the ``frames`` cache of the
settings: a few milliseconds to render again, not worth a place in the shared cache, where it
would push out pages that take seconds), split where the content goes, and each request fills
in its own CSRF token where the frame has a form. A request with messages waiting (after an
admin action) is rendered afresh, which shows them and marks them read. Access is never taken
from here: each view checks it first.
"""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.messages import get_messages
from django.core.cache import caches
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import get_script_prefix
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe


def framed_page(
    request: HttpRequest, template: str, context: dict, slot: str, content: SafeString, *, status: int = 200
) -> HttpResponse:
    """``template`` rendered with ``context``, and ``content`` (safe HTML) as its ``slot`` variable."""
    if len(get_messages(request)):  # shown (and marked read) by a fresh rendering
        return TemplateResponse(request, template, {**context, slot: content}, status=status)
    frames = caches["frames"]
    key = _frame_key(request, template, context)
    frame = frames.get(key)
    if frame is None:
        # Stand-ins no page text can hold: where the content goes, and the CSRF token.
        marker, token = f"<!-- content {secrets.token_hex(16)} -->", f"csrf-{secrets.token_hex(16)}"
        html = render_to_string(template, {**context, slot: mark_safe(marker), "csrf_token": token}, request)
        if html.count(marker) != 1:  # a template that shows its slot twice, or not at all
            return TemplateResponse(request, template, {**context, slot: content}, status=status)
        head, tail = html.split(marker)
        frame = (head, tail, token)
        frames.set(key, frame)
    head, tail, token = frame
    if token in head or token in tail:  # a form: the request's own token, as {% csrf_token %} gives it
        mine = get_token(request)
        head, tail = head.replace(token, mine), tail.replace(token, mine)
    return HttpResponse(head + content + tail, status=status)


def clear() -> None:
    """Forget every kept frame (tests start from none)."""
    caches["frames"].clear()


def _frame_key(request: HttpRequest, template: str, context: dict) -> str:
    user = request.user  # anonymous on a public project: no name, no password
    short_name = user.get_short_name() if hasattr(user, "get_short_name") else ""
    password = user.has_usable_password() if hasattr(user, "has_usable_password") else False
    who = (user.pk, user.get_username(), short_name, user.is_active, user.is_staff, password)
    parts = [template, *who, translation.get_language(), get_script_prefix()]
    parts += [(name, _identity(value)) for name, value in sorted(context.items())]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _identity(value: object) -> object:
    """What of a context value the frame can show: a model as its label, key and text; a
    queryset (the admin's log entries, which only its index shows) as its type."""
    if isinstance(value, Model):
        return (value._meta.label, value.pk, str(value))
    if isinstance(value, str | int | float | bool | type(None)):
        return value
    return type(value).__name__
