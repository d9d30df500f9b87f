"""What a web server refuses or warns about at start, the deploy check, and the CSP header.

A server (gunicorn on ``taxopost.wsgi``, or ``taxopost serve``) refuses to start on the public
development key unless DEBUG or the development flag (``TAXOPOST_DEVELOPMENT``) is on:
``taxopost serve`` on a loopback address is local use and sets the flag itself. Other
development defaults (a wildcard host) are warned about. ``manage check --deploy`` lists both.
"""

from __future__ import annotations

import sys
from typing import TextIO

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

DEVELOPMENT_SECRET_KEY = "taxopost-development-key-not-for-production"
PUBLIC_KEY = (
    "TAXOPOST_SECRET_KEY is not set: the public development key would sign the session-hash, "
    "password-reset and message signatures, so anyone could forge them (API tokens are random "
    "and not signed)"
)


def development_mode() -> bool:
    """A server on one's own machine: DEBUG, or TAXOPOST_DEVELOPMENT (set by `taxopost serve` on loopback)."""
    return bool(settings.DEBUG or getattr(settings, "DEVELOPMENT", False))


def refuse_public_key() -> None:
    """Raise ImproperlyConfigured when a server would start on the public key outside development."""
    if settings.SECRET_KEY == DEVELOPMENT_SECRET_KEY and not development_mode():
        raise ImproperlyConfigured(
            f"{PUBLIC_KEY}. Set TAXOPOST_SECRET_KEY to a long random value, or TAXOPOST_DEVELOPMENT=1 "
            "for a server on your own machine"
        )


def development_defaults() -> list[str]:
    """What in the current settings is a development default unfit for a served deployment."""
    found = []
    if settings.SECRET_KEY == DEVELOPMENT_SECRET_KEY:
        found.append(PUBLIC_KEY)
    if "*" in settings.ALLOWED_HOSTS:
        found.append("TAXOPOST_ALLOWED_HOSTS contains '*': any Host header is accepted")
    return found


def warn_if_insecure(stream: TextIO | None = None) -> list[str]:
    """Print each development default in use (one line each, on stderr), unless DEBUG is on; returns them."""
    if settings.DEBUG:
        return []
    found = development_defaults()
    for message in found:
        if message == PUBLIC_KEY:  # allowed here: development mode, or refuse_public_key() stopped the server
            message = "development mode (a server for this machine only): the public development key is in use"
        print(f"WARNING: {message}.", file=stream or sys.stderr)
    return found


@checks.register(checks.Tags.security, deploy=True)
def check_development_defaults(app_configs=None, **kwargs) -> list[checks.Warning]:
    """`manage.py check --deploy` lists the same warnings."""
    return [checks.Warning(message, id=f"taxopost.W00{i + 1}") for i, message in enumerate(development_defaults())]


class ContentSecurityPolicyMiddleware:
    """Sets ``Content-Security-Policy`` on every response when TAXOPOST_CSP is on (settings.py)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
