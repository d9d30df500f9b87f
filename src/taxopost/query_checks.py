"""Refuse query strings that hold NUL characters: 400, before any view reads them.

A view reads its query parameters as filters (the API's), lookups (the evaluation page's
algorithm) or admin list filters; on PostgreSQL a NUL in any of them failed the query itself,
a server error, where the documented answer to bad input is a 400. Forms and JSON bodies are
checked where they are parsed (Django's and DRF's fields, :func:`taxopost.tasks.parse_config`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class RefuseNulInQueryMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                shown = name.replace("\x00", "\\x00")[:40]
                return HttpResponseBadRequest(
                    f"Query parameter {shown!r} holds a NUL character, which no parameter may hold.\n",
                    content_type="text/plain; charset=utf-8",
                )
        return self.get_response(request)
