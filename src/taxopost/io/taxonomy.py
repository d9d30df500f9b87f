"""Taxonomy files: lineage CSV, iNaturalist vision taxonomy CSV, Darwin Core Taxon (CSV or TSV).

The format is detected from the header:

- iNaturalist: ``parent_taxon_id, taxon_id, rank_level, ..., name``;
- Darwin Core: ``taxonID, parentNameUsageID, scientificName, taxonRank`` (GBIF's export);
  rows whose ``taxonomicStatus`` is a synonym status and whose ``acceptedNameUsageID`` points
  at another taxon become synonyms of that taxon;
- otherwise a lineage table: one column per rank (any case), an empty cell skips that rank,
  and optionally the id column named by ``id_column``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from taxopost.core.ranks import RANK_CODE, parse_rank, rank_from_level
from taxopost.core.taxonomy import Taxonomy, TaxonRecord
from taxopost.errors import InputError
from taxopost.io._text import open_table

INAT_COLUMNS = ("parent_taxon_id", "taxon_id", "rank_level", "name")
DWC_COLUMNS = ("taxonID", "parentNameUsageID", "scientificName", "taxonRank")
_SYNONYM_STATUSES = {"synonym", "heterotypic synonym", "homotypic synonym", "proparte synonym", "misapplied"}


def read_taxonomy(path: Path | str, *, id_column: str | None = None) -> Taxonomy:
    """Read a taxonomy file, detecting its format from the header; raises InputError naming the file."""
    path = Path(path)
    with open_table(path) as (header, rows):
        try:
            if set(INAT_COLUMNS) <= set(header):
                return _inat(rows, str(path))
            if set(DWC_COLUMNS) <= set(header):
                return _darwin_core(header, rows, str(path))
            return _lineage(header, rows, id_column, str(path))
        except InputError as exc:
            raise exc.with_source(str(path)) from None


def _lineage(header: list[str], rows: Iterator[dict], id_column: str | None, source: str) -> Taxonomy:
    if id_column is not None and id_column not in header:
        raise InputError("--id-column", id_column, f"not a column of the file; columns: {header}")
    rank_columns = [c for c in header if c != id_column]
    unknown = [c for c in rank_columns if c.strip().lower() not in RANK_CODE]
    if unknown:
        raise InputError(
            "columns",
            unknown,
            "not rank names; a lineage CSV has one column per rank (plus --id-column), an iNaturalist file "
            f"has {list(INAT_COLUMNS)}, a Darwin Core file {list(DWC_COLUMNS)}",
            source=source,
        )
    if not rank_columns:
        raise InputError("columns", header, "no rank column", source=source)
    return Taxonomy.from_lineages(rows, rank_columns, id_column=id_column, source=source)


def _inat(rows: Iterator[dict], source: str) -> Taxonomy:
    parsed = []
    for line, row in enumerate(rows, start=2):
        where = f"{source}:{line}"
        taxon_id, name = (row.get("taxon_id") or "").strip(), (row.get("name") or "").strip()
        if not taxon_id or not name:
            raise InputError("taxon_id/name", dict(row), "every row needs a taxon_id and a name", source=where)
        try:
            rank = rank_from_level(row.get("rank_level"))
        except InputError as exc:
            raise exc.with_source(where) from None
        parsed.append((taxon_id, (row.get("parent_taxon_id") or "").strip() or None, rank, name, where))
    return _by_id(parsed, source)


def _darwin_core(header: list[str], rows: Iterator[dict], source: str) -> Taxonomy:
    parsed, synonyms = [], []
    for line, row in enumerate(rows, start=2):
        where = f"{source}:{line}"
        taxon_id, name = (row.get("taxonID") or "").strip(), (row.get("scientificName") or "").strip()
        if not taxon_id or not name:
            raise InputError("taxonID/scientificName", dict(row), "every row needs both", source=where)
        accepted = (row.get("acceptedNameUsageID") or "").strip()
        status = (row.get("taxonomicStatus") or "").strip().lower()
        if accepted and accepted != taxon_id and (status in _SYNONYM_STATUSES or not status):
            synonyms.append((accepted, name, where))
            continue
        try:
            rank = parse_rank(row.get("taxonRank"), field="taxonRank")
        except InputError as exc:
            raise exc.with_source(where) from None
        parsed.append((taxon_id, (row.get("parentNameUsageID") or "").strip() or None, rank, name, where))
    return _by_id(parsed, source, synonyms)


def _by_id(
    parsed: list[tuple[str, str | None, str, str, str]],
    source: str,
    synonyms: list[tuple[str, str, str]] = (),
) -> Taxonomy:
    """Records referencing parents by id -> a Taxonomy referencing parents by name."""
    name_of: dict[str, str] = {}
    for taxon_id, _, _, name, where in parsed:
        if taxon_id in name_of:
            raise InputError("taxon id", taxon_id, f"appears twice ({name_of[taxon_id]!r} and {name!r})", source=where)
        name_of[taxon_id] = name
    extra: dict[str, list[str]] = {}
    for accepted, name, where in synonyms:
        if accepted not in name_of:
            raise InputError("acceptedNameUsageID", accepted, "no taxon has this id", source=where)
        extra.setdefault(accepted, []).append(name)
    records = []
    for taxon_id, parent_id, rank, name, where in parsed:
        if parent_id is not None and parent_id not in name_of:
            raise InputError(f"parent of {name!r}", parent_id, "no taxon has this id", source=where)
        records.append(
            TaxonRecord(
                name=name,
                rank=rank,
                parent=name_of[parent_id] if parent_id is not None else None,
                external_ids=(taxon_id,),
                synonyms=tuple(extra.get(taxon_id, ())),
                source=where,
            )
        )
    return Taxonomy(records)


__all__ = ["read_taxonomy"]
