"""Category map files: a classifier's labels in class-index order.

Accepted JSON shapes: a list of labels in index order; an object ``{label: index}`` (the AMI
format, labels may be GBIF keys); a list of ``{"index": i, "label": ...}`` objects. Indices must
be exactly ``0 .. n-1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from taxopost.core.category_map import CategoryMap
from taxopost.core.taxonomy import Taxonomy
from taxopost.errors import InputError
from taxopost.io._text import check_file


def read_labels(path: Path | str) -> list[str]:
    """The labels of a category map file, in class-index order."""
    path = Path(path)
    check_file(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError("file", str(path), f"is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise InputError("file", str(path), f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        return _labels(data)
    except InputError as exc:
        raise exc.with_source(str(path)) from None


def _labels(data: object) -> list[str]:
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        pairs = []
        for item in data:
            if set(item) != {"index", "label"}:
                raise InputError("entry", item, 'each object needs exactly "index" and "label"')
            pairs.append((item["label"], item["index"]))
    elif isinstance(data, list):
        for i, label in enumerate(data):
            if not isinstance(label, (str, int)) or isinstance(label, bool):
                raise InputError(f"labels[{i}]", label, "a label must be a string (or an integer id)")
        pairs = [(label, i) for i, label in enumerate(data)]
    else:
        raise InputError("category map", type(data).__name__, "expected a JSON list or object of labels")
    if not pairs:
        raise InputError("category map", data, "has no labels")
    by_index: dict[int, str] = {}
    for label, index in pairs:
        if not isinstance(index, int) or isinstance(index, bool):
            raise InputError(f"index of {label!r}", index, "must be an integer")
        text = str(label).strip()
        if not text:
            raise InputError(f"label of index {index}", label, "must not be empty")
        if index in by_index:
            raise InputError("index", index, f"given to both {by_index[index]!r} and {text!r}")
        by_index[index] = text
    missing = sorted(set(range(len(by_index))) - set(by_index))
    if missing or min(by_index) != 0:
        extra = sorted(i for i in by_index if not 0 <= i < len(by_index))
        raise InputError("index", (missing or extra)[:10], f"indices must be exactly 0..{len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]


def read_category_map(
    path: Path | str, taxonomy: Taxonomy, *, on_unresolved: Literal["error", "exclude"] = "error"
) -> CategoryMap:
    """Read labels and resolve them against ``taxonomy`` (external id, then name, then synonym)."""
    labels = read_labels(path)
    try:
        return CategoryMap(labels, taxonomy, on_unresolved=on_unresolved)
    except InputError as exc:
        raise exc.with_source(str(path)) from None
