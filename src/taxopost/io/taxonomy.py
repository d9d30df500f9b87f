"""Taxonomy files: lineage CSV, iNaturalist vision taxonomy CSV, Darwin Core Taxon (CSV or TSV).

The format is detected from the header (column names matched case-insensitively, delimiter
comma or tab):

- **iNaturalist**: ``parent_taxon_id, taxon_id, rank_level, ..., name``. ``taxon_id`` is the
  external id, parents are referenced by id, ranks come from ``rank_level`` (10 = species).
  With ``id_column="leaf_class_id"`` the bare external ids are the vision model's class ids
  instead (leaves only): a category map of ``leaf_class_id`` values resolves through them.
  :func:`read_taxonomy_for_labels` picks the column from the labels. Either way every taxon
  also keeps its taxon id as ``inat:N``, and each leaf its class id as ``leaf_class_id:N``:
  these mark the bare digits as iNaturalist's, never taken for GBIF keys (:func:`gbif_key`).
- **Darwin Core**: ``taxonID, parentNameUsageID, scientificName, taxonRank`` (GBIF's
  ``Taxon.tsv``). ``taxonID`` is the external id. A row whose ``acceptedNameUsageID`` names
  another taxon and whose ``taxonomicStatus`` is a synonym status (or absent) is a synonym: its
  name resolves to the accepted taxon. A ``canonicalName`` that differs from ``scientificName``
  (GBIF appends the authorship) is kept as a synonym, so bare names resolve too.
- otherwise a **lineage table**: one column per rank (any case), an empty cell skips that rank,
  plus optionally the column named by ``id_column`` holding the external id of each row's finest
  taxon (a name given twice with two ids carries both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from taxopost.core.ranks import RANK_CODE, parse_rank, rank_from_level
from taxopost.core.taxonomy import NO_TAXON, Taxonomy, TaxonRecord
from taxopost.errors import InputError
from taxopost.io._text import Table, open_table

INAT_COLUMNS = ("parent_taxon_id", "taxon_id", "rank_level", "name")
INAT_LEAF_COLUMN = "leaf_class_id"
# A leaf's class id kept beside its taxon id, so that one stored taxonomy holds both readings.
LEAF_CLASS_PREFIX = "leaf_class_id:"
# An iNaturalist taxon id, kept beside the bare one that labels resolve through.
INAT_PREFIX = "inat:"
DWC_COLUMNS = ("taxonID", "parentNameUsageID", "scientificName", "taxonRank")
_FORMATS = {"iNaturalist": INAT_COLUMNS, "Darwin Core": DWC_COLUMNS}
_EXPECTED = (
    "a lineage CSV has one column per rank (e.g. family,genus,species) plus an optional --id-column; "
    f"an iNaturalist taxonomy has {', '.join(INAT_COLUMNS)}; a Darwin Core Taxon file has {', '.join(DWC_COLUMNS)}"
)


def read_taxonomy(path: Path | str, *, id_column: str | None = None) -> Taxonomy:
    """Read a taxonomy file, detecting its format from the header.

    Parameters
    ----------
    path : path-like
        A lineage CSV, an iNaturalist vision taxonomy CSV, or a Darwin Core Taxon CSV/TSV.
    id_column : str, optional
        Lineage CSV only: the column holding the external id (e.g. a GBIF ``speciesKey``) of each
        row's finest taxon. The other two formats carry their own id column.

    Returns
    -------
    Taxonomy

    Raises
    ------
    InputError
        Naming the file (and line) for an unreadable file, an unknown header, a bad cell, or
        anything :class:`~taxopost.core.taxonomy.Taxonomy` rejects (duplicates, unknown parents,
        cycles, a parent not coarser than its child).
    """
    path = Path(path)
    with open_table(path) as table:
        try:
            taxonomy = _reader_for(table.header, id_column)(table, id_column)
        except InputError as exc:
            raise exc.with_source(str(path)) from None
    if taxonomy.n_taxa == 0:
        raise InputError("file", str(path), "has a header but no taxa")
    return taxonomy


def _reader_for(header: list[str], id_column: str | None) -> Callable[[Table, str | None], Taxonomy]:
    lower = {name.lower() for name in header}
    for fmt, columns in _FORMATS.items():
        if {c.lower() for c in columns} <= lower:
            own = (columns[1], INAT_LEAF_COLUMN) if fmt == "iNaturalist" else (columns[0],)
            if id_column is not None and id_column.lower() not in {c.lower() for c in own}:
                raise InputError("id_column", id_column, f"the {fmt} format takes its ids from {' or '.join(own)}")
            return _inat if fmt == "iNaturalist" else _darwin_core
    return _lineage


# -- lineage CSV -----------------------------------------------------------------------------


def _lineage(table: Table, id_column: str | None) -> Taxonomy:
    header = table.header
    if id_column is not None and id_column not in header:
        raise InputError("id_column", id_column, f"not a column of the file; its columns are {header}")
    rank_columns = [c for c in header if c != id_column]
    unknown = [c for c in rank_columns if c.lower() not in RANK_CODE]
    if unknown:
        raise InputError("columns", unknown, _unknown_columns_reason(header, unknown), source=table.where(1))
    by_rank: dict[str, str] = {}
    for column in rank_columns:
        other = by_rank.setdefault(column.lower(), column)
        if other != column:
            raise InputError("columns", [other, column], "two columns name the same rank", source=table.where(1))
    try:
        return Taxonomy.from_lineages(table.rows, rank_columns, id_column=id_column, source=str(table.path))
    except InputError as exc:
        raise _relocate(exc, table) from None


def _unknown_columns_reason(header: list[str], unknown: list[str]) -> str:
    lower = {name.lower() for name in header}
    for fmt, columns in _FORMATS.items():
        missing = [c for c in columns if c.lower() not in lower]
        if len(columns) - len(missing) >= 2:
            return f"not rank names; this looks like the {fmt} format but lacks {missing}. Expected: {_EXPECTED}"
    if len(unknown) == len(header):
        return f"no column is a rank name: unknown format. Expected: {_EXPECTED}"
    return f"not rank names (give the id column with --id-column). Expected: {_EXPECTED}"


def _relocate(exc: InputError, table: Table) -> InputError:
    """Map the row numbers :meth:`Taxonomy.from_lineages` counts (one line per row, from 2) to the
    file's real lines, which differ after a blank line or a quoted multi-line cell."""
    lines = table.lines
    if not lines or lines[-1] == len(lines) + 1:  # no gap: the counts are the lines
        return exc
    prefix = f"{table.path}:"

    def real(count: str) -> str:
        index = int(count) - 2
        return str(lines[index]) if 0 <= index < len(lines) else count

    source = exc.source
    if source and source.startswith(prefix) and source[len(prefix) :].isdigit():
        source = prefix + real(source[len(prefix) :])
    reason = re.sub(r"\bline (\d+)\b", lambda m: f"line {real(m.group(1))}", exc.reason)
    return InputError(exc.field, exc.value, reason, source=source)


