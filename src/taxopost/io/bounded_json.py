"""JSON from an untrusted client, with bounds: depth, finite numbers, integers of a sane length.

Python's own parser lets a document nested a thousand levels deep raise ``RecursionError``,
accepts ``1e999`` as infinity (which PostgreSQL's ``jsonb`` then refuses) and spends quadratic
time on an integer of thousands of digits. :func:`loads` refuses each with a
:class:`RefusedJSON` whose message says what and where the limit is; the API's parser and the
admin's JSON fields both use it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from taxopost.errors import clip

#: Nesting a document may have. A job's config is three levels deep; 32 leaves room for any
#: config a task may grow, and keeps every recursive step after parsing (validation, error
#: messages, storage) far from Python's recursion limit.
MAX_DEPTH = 32
#: Digits an integer may have. Larger ones reach the validators, which name the field that holds
#: one out of its range; past this many they are refused while parsing.
MAX_INT_DIGITS = 100


class RefusedJSON(ValueError):
    """Malformed JSON, or JSON beyond the bounds; the message says which."""


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise RefusedJSON(f"the integer {clip(text, 24)} has {digits:,} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RefusedJSON(f"the number {clip(text, 24)} is out of range (it is not a finite double)")
    return value


def _constant(name: str):
    raise RefusedJSON(f"{name} is not a JSON number")


def depth(data: Any) -> int:
    """How deeply ``data`` nests lists and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads(text: str | bytes) -> Any:
    """Parse ``text``; RefusedJSON for malformed JSON, nesting over MAX_DEPTH, NaN, infinities, huge integers."""
    too_deep = f"the JSON is nested too deeply (at most {MAX_DEPTH} levels)"
    try:
        data = json.loads(text, parse_int=_integer, parse_float=_number, parse_constant=_constant)
    except RecursionError:
        raise RefusedJSON(too_deep) from None
    except RefusedJSON as exc:
        raise RefusedJSON(f"JSON parse error: {exc}") from None
    except ValueError as exc:  # malformed JSON, or bytes that are not UTF-8
        raise RefusedJSON(f"JSON parse error: {clip(str(exc), 200)}") from None
    if depth(data) > MAX_DEPTH:
        raise RefusedJSON(too_deep)
    return data
