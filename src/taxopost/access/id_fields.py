"""Admin form fields and autocomplete widgets that take only values an id column can hold.

Django's hand what a form or a URL gives (``?taxon=zz``, an id of 30 digits) to the database as
it is: a value that is not a number was a ``ValueError``, and a number past the column's range
an ``OverflowError`` (SQLite) or a ``DataError`` (PostgreSQL), a server error either way. Here
such a value is a form error, as an id of no row is, and a widget shows nothing for it.
"""

from __future__ import annotations

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError
from django.db import connection, models


def is_id(field: models.Field, value: object) -> bool:
    """May ``value`` be looked up in ``field`` (a key column) without the database refusing it?"""
    try:
        number = field.to_python(value)
    except (ValidationError, TypeError, ValueError):
        return False
    kind = field.get_internal_type()
    if number is None or kind not in connection.ops.integer_field_ranges:
        return True
    low, high = connection.ops.integer_field_range(kind)
    return (low is None or number >= low) and (high is None or number <= high)


def _key(queryset: models.QuerySet, to_field_name: str | None) -> models.Field:
    meta = queryset.model._meta
    return meta.get_field(to_field_name) if to_field_name else meta.pk


class IdCheckedChoiceField(forms.ModelChoiceField):
    """:class:`~django.forms.ModelChoiceField` refusing a value no id can be (``invalid_choice``)."""

    def to_python(self, value):
        if value not in self.empty_values and not is_id(_key(self.queryset, self.to_field_name), value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class IdCheckedMultipleChoiceField(forms.ModelMultipleChoiceField):
    """:class:`~django.forms.ModelMultipleChoiceField` refusing a value no id can be (``invalid_pk_value``)."""

    def _check_values(self, value):
        if isinstance(value, list | tuple):
            key = _key(self.queryset, self.to_field_name)
            bad = next((pk for pk in value if not is_id(key, pk)), None)
            if bad is not None:
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": str(bad)[:40]}
                )
        return super()._check_values(value)


class _IdCheckedAutocomplete:
    """Shows only the given values an id can be (the others would be a server error to look up)."""

    def optgroups(self, name, value, attr=None):
        key = self.field.remote_field.model._meta.pk
        return super().optgroups(name, [v for v in value if is_id(key, v)], attr)


class IdCheckedAutocompleteSelect(_IdCheckedAutocomplete, AutocompleteSelect):
    pass


class IdCheckedAutocompleteSelectMultiple(_IdCheckedAutocomplete, AutocompleteSelectMultiple):
    pass
