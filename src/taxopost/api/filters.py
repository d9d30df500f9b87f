"""Filter types shared by the resources."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet

from taxopost.access.rules import visible_projects
from taxopost.errors import InputError
from taxopost.ml.models import Algorithm
from taxopost.observations.models import CaptureSet

#: Largest id a database column holds (bigint); a larger one is a 400, not a database error.
MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    """A row id; a value that is none names itself in the 400 (Django's message does not)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def clean(self, value):
        try:
            return super().clean(value)
        except forms.ValidationError:
            raise forms.ValidationError(
                "must be a whole number from 1 to %(max)s (got %(value)s)",
                code="invalid",
                params={"max": MAX_ID, "value": repr(value)[:80]},
            ) from None


class IdFilter(django_filters.NumberFilter):
    """A row id: a positive integer that fits the database's id column."""

    field_class = IdField


class TrueFalseField(forms.Field):
    """``true`` or ``false`` (also ``1``/``0``, any case); anything else is a 400 naming the value.

    Django's boolean filter field reads only ``true``/``false`` (and ``2``/``3``) and turns any
    other value into no filter at all: ``?terminal=1`` answered the whole list.
    """

    WORDS = {"true": True, "1": True, "false": False, "0": False}

    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return None
        found = self.WORDS.get(str(value).strip().lower())
        if found is None:
            raise forms.ValidationError("must be true or false (got %(value)s)", params={"value": repr(value)[:80]})
        return found


class TrueFalseFilter(django_filters.BooleanFilter):
    """A yes/no filter that refuses what it cannot read (:class:`TrueFalseField`)."""

    field_class = TrueFalseField


class CaptureSetField(forms.CharField):
    """A capture set by id or by name (:meth:`CaptureSet.named`): cleans to its id.

    A number is an id, found or not (an unknown id filters to nothing, as any id filter does);
    a name that matches none is an error with "did you mean".
    """

    def __init__(self, *, field: str = "capture_set", among=None, **kwargs) -> None:
        self.field_name = field
        self.among = among  # the capture sets the request's user may see (VisibleCaptureSets)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return None
        if value.isdigit():  # an id, found or not, at no extra query
            return IdField().clean(value)
        try:
            return CaptureSet.named(value, field=self.field_name, among=self.among).pk
        except InputError as exc:
            # As params, not in the message: django-filter %-formats messages, and a name may hold a "%".
            message = "%(reason)s (got %(value)s)"
            raise forms.ValidationError(message, params={"reason": exc.reason, "value": repr(exc.value)}) from None


class CaptureSetFilter(django_filters.CharFilter):
    """A capture set given by id or by name; a name that matches none is a 400 with "did you mean"."""

    field_class = CaptureSetField


class KnownValueField(forms.CharField):
    """A key that must name something that exists: an unknown one is a 400 naming it, as a
    choice filter's is, not a 200 with an empty list that reads as "none of those".

    ``check`` raises an :class:`InputError` whose reason is the message: e.g.
    :func:`~taxopost.tasks.registry.get_spec` (a task's key), :func:`check_algorithm`.
    """

    def __init__(self, *, check, **kwargs) -> None:
        self.check = check
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return value
        try:
            self.check(value)
        except InputError as exc:
            # As params, not in the message: django-filter %-formats messages, and a value may hold a "%".
            message = "%(reason)s (got %(value)s)"
            raise forms.ValidationError(message, params={"reason": exc.reason, "value": repr(value)[:80]}) from None
        return value


class KnownValueFilter(django_filters.CharFilter):
    """An exact filter on a key that must exist (:class:`KnownValueField`)."""

    field_class = KnownValueField


def check_algorithm(value: str) -> None:
    """An existing algorithm's key (reference data: whoever may view some project reads them all)."""
    if not Algorithm.objects.filter(key=value).exists():
        raise InputError("algorithm", value, "no algorithm has this key")


def visible_capture_sets(request) -> QuerySet[CaptureSet]:
    """The capture sets of the projects ``request``'s user may view."""
    return CaptureSet.objects.filter(project__in=visible_projects(getattr(request, "user", None)))


class VisibleCaptureSets(django_filters.FilterSet):
    """A filter set whose capture-set names resolve among the ones its user may view, so that no
    name of another project shows through "did you mean"."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for declared in self.filters.values():
            if isinstance(declared, CaptureSetFilter):  # the form field is built later, from extra
                declared.extra["among"] = visible_capture_sets(self.request)
