"""The API's JSON parser: bodies too deep or holding unrepresentable numbers are a 400.

DRF's own parser lets a document nested a thousand levels deep raise ``RecursionError`` (a
server error) and accepts ``1e999`` as infinity, which PostgreSQL's ``jsonb`` then refuses.
Here every such body is refused with a message before any view sees it. (A body over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is refused by Django before parsing; :mod:`.exceptions` turns
that into the same kind of 400.)
"""

from __future__ import annotations

import json
import math

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from taxopost.errors import clip

#: Nesting a request body may have. A job's config is three levels deep; 32 leaves room for
#: any config a task may grow, and keeps every recursive step after parsing (validation, error
#: messages, storage) far from Python's recursion limit.
MAX_JSON_DEPTH = 32
#: Digits an integer may have. Larger ones reach the serializers, which name the field that
#: holds one out of its range; past this many they are refused while parsing, before Python's
#: own limit (4,300 digits) turns them into an obscure message.
MAX_INT_DIGITS = 100


class _Refused(ValueError):
    pass


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"the integer {clip(text, 24)} has {digits:,} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {clip(text, 24)} is out of range (it is not a finite double)")
    return value


def _constant(name: str):
    raise _Refused(f"{name} is not a JSON number")


def depth(data) -> int:
    """How deeply ``data`` nests lists and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


class BoundedJSONParser(JSONParser):
    """JSON with a depth limit, finite numbers and integers of a bounded length."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ParseError(f"the request body is over the limit of {limit:,} bytes")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_int=_integer, parse_float=_number, parse_constant=_constant)
        except RecursionError:
            raise ParseError(f"the JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
        except _Refused as exc:
            raise ParseError(f"JSON parse error: {exc}") from None
        except ValueError as exc:  # malformed JSON, or bytes that are not the declared encoding
            raise ParseError(f"JSON parse error: {clip(str(exc), 200)}") from None
        if depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"the JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        return data
