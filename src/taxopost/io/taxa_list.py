"""Taxa list files: one taxon name or external id per line, or one column of a CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taxopost.core.taxonomy import NO_TAXON, Taxonomy
from taxopost.errors import InputError
from taxopost.io._text import check_file, open_table


@dataclass(frozen=True)
class TaxaListFile:
    """What a taxa list file names: its entries, the taxa they resolve to, and the ones that do not."""

    entries: list[str]
    taxa: list[int]  # taxon ids, de-duplicated, in file order
    unresolved: list[str]


def read_taxa_list(path: Path | str, taxonomy: Taxonomy, *, column: str | None = None) -> TaxaListFile:
    """Read a taxa list. Blank lines and ``#`` comments are ignored in plain text.

    Unresolved entries are returned, not raised: a regional checklist names species a model
    never saw. An empty list is an error.
    """
    path = Path(path)
    entries = _csv_column(path, column) if column is not None else _lines(path)
    if not entries:
        raise InputError("taxa_list", str(path), "the taxa list is empty")
    taxa: dict[int, None] = {}
    unresolved = []
    for entry in entries:
        taxon = taxonomy.find(entry)
        if taxon == NO_TAXON:
            unresolved.append(entry)
        else:
            taxa.setdefault(taxon)
    return TaxaListFile(entries=entries, taxa=list(taxa), unresolved=unresolved)


def _lines(path: Path) -> list[str]:
    check_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError("file", str(path), f"is not UTF-8 text ({exc.reason})") from None
    if "\x00" in text:
        raise InputError("file", str(path), "contains NUL bytes (a binary file?)")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _csv_column(path: Path, column: str) -> list[str]:
    with open_table(path) as (header, rows):
        if column not in header:
            raise InputError("--column", column, f"not a column of {path}; columns: {header}")
        return [row[column].strip() for row in rows if row[column].strip()]
