"""JSON from an untrusted client, with bounds: depth, finite numbers, integers of a sane length.

Python's own parser lets a document nested a thousand levels deep raise ``RecursionError``,
accepts ``1e999`` as infinity (which PostgreSQL's ``jsonb`` then refuses) and spends quadratic
time on an integer of thousands of digits; a string holding NUL reaches PostgreSQL, which
refuses it. :func:`loads` refuses each with a
:class:`RefusedJSON` whose message says what and where the limit is; the API's parser and the
admin's JSON fields both use it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from taxopost.errors import clip

#: Nesting a document may have. A job's config is three levels deep; 32 leaves room for any
#: config a task may grow, and keeps every recursive step after parsing (validation, error
#: messages, storage) far from Python's recursion limit.
MAX_DEPTH = 32
#: Digits an integer may have. Larger ones reach the validators, which name the field that holds
#: one out of its range; past this many they are refused while parsing.
MAX_INT_DIGITS = 100


#: What no database stores in a text or JSON value: NUL (PostgreSQL refuses it), and half of a
#: surrogate pair (no encoding writes it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


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


def unstorable_text(data: Any, path: str = "$") -> tuple[str, str] | None:
    """The JSON path and the string of the first key or value in ``data`` that a database cannot
    store (see ``_UNSTORABLE``), or None; without recursion."""
    stack = [(data, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return where, value
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return where, key
                stack.append((item, f"{where}.{key}"))
        elif isinstance(value, list | tuple):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
    return None


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
    if (found := unstorable_text(data)) is not None:
        where, _ = found
        raise RefusedJSON(f"the string at {clip(where, 80)} holds a NUL character or an unpaired surrogate")
    return data