# -- iNaturalist and Darwin Core: parents referenced by id ------------------------------------

# (taxon id, parent id or None, rank, name, "path:line")
_Parsed = tuple[str, str | None, str, str, str]


def read_taxonomy_for_labels(path: Path | str, labels: Sequence[str], *, id_column: str | None = None) -> Taxonomy:
    """:func:`read_taxonomy`, choosing an iNaturalist file's id column from the labels it must resolve.

    iNaturalist's vision taxonomy has two id columns: ``taxon_id`` and the model's
    ``leaf_class_id``. Without ``id_column`` the choice is :func:`choose_id_column`'s.
    """
    path = Path(path)
    if id_column is not None or not _has_leaf_ids(path):
        return read_taxonomy(path, id_column=id_column)
    both = read_taxonomy(path)
    try:
        chosen = choose_id_column(labels, both)
    except InputError as exc:
        raise exc.with_source(str(path)) from None
    return read_taxonomy(path, id_column=INAT_LEAF_COLUMN) if chosen == INAT_LEAF_COLUMN else both


def choose_id_column(labels: Sequence[str], taxonomy: Taxonomy, id_column: str | None = None) -> str:
    """Whether ``labels`` are iNaturalist ``taxon_id`` values (or names) or ``leaf_class_id`` values.

    ``taxonomy`` holds both readings: an iNaturalist file read without ``id_column`` keeps each
    leaf's class id as the external id ``leaf_class_id:N`` (:data:`LEAF_CLASS_PREFIX`). The
    reading whose ids match more labels wins. When both resolve every label (``["1", "2", "3"]``
    are Animalia, Chordata and Aves as taxon ids, and three species as class ids) the labels are
    ambiguous and refused, naming both readings; ``id_column`` then decides. Labels that name
    the same taxa both ways (a taxonomy read by class id keeps each bare and marked) are one
    reading: ``taxon_id``, the bare ids.
    """
    if id_column is not None:
        if id_column.lower() not in ("taxon_id", INAT_LEAF_COLUMN):
            raise InputError("--id-column", id_column, "must be taxon_id or leaf_class_id")
        return id_column.lower()
    ids = [str(label).strip() for label in labels]
    as_leaf = [taxonomy.external_ids.get(LEAF_CLASS_PREFIX + i) for i in ids]
    if not any(t is not None for t in as_leaf):
        return "taxon_id"
    as_taxon = [taxonomy.external_ids.get(i) for i in ids]  # names resolve in both readings
    if as_taxon == as_leaf:  # one reading (a taxonomy read by class id keeps them bare and marked): the bare ids
        return "taxon_id"
    n_taxon, n_leaf = (sum(t is not None for t in found) for found in (as_taxon, as_leaf))
    if n_taxon == n_leaf:
        taxon_names = [taxonomy.names[t] for t in as_taxon[:3] if t is not None]
        leaf_names = [taxonomy.names[t] for t in as_leaf[:3] if t is not None]
        raise InputError(
            "--id-column",
            ids[:3],
            f"these labels read both as taxon_id ({', '.join(taxon_names)}) and as leaf_class_id "
            f"({', '.join(leaf_names)}): choose with --id-column taxon_id or --id-column leaf_class_id",
        )
    return INAT_LEAF_COLUMN if n_leaf > n_taxon else "taxon_id"


