"""A task config in words, for job logs and pages: ``thresholds: species=0.8, genus=0.6; mode: lineage``.

Not a Python repr nor JSON: a person reads the log on the job's page and in ``taxopost jobs show``.
"""

from __future__ import annotations


def config_text(config: dict) -> str:
    """``key: value; key: value``, a mapping of plain values as ``a=1, b=2`` and a list as ``a, b``."""
    if not config:
        return "the default config"
    return "; ".join(f"{key}: {_value_text(value)}" for key, value in config.items())


def _value_text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={_value_text(item)}" for key, item in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(item) for item in value) or "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
