"""Dates and times in imported files: ISO 8601, read the same way by every importer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from taxopost.errors import InputError

# What ``datetime.fromisoformat`` refuses but people write: one-digit months, days and hours,
# a comma before the fraction, a space before the offset ("2024-7-1 9:05:00,5 +0200").
_LENIENT = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:[.,](?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"\s*(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_timestamp(value: object, *, field: str, source: str) -> datetime | None:
    """An ISO 8601 date and time (or a ``datetime``, from a Parquet column) as an aware datetime.

    One without a time zone is taken as UTC, so the same file gives the same instants on any
    machine. None stays None; anything else is an :class:`InputError` naming ``field`` at ``source``.
    """
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            parsed = _parse(value)
        except ValueError:  # well formed but impossible: month 13, February 30
            raise InputError(field, value, "not a valid date and time", source=source) from None
    if parsed is None:
        raise InputError(field, value, "expected an ISO 8601 date and time", source=source)
    return parsed.replace(tzinfo=UTC) if parsed.utcoffset() is None else parsed


def _parse(value: str) -> datetime | None:
    """The datetime ``value`` spells, None when it is no date and time; ValueError when impossible."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        match = _LENIENT.match(value)
        if match is None:
            return None
    parts = match.groupdict()
    zone = parts.pop("tzinfo")
    if parts["microsecond"]:
        parts["microsecond"] = parts["microsecond"].ljust(6, "0")
    if zone == "Z":
        tzinfo: timezone | None = UTC
    elif zone is not None:
        minutes = 60 * int(zone[1:3]) + (int(zone[-2:]) if len(zone) > 3 else 0)
        tzinfo = timezone(timedelta(minutes=-minutes if zone[0] == "-" else minutes))
    else:
        tzinfo = None
    return datetime(**{k: int(v) for k, v in parts.items() if v is not None}, tzinfo=tzinfo)
