"""Predictions as JSON Lines: one record object per line (docs/formats.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from taxopost.errors import TOO_DEEP, InputError
from taxopost.io.predictions.records import PredictionRecord, record_from_dict


def read_jsonl(path: Path) -> Iterator[PredictionRecord]:
    """Yield the records of a JSON Lines file in order, each located by its line; blank lines are skipped.

    A file of no record is refused: an export cut off before its first line is not "nothing new".
    """
    records = 0
    with open(path, encoding="utf-8-sig", errors="strict") as handle:  # a spreadsheet export may start with a BOM
        try:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                records += 1
                where = f"{path}:{line_number}"
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError("line", line.strip()[:60], f"not valid JSON ({exc.msg})", source=where) from None
                except RecursionError:
                    raise InputError("line", line.strip()[:60], TOO_DEEP, source=where) from None
                yield record_from_dict(data, where=where)
        except UnicodeDecodeError as exc:
            raise InputError("file", str(path), f"not UTF-8 text ({exc.reason})") from None
    if not records:
        raise InputError("file", str(path), "is empty: no predictions")