def leaf_class_labels(labels: Sequence[str]) -> list[str]:
    """``labels`` as the ``leaf_class_id:N`` external ids that an iNaturalist import stores."""
    return [LEAF_CLASS_PREFIX + str(label).strip() for label in labels]


def _has_leaf_ids(path: Path) -> bool:
    """An iNaturalist taxonomy with a ``leaf_class_id`` column."""
    with open_table(path) as table:
        lower = {name.lower() for name in table.header}
    return {c.lower() for c in INAT_COLUMNS} <= lower and INAT_LEAF_COLUMN in lower


def _inat(table: Table, id_column: str | None) -> Taxonomy:
    col = _columns(table.header)
    leaf = id_column is not None and id_column.lower() == INAT_LEAF_COLUMN
    if leaf and INAT_LEAF_COLUMN not in col:
        raise InputError("id_column", id_column, "the file has no leaf_class_id column", source=table.where(1))
    ids: dict[str, str] = {}
    parsed: list[_Parsed] = []
    for row in table.rows:
        where = table.where()
        taxon_id = _int_id(row[col["taxon_id"]])
        name = row[col["name"]].strip()
        if not taxon_id:
            raise InputError("taxon_id", row[col["taxon_id"]], "every row needs a taxon id", source=where)
        if not name:
            raise InputError(f"name of taxon {taxon_id}", name, "every row needs a name", source=where)
        try:
            rank = rank_from_level(row[col["rank_level"]].strip())
        except InputError as exc:
            raise exc.with_source(where) from None
        parsed.append((taxon_id, _int_id(row[col["parent_taxon_id"]]) or None, rank, name, where))
        ids[taxon_id] = _int_id(row[col[INAT_LEAF_COLUMN]]) if INAT_LEAF_COLUMN in col else ""
    # The bare ids labels resolve through (class ids, or taxon ids), then the namespaced copies.
    kept = {
        taxon_id: (
            class_id if leaf else taxon_id,
            INAT_PREFIX + taxon_id,
            LEAF_CLASS_PREFIX + class_id if class_id else None,
        )
        for taxon_id, class_id in ids.items()
    }
    return _by_id(parsed, {}, parent_field="parent_taxon_id", also=kept)


