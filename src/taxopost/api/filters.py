"""Filter types shared by the resources."""

from __future__ import annotations

import django_filters
from django import forms

from taxopost.errors import InputError
from taxopost.observations.models import CaptureSet

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


class CaptureSetField(forms.CharField):
    """A capture set by id or by name (:meth:`CaptureSet.named`): cleans to its id.

    A number is an id, found or not (an unknown id filters to nothing, as any id filter does);
    a name that matches none is an error with "did you mean".
    """

    def __init__(self, *, field: str = "capture_set", **kwargs) -> None:
        self.field_name = field
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return None
        if value.isdigit():  # an id, found or not, at no extra query
            return IdField().clean(value)
        try:
            return CaptureSet.named(value, field=self.field_name).pk
        except InputError as exc:
            raise forms.ValidationError(f"{exc.reason} (got {exc.value!r})") from None


class CaptureSetFilter(django_filters.CharFilter):
    """A capture set given by id or by name; a name that matches none is a 400 with "did you mean"."""

    field_class = CaptureSetField
