"""A task config in words, for job logs and pages: ``thresholds: species=0.8, genus=0.6; mode: lineage``.

Not a Python repr nor JSON: a person reads the log on the job's page and in ``taxopost jobs show``.
"""

from __future__ import annotations

from taxopost.core.ranks import RANKS, sort_fine_to_coarse


def in_rank_order(mapping: dict) -> list[tuple]:
    """A mapping's items; a mapping by rank (thresholds) fine to coarse, whatever order the
    database kept its keys in (PostgreSQL's jsonb sorts them by length)."""
    if mapping and all(isinstance(key, str) and key in RANKS for key in mapping):
        return [(rank, mapping[rank]) for rank in sort_fine_to_coarse(mapping)]
    return list(mapping.items())


def config_text(config: dict) -> str:
    """``key: value; key: value``, a mapping of plain values as ``a=1, b=2`` and a list as ``a, b``."""
    if not config:
        return "the default config"
    return "; ".join(f"{key}: {_value_text(value)}" for key, value in config.items())


def _value_text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={_value_text(item)}" for key, item in in_rank_order(value)) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(item) for item in value) or "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
