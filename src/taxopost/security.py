"""Loud warnings when a web server starts on development defaults outside DEBUG."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from django.conf import settings
from django.core import checks

logger = logging.getLogger(__name__)

DEVELOPMENT_SECRET_KEY = "taxopost-development-key-not-for-production"


def development_defaults() -> list[str]:
    """What in the current settings is a development default unfit for a served deployment."""
    found = []
    if settings.SECRET_KEY == DEVELOPMENT_SECRET_KEY:
        found.append("TAXOPOST_SECRET_KEY is not set: sessions and tokens are signed with the public development key")
    if "*" in settings.ALLOWED_HOSTS:
        found.append("TAXOPOST_ALLOWED_HOSTS contains '*': any Host header is accepted")
    return found


def warn_if_insecure(stream: TextIO | None = None) -> list[str]:
    """Print and log each development default in use, unless DEBUG is on; returns them."""
    if settings.DEBUG:
        return []
    found = development_defaults()
    for message in found:
        print(f"WARNING: {message}.", file=stream or sys.stderr)
        logger.warning(message)
    return found


@checks.register(checks.Tags.security, deploy=True)
def check_development_defaults(app_configs=None, **kwargs) -> list[checks.Warning]:
    """`manage.py check --deploy` lists the same warnings."""
    return [checks.Warning(message, id=f"taxopost.W00{i + 1}") for i, message in enumerate(development_defaults())]
