"""Template filters for how pages print configs: words, not a Python repr of a dict."""

from __future__ import annotations

from django import template

from taxopost.tasks.describe import config_text as _config_text

register = template.Library()


@register.filter
def config_text(config: dict | None) -> str:
    """``{{ algorithm.config|config_text }}``: ``thresholds: species=0.8, genus=0.6; mode: lineage``."""
    return _config_text(config or {})
