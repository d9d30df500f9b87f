"""Export a capture set's occurrences with their determination and its provenance.

Two layouts of the same rows (docs/formats.md): taxopost's own (``occurrences``: the
determination, its rank and external ids, score, who decided, the provenance chain, capture set
and times), and a Darwin Core occurrence table (``dwc``) as a GBIF publisher maps a camera-trap
dataset: ``basisOfRecord`` MachineObservation, one individual per occurrence, the eventDate the
interval of its images, ``identificationVerificationStatus`` verified when a person identified it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from django.db.models import Max, Min

from taxopost.errors import InputError
from taxopost.io.results import check_output, write_table
from taxopost.io.taxonomy import LEAF_CLASS_PREFIX, gbif_key
from taxopost.observations.identifications import UNDATED
from taxopost.observations.models import CaptureSet, Classification, Identification, Occurrence
from taxopost.observations.provenance import classification_chains
from taxopost.taxa.models import Taxon

#: The layouts of :func:`export_occurrences`, and the file types each is written as.
LAYOUTS = {"occurrences": (".csv", ".parquet"), "dwc": (".csv",)}
#: The higher ranks a Darwin Core row carries (they let GBIF tell homonyms apart).
DWC_HIGHER_RANKS = ("kingdom", "phylum", "class", "order", "family", "genus")
#: The Darwin Core columns, in order (dwc: terms of the Occurrence, Event, Identification, Taxon classes).
DWC_COLUMNS = (
    "occurrenceID", "basisOfRecord", "occurrenceStatus", "individualCount", "eventID", "eventDate",
    "scientificName", "taxonRank", "taxonID", *DWC_HIGHER_RANKS,
    "identifiedBy", "dateIdentified", "identificationVerificationStatus", "identificationRemarks",
)  # fmt: skip
#: The types of the ``occurrences`` columns, in order: fixed, so every export has one schema
#: (a column empty in this capture set is still a string column, not one of type null).
OCCURRENCE_TYPES = {
    "occurrence": "string", "capture_set": "string", "determination": "string", "rank": "string",
    "taxon_external_ids": "string", "gbif_key": "string", "score": "float64", "decided_by": "string",
    "provenance": "string", "determined_at": "timestamp", "first_seen": "timestamp", "last_seen": "timestamp",
}  # fmt: skip


def _schema(types: dict[str, str]):
    """The Arrow schema of columns named with their types (``string``, ``int64``, ``float64``,
    ``timestamp``: microseconds, UTC); every column nullable."""
    import pyarrow as pa

    arrow = {
        "string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "timestamp": pa.timestamp("us", "UTC"),
    }  # fmt: skip
    return pa.schema([pa.field(name, arrow[kind], nullable=True) for name, kind in types.items()])


def _score(value: float | None) -> float | None:
    """A score as the float32 it was computed as: the shortest decimal that reads back as that
    float32 (0.9, not the 0.8999999761581421 its widening to a double holds)."""
    return None if value is None else float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def provenance_chains(classification_ids: set[int]) -> dict[int, list[int]]:
    """For each classification, the ids along ``applied_to`` down to the model output.

    One query per level of the deepest chain (a few), not one per classification.
    """
    chains = classification_chains(classification_ids)
    return {clf_id: [step.pk for step in chain] for clf_id, chain in chains.items()}


def check_export_path(output: Path | str, layout: str = "occurrences", *, field: str = "--output") -> Path:
    """The output path if its extension is one the layout writes, else an InputError (nothing written)."""
    if layout not in LAYOUTS:
        raise InputError("--format", layout, f"must be one of {', '.join(LAYOUTS)}")
    return check_output(output, field, suffixes=LAYOUTS[layout])


@dataclass(frozen=True)
class _Row:
    """One occurrence of the export, before it is laid out."""

    key: str
    project: str
    taxon_id: int | None
    name: str | None
    rank: str | None
    score: float | None
    classification_id: int | None
    algorithm: str | None
    identification_id: int | None
    first_seen: datetime | None
    last_seen: datetime | None


def export_occurrences(capture_set: str, output: Path | str, *, layout: str = "occurrences") -> int:
    """Write one row per occurrence of the capture set; returns the number of rows written.

    The Darwin Core layout leaves out occurrences with no identifiable determination (none, or
    "Not identifiable"): a Darwin Core occurrence needs a scientificName.
    """
    import pyarrow as pa

    path = check_export_path(output, layout)
    found = CaptureSet.named(capture_set)
    detections = CaptureSet.detections_of(found)
    seen = {
        row["occurrence_id"]: (row["first"], row["last"])
        for row in detections.values("occurrence_id")
        .annotate(first=Min("source_image__timestamp"), last=Max("source_image__timestamp"))
        .order_by()
    }
    rows = [
        _Row(key, project, taxon_id, name, rank, score, clf_id, algorithm, ident, *seen.get(pk, (None, None)))
        for pk, key, project, taxon_id, name, rank, score, clf_id, algorithm, ident in (
            Occurrence.objects.filter(id__in=detections.values("occurrence_id"))
            .order_by("id")
            .values_list(
                "id", "key", "project__name", "determination_id", "determination__name", "determination__rank",
                "determination_score", "determined_by_id", "determined_by__algorithm__key",
                "determined_by_identification_id",
            )
        )
    ]  # fmt: skip
    chains = provenance_chains({row.classification_id for row in rows if row.classification_id is not None})
    steps = {i for chain in chains.values() for i in chain}
    classifications = {
        pk: (key, created, task)
        for pk, key, created, task in Classification.objects.filter(id__any_of=steps).values_list(
            "id", "algorithm__key", "created_at", "algorithm__task_type"
        )
    }
    identifications = {
        pk: (who or (username or ""), created)
        for pk, who, username, created in Identification.objects.filter(
            id__any_of={row.identification_id for row in rows if row.identification_id is not None}
        ).values_list("id", "who", "user__username", "created_at")
    }
    taxa = _taxa({row.taxon_id for row in rows if row.taxon_id is not None})

    def provenance(row: _Row) -> str | None:
        chain = chains.get(row.classification_id, [])
        return " <- ".join(classifications[c][0] for c in chain) if chain else None

    def identified_by(row: _Row) -> str | None:
        """A person's name, else the model the chain starts from and the tasks applied to its output."""
        if row.identification_id is not None:
            return identifications[row.identification_id][0] or None
        chain = [classifications[c] for c in chains.get(row.classification_id, [])]
        if not chain:
            return row.algorithm
        tasks = [task for _, _, task in reversed(chain[:-1])]
        return chain[-1][0] + (f" (then taxopost {', '.join(tasks)})" if tasks else "")

    def determined_at(row: _Row) -> datetime | None:
        if row.identification_id is not None:  # one imported without a date: none (not the epoch it sorts by)
            at = identifications[row.identification_id][1]
            return None if at == UNDATED else at
        return classifications[row.classification_id][1] if row.classification_id in classifications else None

    if layout == "dwc":
        rows = [row for row in rows if row.taxon_id is not None and row.rank != "unknown"]
        columns = _dwc_columns(rows, found.name, taxa, identified_by, provenance, determined_at)
        schema = _schema({name: "int64" if name == "individualCount" else "string" for name in DWC_COLUMNS})
    else:
        columns = {
            "occurrence": [row.key for row in rows],
            "capture_set": [found.name] * len(rows),
            "determination": [row.name for row in rows],
            "rank": [row.rank for row in rows],
            "taxon_external_ids": [";".join(taxa[row.taxon_id].external_ids) or None if row.taxon_id else None
                                   for row in rows],
            "gbif_key": [taxa[row.taxon_id].gbif_key if row.taxon_id else None for row in rows],
            "score": [_score(row.score) for row in rows],
            "decided_by": ["identification" if row.identification_id else row.algorithm for row in rows],
            "provenance": [provenance(row) for row in rows],
            "determined_at": [determined_at(row) for row in rows],
            "first_seen": [row.first_seen for row in rows],
            "last_seen": [row.last_seen for row in rows],
        }  # fmt: skip
        schema = _schema(OCCURRENCE_TYPES)
    write_table(path, pa.table(columns, schema=schema))
    return len(rows)


