"""The API's exception handler: every refusal is a short JSON message, never Django's HTML page.

Two refusals Django raises before DRF can parse (a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``,
too many form fields) become 400s with a message, and field errors are bounded: each message
quotes at most a prefix of the offending value, and a body with thousands of bad fields gets
the first few dozen of them back. Anything else unexpected stays a server error, logged with its
traceback by ``django.request`` (settings.LOGGING).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from rest_framework.exceptions import ParseError
from rest_framework.views import exception_handler as drf_exception_handler

from taxopost.errors import clip

#: Longest message and most entries per object a refusal's body holds.
MESSAGE_LIMIT = 300
ENTRIES_LIMIT = 50


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = ParseError(f"the request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes")
    elif isinstance(exc, TooManyFieldsSent):
        exc = ParseError(f"the request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} form fields")
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == 400:
        response.data = bounded(response.data)
    return response


def bounded(data):
    """Field errors with each message clipped and at most ENTRIES_LIMIT entries per list or object."""
    if isinstance(data, dict):
        items = list(data.items())
        kept = {clip(str(key), MESSAGE_LIMIT): bounded(value) for key, value in items[:ENTRIES_LIMIT]}
        if len(items) > ENTRIES_LIMIT:
            kept["non_field_errors"] = [f"{len(items) - ENTRIES_LIMIT:,} more fields with errors not shown"]
        return kept
    if isinstance(data, list):
        kept = [bounded(value) for value in data[:ENTRIES_LIMIT]]
        return kept + ([f"{len(data) - ENTRIES_LIMIT:,} more errors not shown"] if len(data) > ENTRIES_LIMIT else [])
    if isinstance(data, str):
        return clip(data, MESSAGE_LIMIT)
    return data
