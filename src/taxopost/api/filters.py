"""Filter types shared by the resources."""

from __future__ import annotations

import django_filters
from django import forms

#: Largest id a database column holds (bigint); a larger one is a 400, not a database error.
MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class IdFilter(django_filters.NumberFilter):
    """A row id: a positive integer that fits the database's id column."""

    field_class = IdField
