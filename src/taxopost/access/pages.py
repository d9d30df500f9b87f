"""The check of a page outside the admin (review, evaluation): view role on the page's project."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.encoding import iri_to_uri

from taxopost.access.roles import VIEW
from taxopost.access.rules import can

#: Longest page address a login redirect carries back (Django's redirects stop at 2,048 characters,
#: and the login's own address and the quoting of ``next`` come on top).
MAX_BACK = 1000


def page_denied(request: HttpRequest, project_id: int | None, action: str = VIEW) -> HttpResponse | None:
    """None when the user may see the page; else the login page for an anonymous visitor, and a 404
    for a logged-in user (a project one may not view is not shown to exist)."""
    if can(request.user, action, project_id):
        return None
    if not request.user.is_authenticated:
        # Back to the page after the login, with its query unless that makes the address longer
        # than a redirect may be (Django refuses one: a bare 400, its traceback in the log).
        back = request.get_full_path()
        return redirect_to_login(back if len(iri_to_uri(back)) <= MAX_BACK else request.path)
    raise Http404("No such capture set.")


def page_row(request: HttpRequest, model, pk: int):
    """``(the row with this id, None)`` when the user may see it, else ``(None, the answer)``.

    A missing row is answered as a denied one (the login page for an anonymous visitor): a 404
    before the check told anyone which ids exist.
    """
    try:  # the row alone (the pages read its name and project id): a cached page's dearest query
        row = model._default_manager.get(pk=pk)
    except model.DoesNotExist:
        row = None
    denied = page_denied(request, row.project_id if row is not None else None)
    if denied is not None:
        return None, denied
    if row is None:
        raise Http404("No such capture set.")
    return row, None