def _int_id(text: str) -> str:
    """iNaturalist ids are integers; a file written through pandas may spell them ``"5.0"``."""
    text = text.strip()
    return text[: text.index(".")] if re.fullmatch(r"\d+\.0+", text) else text


def _darwin_core(table: Table, id_column: str | None) -> Taxonomy:
    col = _columns(table.header)
    accepted_col, status_col, canonical_col = (
        col.get("acceptednameusageid"),
        col.get("taxonomicstatus"),
        col.get("canonicalname"),
    )
    parsed: list[_Parsed] = []
    synonyms: dict[str, list[tuple[str, str]]] = {}  # accepted id -> [(name, where)]
    canonical: dict[str, str] = {}  # taxon id -> canonical name
    for row in table.rows:
        where = table.where()
        taxon_id = row[col["taxonid"]].strip()
        name = row[col["scientificname"]].strip()
        if not taxon_id:
            raise InputError("taxonID", taxon_id, "every row needs a taxonID", source=where)
        if not name:
            raise InputError(f"scientificName of {taxon_id}", name, "every row needs a name", source=where)
        bare = row[canonical_col].strip() if canonical_col else ""
        accepted = row[accepted_col].strip() if accepted_col else ""
        status = row[status_col].strip() if status_col else ""
        says_synonym = _synonym_status(status)
        if says_synonym and not accepted:
            reason = f"taxonomicStatus is {status!r}: give the accepted id"
            raise InputError(f"acceptedNameUsageID of {name!r}", accepted, reason, source=where)
        if accepted and accepted != taxon_id and (says_synonym or not status):
            synonyms.setdefault(accepted, []).extend((n, where) for n in dict.fromkeys((name, bare)) if n)
            continue
        try:
            rank = parse_rank(row[col["taxonrank"]], field=f"taxonRank of {name!r}")
        except InputError as exc:
            raise exc.with_source(where) from None
        parent = row[col["parentnameusageid"]].strip() or None
        parsed.append((taxon_id, parent, rank, name, where))
        if bare and bare != name:
            canonical[taxon_id] = bare
    for taxon_id, bare in canonical.items():
        synonyms.setdefault(taxon_id, []).append((bare, ""))
    return _by_id(parsed, synonyms, parent_field="parentNameUsageID")


def _synonym_status(status: str) -> bool:
    """Whether a DwC/GBIF ``taxonomicStatus`` marks a synonym: ``synonym``, ``heterotypic synonym``,
    ``HOMOTYPIC_SYNONYM``, ``proParteSynonym``, ``misapplied``... (not ``accepted``, ``doubtful``)."""
    normal = status.lower()
    return "synonym" in normal or normal == "misapplied"


def _columns(header: list[str]) -> dict[str, str]:
    return {name.lower(): name for name in header}


