"""Validating a task's config: one error for the CLI and jobs, every error for the API and forms."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from taxopost.errors import InputError, clip, quote
from taxopost.tasks.base import TaskConfig

Config = TypeVar("Config", bound=TaskConfig)


def parse_config(model: type[Config], data: dict[str, Any] | None, *, prefix: str = "") -> Config:
    """Validate ``data`` against ``model``; the first problem becomes an :class:`InputError`.

    The API reports every field error from pydantic itself; the CLI and jobs need one line.
    """
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise config_error(exc, prefix=prefix) from None


def config_error(exc: ValidationError, *, prefix: str = "") -> InputError:
    """The first error of a pydantic ValidationError as an InputError naming field and value."""
    first = exc.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, InputError):
        field = cause.field
        return InputError(f"{prefix}{field}", cause.value, cause.reason)
    field = clip(".".join(str(part) for part in first["loc"])) or "config"
    return InputError(f"{prefix}{field}", first.get("input"), first["msg"])


def config_field_errors(exc: ValidationError | InputError) -> dict[str, list[str]]:
    """Every problem of a config as ``{field: [messages]}``, the shape the API and forms report.

    Fields are dotted paths inside the config (``"thresholds.genus"``, ``"mode"``); a problem of
    the config as a whole is under ``"config"``. An InputError raised by a shared check (the
    core's threshold or order validation) keeps the field that check named.
    """
    if isinstance(exc, InputError):
        field = exc.field.removeprefix("config.") or "config"
        return {field: [f"{exc.reason} (got {quote(exc.value)})"]}
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InputError):
            field, message = cause.field, f"{cause.reason} (got {quote(cause.value)})"
        else:
            field = clip(".".join(str(part) for part in error["loc"])) or "config"
            message = clip(error["msg"], 200)
        errors.setdefault(field, []).append(message)
    return errors
