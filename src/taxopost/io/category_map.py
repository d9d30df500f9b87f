"""Category map files: a classifier's labels in class-index order.

Accepted JSON shapes:

- a list of labels in index order: ``["Vanessa atalanta", "Vanessa cardui", ...]``;
- an object ``{label: index}`` (the AMI format; labels may be GBIF keys: ``{"1730978": 0}``);
- a list of objects ``[{"index": 0, "label": "..."}, ...]``.

Indices must be exactly ``0 .. n-1``, labels non-empty strings (or integer ids) and unique.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from taxopost.core.category_map import CategoryMap
from taxopost.core.taxonomy import Taxonomy
from taxopost.errors import TOO_DEEP, InputError
from taxopost.io._text import read_text

_SHOWN = 10  # how many offending indices an error message quotes


def read_labels(path: Path | str) -> list[str]:
    """The labels of a category map file, in class-index order.

    Parameters
    ----------
    path : path-like
        A JSON file in one of the three shapes of this module's docstring.

    Returns
    -------
    list of str
        ``labels[i]`` is the label of class ``i``, stripped of surrounding whitespace.

    Raises
    ------
    InputError
        Naming the file and the offending index or label: not JSON, another shape, a missing,
        repeated or non-integer index, an empty or repeated label.
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise InputError("file", str(path), "is empty (a JSON list or object of labels is expected)")
    try:
        data = json.loads(text, object_pairs_hook=_no_repeated_keys)
    except json.JSONDecodeError as exc:
        raise InputError(
            "file", str(path), f"is not valid JSON ({exc.msg})", source=f"{path}:{exc.lineno}:{exc.colno}"
        ) from None
    except RecursionError:
        raise InputError("file", str(path), TOO_DEEP) from None
    except InputError as exc:
        raise exc.with_source(str(path)) from None
    try:
        return _in_index_order(_pairs(data))
    except InputError as exc:
        raise exc.with_source(str(path)) from None


def read_category_map(
    path: Path | str, taxonomy: Taxonomy, *, on_unresolved: Literal["error", "exclude"] = "error"
) -> CategoryMap:
    """Read a category map file and resolve its labels against ``taxonomy``.

    Parameters
    ----------
    path : path-like
        See :func:`read_labels`.
    taxonomy : Taxonomy
        Labels resolve by external id, then name, then synonym.
    on_unresolved : {"error", "exclude"}, default "error"
        What to do with labels that resolve to no taxon (see :class:`CategoryMap`).

    Returns
    -------
    CategoryMap
    """
    labels = read_labels(path)
    try:
        return CategoryMap(labels, taxonomy, on_unresolved=on_unresolved)
    except InputError as exc:
        raise exc.with_source(str(path)) from None


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``json`` keeps the last of two equal keys silently; a category map must not."""
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise InputError("label", key, f"appears more than once (indices {result[key]!r} and {value!r})")
        result[key] = value
    return result


def _pairs(data: object) -> list[tuple[object, object, str]]:
    """(label, index, where) triples from any accepted shape; ``where`` names the entry."""
    if isinstance(data, dict):
        return [(label, index, f"index of {label!r}") for label, index in data.items()]
    if not isinstance(data, list):
        raise InputError(
            "category map",
            type(data).__name__,
            'expected a JSON list of labels, an object {label: index}, or a list of {"index", "label"} objects',
        )
    if data and isinstance(data[0], dict):
        pairs = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or set(item) != {"index", "label"}:
                keys = sorted(item) if isinstance(item, dict) else type(item).__name__
                raise InputError(f"entry {i}", keys, 'each entry must be an object with exactly "index" and "label"')
            pairs.append((item["label"], item["index"], f"index of entry {i} ({item['label']!r})"))
        return pairs
    return [(label, i, f"labels[{i}]") for i, label in enumerate(data)]


def _in_index_order(pairs: list[tuple[object, object, str]]) -> list[str]:
    if not pairs:
        raise InputError("category map", [], "has no labels")
    n = len(pairs)
    by_index: dict[int, str] = {}
    seen: dict[str, int] = {}
    for label, index, where in pairs:
        if not isinstance(index, int) or isinstance(index, bool):
            raise InputError(where, index, "an index must be an integer")
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise InputError(f"label of index {index}", label, "a label must be a string (or an integer id)")
        text = str(label).strip()
        if not text:
            raise InputError(f"label of index {index}", label, "a label must not be empty")
        if index in by_index:
            raise InputError("index", index, f"given to both {by_index[index]!r} and {text!r}")
        if text in seen:
            raise InputError("label", text, f"appears more than once (indices {seen[text]} and {index})")
        by_index[index] = text
        seen[text] = index
    outside = sorted(i for i in by_index if not 0 <= i < n)
    if outside:  # n distinct indices, some outside 0..n-1: as many inside are missing
        missing = sorted(set(range(n)) - set(by_index))
        raise InputError(
            f"index of {by_index[outside[0]]!r}",
            outside[0],
            f"indices must be exactly 0..{n - 1} ({n} classes); missing: {missing[:_SHOWN]}",
        )
    return [by_index[i] for i in range(n)]