def _by_id(
    parsed: list[_Parsed],
    synonyms: dict[str, list[tuple[str, str]]],
    *,
    parent_field: str,
    also: dict[str, tuple[str | None, ...]] | None = None,
) -> Taxonomy:
    """Rows referencing their parent by id -> a Taxonomy referencing parents by name.

    A taxon's external id is its row id, unless ``also`` gives it others (None entries skipped).
    """
    name_of: dict[str, str] = {}
    line_of: dict[str, str] = {}
    for taxon_id, _, _, name, where in parsed:
        if taxon_id in name_of:
            raise InputError(
                "taxon id",
                taxon_id,
                f"given twice: to {name_of[taxon_id]!r} on line {line_of[taxon_id]} and to {name!r}",
                source=where,
            )
        name_of[taxon_id] = name
        line_of[taxon_id] = where.rsplit(":", 1)[-1]
    for accepted, names in synonyms.items():
        if accepted not in name_of:
            synonym, where = names[0]
            raise InputError(
                f"acceptedNameUsageID of {synonym!r}", accepted, "no accepted taxon has this id", source=where
            )
    records = []
    for taxon_id, parent_id, rank, name, where in parsed:
        if parent_id is not None and parent_id not in name_of:
            raise InputError(f"{parent_field} of {name!r}", parent_id, "no taxon in the file has this id", source=where)
        records.append(
            TaxonRecord(
                name=name,
                rank=rank,
                parent=name_of[parent_id] if parent_id is not None else None,
                external_ids=_external_ids(taxon_id, also),
                synonyms=tuple(dict.fromkeys(n for n, _ in synonyms.get(taxon_id, ()) if n != name)),
                source=where,
            )
        )
    return Taxonomy(records)


def _external_ids(taxon_id: str, also: dict[str, tuple[str | None, ...]] | None) -> tuple[str, ...]:
    if also is not None and taxon_id in also:
        return tuple(dict.fromkeys(filter(None, also[taxon_id])))
    return (taxon_id,)


def gbif_key(external_ids: Iterable[str]) -> str | None:
    """A taxon's GBIF backbone key: its first all-digit external id that no namespaced id claims.

    GBIF keys are stored as bare digits (a lineage CSV's ``speciesKey``, GBIF's ``Taxon.tsv``,
    Antenna's ``gbif_taxon_key``). An iNaturalist file stores bare digits too, and beside each a
    namespaced copy (``inat:48662``, ``leaf_class_id:17``) that claims them, so an iNaturalist id
    is never published as a GBIF key. (Bare digits from any other source still read as GBIF's;
    only these two namespaces claim any.)
    """
    ids = [str(key) for key in external_ids]
    claimed = {key[len(prefix) :] for key in ids for prefix in _NOT_GBIF if key.startswith(prefix)}
    return next((key for key in ids if _is_number(key) and key not in claimed), None)


def find_gbif_key(taxonomy: Taxonomy, key: str) -> int:
    """The taxon whose GBIF key is ``key`` (see :func:`gbif_key`), else ``NO_TAXON``: a bare id
    that an iNaturalist import claims for the taxon it names is not a GBIF key."""
    key = str(key).strip()
    found = taxonomy.external_ids.get(key, NO_TAXON) if _is_number(key) else NO_TAXON
    if found != NO_TAXON and any(taxonomy.external_ids.get(prefix + key) == found for prefix in _NOT_GBIF):
        return NO_TAXON
    return found


#: The namespaces of an iNaturalist import: a bare number they also hold is theirs, not a GBIF key.
_NOT_GBIF = (INAT_PREFIX, LEAF_CLASS_PREFIX)


def _is_number(key: str) -> bool:
    return key.isascii() and key.isdigit()  # "²" is a digit to str.isdigit, and no key


__all__ = [
    "DWC_COLUMNS",
    "INAT_COLUMNS",
    "INAT_LEAF_COLUMN",
    "INAT_PREFIX",
    "LEAF_CLASS_PREFIX",
    "choose_id_column",
    "find_gbif_key",
    "gbif_key",
    "leaf_class_labels",
    "read_taxonomy",
    "read_taxonomy_for_labels",
]
