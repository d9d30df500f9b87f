"""Page-number pagination; clients may ask for up to 500 rows a page."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """DRF's page numbers, except that a ``page`` or ``page_size`` that is not a whole number
    >= 1 is a 400 naming it (DRF answered 50 rows for ``page_size=abc`` and "Invalid page." for
    ``page=abc``). ``page=last`` is the last page; a page past it stays a 404; a size over 500
    gets 500 rows."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        for param in (self.page_query_param, self.page_size_query_param):
            value = request.query_params.get(param)
            if param == self.page_query_param and value in self.last_page_strings:
                continue
            if value is not None and not (value.isascii() and value.isdigit() and int(value) >= 1):
                raise ValidationError({param: [f"must be a whole number >= 1 (got {value[:40]!r})"]})
        return super().paginate_queryset(queryset, request, view)
