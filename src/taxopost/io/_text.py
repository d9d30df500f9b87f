"""Reading delimited text safely: header, delimiter (comma or tab), encoding, ragged rows, line numbers.

A file that is not UTF-8, holds NUL bytes (a binary file), has a malformed quote, or has a row
whose number of cells differs from the header's (a truncated or ragged file) raises
:class:`~taxopost.errors.InputError` naming the file and the line; no reader ever sees half a file
without being told.
"""

from __future__ import annotations

import csv
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from taxopost.errors import InputError


def check_file(path: Path, field: str = "file") -> None:
    """Raise InputError unless ``path`` is an existing regular file.

    Checked before anything opens it: ``/dev/zero`` would be read forever and a named pipe
    would block the reader until someone writes to it.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(field, str(path), "no such file") from None
    except OSError as exc:
        raise InputError(field, str(path), f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise InputError(field, str(path), "is a folder, not a file")
    if not stat.S_ISREG(mode):
        kind = "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise InputError(field, str(path), f"is {kind}, not a regular file: only files are read")


def read_text(path: Path) -> str:
    """The whole of a (small) UTF-8 text file; InputError for bad UTF-8 or NUL bytes."""
    check_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except OSError as exc:
        raise InputError("file", str(path), f"cannot be read ({exc.strerror})") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError("file", str(path), "contains a NUL byte (a binary file?)", source=f"{path}:{line}")
    return text


@dataclass
class Table:
    """An open delimited file: its header and a one-pass iterator of rows.

    ``rows`` yields one ``{column: cell}`` dict per non-blank record (see ``positional`` of
    :func:`open_table` for which records are blank); ``lines`` collects the line
    number each yielded row starts on (so a caller that numbers rows itself can map its count
    back to the file), and ``line`` is the line of the row yielded last.
    """

    path: Path
    header: list[str]
    delimiter: str
    rows: Iterator[dict[str, str]] = field(default_factory=lambda: iter(()))
    lines: list[int] = field(default_factory=list)

    @property
    def line(self) -> int:
        return self.lines[-1] if self.lines else 1

    def where(self, line: int | None = None) -> str:
        """``"path:line"`` of the current row (or of ``line``)."""
        return f"{self.path}:{self.line if line is None else line}"


@contextmanager
def open_table(path: Path, *, positional: bool = False) -> Iterator[Table]:
    """Open a CSV or TSV file (delimiter sniffed from the header line) and yield a :class:`Table`.

    Tab-separated files are read without quote handling, as GBIF writes them (a ``"`` inside a
    name is part of the name); comma-separated files follow the usual CSV quoting rules.

    ``positional``: the rows stand, by position, for the rows of another file (ground truth and
    occurrences of score rows), so none may be skipped, or every later row would shift: a row
    of empty cells, and a blank line amid the rows of a one-column file (how such a file
    writes an empty value), are yielded as empty values. Blank lines at the end are the end.
    """
    check_file(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise InputError("file", str(path), f"cannot be read ({exc.strerror})") from None
    with handle:
        reader = None
        try:
            first = handle.readline()
            if not first.strip():
                empty = not first and not handle.read(1)
                reason = "is empty" if empty else "starts with a blank line"
                raise InputError("file", str(path), f"{reason} (a header row is expected on line 1)")
            delimiter = "\t" if first.count("\t") > first.count(",") else ","
            handle.seek(0)
            quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
            reader = csv.reader(_no_nul(handle, path), delimiter=delimiter, quoting=quoting, strict=True)
            header = [cell.strip() for cell in next(reader)]
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                raise InputError("header", repeated, "a column name appears more than once", source=f"{path}:1")
            table = Table(path=path, header=header, delimiter=delimiter)
            table.rows = _rows(reader, table, positional)
            yield table
        except UnicodeDecodeError:
            raise not_utf8(path) from None
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 1
            raise InputError("file", str(path), f"malformed CSV ({exc})", source=f"{path}:{line}") from None


def _no_nul(handle, path: Path) -> Iterator[str]:
    for number, line in enumerate(handle, start=1):
        if "\x00" in line:
            raise InputError("file", str(path), "contains a NUL byte (a binary file?)", source=f"{path}:{number}")
        yield line


def _rows(reader, table: Table, positional: bool) -> Iterator[dict[str, str]]:
    header = table.header
    width = len(header)
    end = reader.line_num
    blank: list[int] = []  # blank lines of a positional one-column file: empty values if a row follows
    for cells in reader:
        start, end = end + 1, reader.line_num
        if not cells and positional and width == 1:
            blank.append(start)
            continue
        if not any(cells) and not (positional and cells):
            continue  # a blank line
        for line in blank:
            table.lines.append(line)
            yield {header[0]: ""}
        blank.clear()
        if len(cells) != width:
            raise InputError(
                "row",
                cells[:8],
                f"has {len(cells)} cells but the header has {width} (a truncated or ragged file?)",
                source=f"{table.path}:{start}",
            )
        table.lines.append(start)
        yield dict(zip(header, cells, strict=True))


def not_utf8(path: Path) -> InputError:
    """An error naming the first line of ``path`` that is not valid UTF-8."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[max(exc.start - 10, 0) : exc.end + 10]
                return InputError("file", str(path), f"is not UTF-8 text (bytes {bad!r})", source=f"{path}:{number}")
    return InputError("file", str(path), "is not UTF-8 text")
