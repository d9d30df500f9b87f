"""Parsers of the option values several commands share; each error names the option and the value."""

from __future__ import annotations

import json

from taxopost.errors import TOO_DEEP, InputError


def parse_rank_values(items: list[str], *, flag: str = "--threshold") -> dict[str, str]:
    """Repeated ``RANK=VALUE`` into ``{rank: value}`` (values checked by the task's config)."""
    values: dict[str, str] = {}
    for item in items:
        rank, sep, value = item.partition("=")
        if not sep or not rank.strip() or not value.strip():
            raise InputError(flag, item, f"expected RANK=VALUE, e.g. {flag} genus=0.6")
        if rank.strip().lower() in values:
            raise InputError(flag, item, f"{rank.strip()} is given twice")
        values[rank.strip().lower()] = value.strip()
    return values


def parse_comma_list(text: str) -> list[str]:
    """``a, b,c`` into ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_json_object(text: str | None, *, flag: str = "--config") -> dict:
    """A JSON object given on the command line, else an InputError naming the option."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(flag, text, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise InputError(flag, text, TOO_DEEP) from None
    if not isinstance(data, dict):
        raise InputError(flag, text, 'must be a JSON object, e.g. {"thresholds": {"species": 0.8}}')
    return data


def parse_settings(items: list[str], *, flag: str = "--set") -> dict:
    """Repeated ``KEY=VALUE``: a value that reads as JSON (a number, true, a list) is taken as such."""
    settings: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(flag, item, f"expected KEY=VALUE, e.g. {flag} size_threshold=0.001")
        if key in settings:
            raise InputError(flag, item, f"{key} is given twice")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
        except RecursionError:
            raise InputError(flag, item, TOO_DEEP) from None
    return settings
