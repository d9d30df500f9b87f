"""Taxa list files: one taxon name or external id per line, or one column of a CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taxopost.core.taxonomy import NO_TAXON, Taxonomy
from taxopost.errors import InputError
from taxopost.io._text import open_table, read_text


@dataclass(frozen=True)
class TaxaListFile:
    """What a taxa list file names.

    Attributes
    ----------
    entries : list of str
        The names or external ids as written (stripped), in file order, repeats kept.
    taxa : list of int
        The taxon ids they resolve to, de-duplicated, in file order.
    unresolved : list of str
        The entries that resolve to no taxon, in file order.
    hint : str
        For a file read line by line that looks like a table (a ``.csv``/``.tsv`` name, or
        commas or tabs on its first line): how to name its column. Empty otherwise.
    """

    entries: list[str]
    taxa: list[int]
    unresolved: list[str]
    hint: str = ""


def read_taxa_list(path: Path | str, taxonomy: Taxonomy, *, column: str | None = None) -> TaxaListFile:
    """Read a taxa list and resolve its entries against ``taxonomy``.

    Parameters
    ----------
    path : path-like
        Plain text, one taxon name or external id per line (blank lines and ``#`` comments,
        whole-line or trailing, are ignored); or, with ``column``, a CSV/TSV file.
    taxonomy : Taxonomy
        Entries resolve by external id, then name, then synonym (:meth:`Taxonomy.find`).
    column : str, optional
        The CSV column holding the names (e.g. ``Current_valid_binomen``); empty cells are skipped.
        Without it, a file that looks like a table gets a hint naming the option
        (:data:`COLUMN_OPTION`): in the error when no entry resolves, else in ``hint``.

    Returns
    -------
    TaxaListFile
        Unresolved entries are returned, not raised: a regional checklist names species a
        model never saw; the caller decides.

    Raises
    ------
    InputError
        For an unreadable file, a missing column, a list with no entries, or one whose entries
        all match no taxon (a list of another taxonomy: nothing would be kept).
    """
    path = Path(path)
    entries = _column(path, column) if column is not None else _lines(path)
    if not entries:
        raise InputError("taxa_list", [], "the taxa list is empty", source=str(path))
    taxa: dict[int, None] = {}
    unresolved = []
    for entry in entries:
        taxon = taxonomy.find(entry)
        if taxon == NO_TAXON:
            unresolved.append(entry)
        else:
            taxa.setdefault(taxon)
    hint = _table_hint(path, entries) if column is None and unresolved else ""
    if not taxa:
        reason = f"none of its {len(entries)} entries matches a taxon of the taxonomy"
        raise InputError("taxa_list", entries[:5], f"{reason}; {hint}" if hint else reason, source=str(path))
    return TaxaListFile(entries=entries, taxa=list(taxa), unresolved=unresolved, hint=hint)


#: The option (of ``taxopost mask`` and ``taxopost import taxa-list``) that names a table's column.
COLUMN_OPTION = "--taxa-column"


def _table_hint(path: Path, entries: list[str]) -> str:
    """How to read a file that was read line by line but looks like a table, naming its columns."""
    first = entries[0]
    if path.suffix.lower() not in (".csv", ".tsv") and "," not in first and "\t" not in first:
        return ""
    try:
        with open_table(path) as table:
            columns = table.header
    except InputError:
        columns = []
    shown = f" (its columns: {', '.join(columns[:12])}{', ...' if len(columns) > 12 else ''})" if columns else ""
    return f"it looks like a table: name the column holding the taxa with {COLUMN_OPTION} NAME{shown}"


def _lines(path: Path) -> list[str]:
    entries = (line.split("#", 1)[0].strip() for line in read_text(path).splitlines())
    return [entry for entry in entries if entry]


def _column(path: Path, column: str) -> list[str]:
    with open_table(path) as table:
        if column not in table.header:
            raise InputError("column", column, f"not a column of the file; its columns are {table.header}").with_source(
                str(path)
            )
        return [cell for cell in (row[column].strip() for row in table.rows) if cell]
