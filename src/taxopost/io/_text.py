"""Reading delimited text safely: header, delimiter (comma or tab), encoding and ragged rows."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taxopost.errors import InputError


def check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("file", str(path), "no such file")
    if path.is_dir():
        raise InputError("file", str(path), "is a folder, not a file")


@contextmanager
def open_table(path: Path) -> Iterator[tuple[list[str], Iterator[dict[str, str]]]]:
    """Yield the header and an iterator of rows (dicts) of a CSV or TSV file.

    Raises InputError for a missing or empty file, text that is not UTF-8, a row whose number of
    cells differs from the header's (a truncated file), or a malformed quote.
    """
    check_file(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise InputError("file", str(path), f"cannot be read ({exc.strerror})") from None
    with handle:
        try:
            first = handle.readline()
            if not first.strip():
                raise InputError("file", str(path), "is empty (a header row is expected)")
            delimiter = "\t" if first.count("\t") > first.count(",") else ","
            handle.seek(0)
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            header = [cell.strip() for cell in next(reader)]
            if len(set(header)) != len(header):
                raise InputError("header", header, "a column name appears twice", source=str(path))
            yield header, _rows(reader, header, path)
        except UnicodeDecodeError as exc:
            raise InputError("file", str(path), f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except csv.Error as exc:
            raise InputError("file", str(path), f"malformed CSV ({exc})") from None


def _rows(reader, header: list[str], path: Path) -> Iterator[dict[str, str]]:
    width = len(header)
    for cells in reader:
        if not cells or not any(cell.strip() for cell in cells):
            continue
        if len(cells) != width:
            raise InputError(
                "row",
                cells[:8],
                f"has {len(cells)} cells but the header has {width}",
                source=f"{path}:{reader.line_num}",
            )
        if "\x00" in "".join(cells):
            raise InputError(
                "row", cells[:8], "contains a NUL byte (a binary file?)", source=f"{path}:{reader.line_num}"
            )
        yield dict(zip(header, cells, strict=True))
