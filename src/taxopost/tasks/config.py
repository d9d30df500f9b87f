"""Validating a task's config: every problem at once, for the CLI and jobs as for the API and forms."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from taxopost.errors import InputError, InputErrors, clip, quote
from taxopost.io.bounded_json import unstorable_text
from taxopost.tasks.base import TaskConfig

Config = TypeVar("Config", bound=TaskConfig)


def parse_config(model: type[Config], data: dict[str, Any] | None, *, prefix: str = "") -> Config:
    """Validate ``data`` against ``model``; its problems, all of them, become one :class:`InputError`.

    One problem is an InputError naming its field; several are an :class:`InputErrors` (whose
    message lists them on one line), so a user fixes a config in one go. The API and the admin
    form report the same problems field by field (:func:`config_field_errors`).
    """
    if (found := unstorable_text(data or {}, prefix.rstrip(".") or "config")) is not None:
        # PostgreSQL refuses NUL in text and JSON: failed here, not where the config is stored or used.
        raise InputError(*found, "must not hold NUL characters or unpaired surrogates")
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise config_error(exc, prefix=prefix) from None


def config_error(exc: ValidationError, *, prefix: str = "") -> InputError:
    """Every error of a pydantic ValidationError as one InputError naming each field and value."""
    errors = [found for error in exc.errors() for found in _input_errors(error, prefix)]
    return errors[0] if len(errors) == 1 else InputErrors(errors)


def _input_errors(error: Any, prefix: str) -> list[InputError]:
    """One pydantic error as InputErrors; a shared check's InputErrors (every bad rank) stay several."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, InputError):
        return [InputError(f"{prefix}{c.field}", c.value, c.reason) for c in getattr(cause, "errors", [cause])]
    return [InputError(f"{prefix}{field_path(error['loc'])}", error.get("input"), error["msg"])]


def field_path(loc: tuple) -> str:
    """A pydantic error's location as a dotted path; ``"config"`` for the config as a whole.

    A key that is empty or holds a dot is quoted (``''``, ``'a.b'``), so that ``{"": 1}`` is
    not reported as the whole config, nor ``{"a.b": 1}`` as key ``b`` inside ``a``.
    """
    parts = [repr(part) if isinstance(part, str) and (not part or "." in part) else str(part) for part in loc]
    return clip(".".join(parts)) or "config"


#: pydantic errors whose input is not the value to quote: a missing field has none, an unknown
#: key is the problem itself (named as the field), not its value.
_NO_VALUE = frozenset({"missing", "extra_forbidden"})


def _field_message(error: Any) -> str:
    """pydantic's message with the value it refused, as the shared checks give it: ``(got 'median')``."""
    message = clip(error["msg"], 200)
    if error["type"] in _NO_VALUE or not error["loc"]:  # no value, or the whole config
        return message
    return f"{message} (got {quote(error.get('input'))})"


def config_field_errors(exc: ValidationError | InputError) -> dict[str, list[str]]:
    """Every problem of a config as ``{field: [messages]}``, the shape the API and forms report.

    Fields are dotted paths inside the config (``"thresholds.genus"``, ``"mode"``; an empty key
    is ``"''"``); a problem of the config as a whole is under ``"config"``. Each message quotes
    the value refused (``... (got 'median')``), as the shared checks' do, except for a missing
    field or an unknown key. An InputError raised by a shared check (the core's threshold or
    order validation) keeps the field that check named.
    """
    if isinstance(exc, InputError):
        found: dict[str, list[str]] = {}
        for error in getattr(exc, "errors", [exc]):
            field = error.field.removeprefix("config.") or "config"
            found.setdefault(field, []).append(f"{error.reason} (got {quote(error.value)})")
        return found
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InputError):
            for found in getattr(cause, "errors", [cause]):
                errors.setdefault(found.field, []).append(f"{found.reason} (got {quote(found.value)})")
        else:
            errors.setdefault(field_path(error["loc"]), []).append(_field_message(error))
    return errors