@dataclass(frozen=True)
class _Taxon:
    external_ids: tuple[str, ...]
    lineage: dict[str, str]  # rank -> name, the taxon itself included

    @property
    def gbif_key(self) -> str | None:
        """Its GBIF backbone key (:func:`~taxopost.io.taxonomy.gbif_key`: never an iNaturalist id)."""
        return gbif_key(self.external_ids)

    @property
    def taxon_id(self) -> str | None:
        """Darwin Core's ``taxonID``: the GBIF key, else an id that names its authority
        (``inat:48662``), else the first external id; never a model's class index."""
        ids = [key for key in self.external_ids if not key.startswith(LEAF_CLASS_PREFIX)]
        return self.gbif_key or next((key for key in ids if ":" in key), None) or next(iter(ids), None)


def _taxa(ids: Iterable[int]) -> dict[int, _Taxon]:
    """The external ids and lineage names of the determination taxa: two queries for any number."""
    found = list(Taxon.objects.filter(id__any_of=set(ids)).values_list("id", "path", "external_ids"))
    lineage_ids = {int(part) for _, path, _ in found for part in path.strip("/").split("/") if part}
    names = {pk: (name, rank) for pk, name, rank in Taxon.objects.filter(id__any_of=lineage_ids).values_list(
        "id", "name", "rank")}  # fmt: skip
    result = {}
    for pk, path, external_ids in found:
        steps = [names[int(part)] for part in path.strip("/").split("/") if part and int(part) in names]
        result[pk] = _Taxon(tuple(str(key) for key in external_ids), {rank: name for name, rank in steps})
    return result


def _dwc_columns(rows, capture_set: str, taxa, identified_by, provenance, determined_at) -> dict[str, list]:
    def event_date(row: _Row) -> str | None:
        if row.first_seen is None:
            return None
        first, last = row.first_seen.isoformat(), row.last_seen.isoformat()
        return first if first == last else f"{first}/{last}"

    def remarks(row: _Row) -> str:
        if row.identification_id is not None:
            return "identified by a person"
        return f"score {row.score:.3f}; provenance {provenance(row)}" if row.score is not None else provenance(row)

    columns: dict[str, list] = {
        "occurrenceID": [f"{row.project}:{row.key}" for row in rows],
        "basisOfRecord": ["MachineObservation"] * len(rows),
        "occurrenceStatus": ["present"] * len(rows),
        "individualCount": [1] * len(rows),
        "eventID": [capture_set] * len(rows),
        "eventDate": [event_date(row) for row in rows],
        "scientificName": [row.name for row in rows],
        "taxonRank": [row.rank for row in rows],
        "taxonID": [taxa[row.taxon_id].taxon_id for row in rows],
    }
    for rank in DWC_HIGHER_RANKS:
        columns[rank] = [taxa[row.taxon_id].lineage.get(rank) for row in rows]
    columns["identifiedBy"] = [identified_by(row) for row in rows]
    columns["dateIdentified"] = [at.isoformat() if (at := determined_at(row)) is not None else None for row in rows]
    columns["identificationVerificationStatus"] = [
        "verified" if row.identification_id is not None else "unverified" for row in rows
    ]
    columns["identificationRemarks"] = [remarks(row) for row in rows]
    return {name: columns[name] for name in DWC_COLUMNS}
