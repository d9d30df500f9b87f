"""Import human identifications (ground truth, outranking every prediction) from CSV files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from django.db import transaction

from taxopost.errors import InputError
from taxopost.io import check_file
from taxopost.io.timestamps import parse_timestamp
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.edits import count_edit
from taxopost.observations.imports import DEFAULT_PROJECT, ImportSummary
from taxopost.observations.models import Detection, Identification, Occurrence, Project
from taxopost.taxa.operations import load_taxonomy

_BOOLEANS = {"": False, "0": False, "false": False, "no": False, "1": True, "true": True, "yes": True}

#: The columns that name a row to identify: an occurrence's key, or an image's path and a detection's key.
_KEYS = ("occurrence", "image", "detection")
#: Identifications without a date sort before every dated one.
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


def import_identifications(path: Path | str, *, project: str = DEFAULT_PROJECT) -> ImportSummary:
    """Import human identifications from CSV (docs/formats.md): validated as a whole, then written.

    Columns: ``taxon`` (name or external id) and either ``occurrence`` (its key) or ``image`` +
    ``detection`` (the detection's key); optional ``who``, ``created_at`` (ISO 8601),
    ``withdrawn``, ``comment``. Idempotent: the same row imported twice is stored once.
    """
    path = Path(path)
    check_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM is no column name
            reader = csv.DictReader(handle)
            rows, lines = [], []  # and the line each row ends on: blank lines are skipped
            for row in reader:
                # A cell beyond the header (a comma in an unquoted comment) or one short of it:
                # DictReader keeps the first under None and leaves the second None, both silently.
                if None in row or None in row.values():
                    cells = [v for k, v in row.items() if k is not None and v is not None] + (row.get(None) or [])
                    raise InputError(
                        "row", [str(c)[:40] for c in cells[:8]],
                        f"has {len(cells)} cells but the header has {len(reader.fieldnames)} "
                        "(a comma in a value needs quotes)", source=f"{path}:{reader.line_num}",
                    )  # fmt: skip
                for key in _KEYS:  # keys are read as taxon and who are, without surrounding spaces
                    if row.get(key):
                        row[key] = row[key].strip()
                rows.append(row)
                lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError("file", str(path), f"not a readable CSV file ({exc})") from None
    if not rows:
        raise InputError("file", str(path), "no identifications")
    header = set(rows[0])
    if "taxon" not in header or not ({"occurrence"} <= header or {"image", "detection"} <= header):
        reason = "needs taxon and either occurrence or image + detection"
        raise InputError("header", sorted(header), reason, source=str(path))
    project_obj = Project.objects.filter(name=project).first()
    if project_obj is None:
        raise InputError("project", project, "no project has this name (import predictions first)")
    taxonomy = load_taxonomy()
    by_key = dict(
        Occurrence.objects.filter(
            project=project_obj, key__in={r.get("occurrence") for r in rows} - {None, ""}
        ).values_list("key", "id")
    )
    by_detection = {
        (image, key): occurrence
        for image, key, occurrence in Detection.objects.filter(
            source_image__project=project_obj, source_image__path__in={r.get("image") for r in rows} - {None, ""}
        ).values_list("source_image__path", "key", "occurrence_id")
    }
    new, touched = [], set()
    seen: dict[tuple, tuple[int, Identification]] = {}  # natural key -> (line, identification)
    for line, row in zip(lines, rows, strict=True):
        where = f"{path}:{line}"
        taxon = taxonomy.core.find(row.get("taxon") or "")
        if taxon < 0:
            raise InputError("taxon", row.get("taxon"), "resolves to no taxon", source=where)
        if row.get("occurrence"):
            occurrence_id = by_key.get(row["occurrence"])
            if occurrence_id is None:
                reason = f"no occurrence of project {project!r} has this key (another project: --project)"
                raise InputError("occurrence", row["occurrence"], reason, source=where)
        else:
            occurrence_id = by_detection.get((row.get("image"), row.get("detection")))
            if occurrence_id is None:
                detection = f"{row.get('image')}#{row.get('detection')}"
                reason = f"no detection of project {project!r} matches (another project: --project)"
                raise InputError("detection", detection, reason, source=where)
        created_at = parse_timestamp(row.get("created_at") or None, field="created_at", source=where) or UNDATED
        withdrawn = _BOOLEANS.get(str(row.get("withdrawn") or "").strip().lower())
        if withdrawn is None:
            raise InputError("withdrawn", row.get("withdrawn"), "must be true or false (or empty)", source=where)
        identification = Identification(
            occurrence_id=occurrence_id,
            taxon_id=int(taxonomy.db_ids[taxon]),
            who=(row.get("who") or "").strip(),
            comment=(row.get("comment") or "").strip(),
            withdrawn=withdrawn,
            created_at=created_at,
        )
        # One identification per natural key: the same row twice is stored once, two that disagree
        # are refused (a bulk upsert may not touch a row twice: PostgreSQL refused the whole file).
        key = (occurrence_id, identification.taxon_id, identification.who, created_at)
        earlier = seen.get(key)
        if earlier is not None:
            first_line, first = earlier
            if (first.withdrawn, first.comment) != (withdrawn, identification.comment):
                reason = f"the identification of line {first_line} (occurrence, taxon, who, time), saying otherwise"
                raise InputError("row", row.get("taxon"), reason, source=where)
            continue
        seen[key] = (line, identification)
        new.append(identification)
        touched.add(occurrence_id)
    summary = ImportSummary(records=len(rows))
    with transaction.atomic():
        summary.add("identifications", save_identifications(new))
        recompute_determinations(touched)
    return summary


def save_identifications(identifications: list[Identification]) -> int:
    """Store checked identifications by natural key; returns how many are new.

    The same identification again (occurrence, taxon, who, when) updates it: withdrawing an
    identification is importing it again with withdrawn=true. The caller recomputes the
    determinations of the occurrences and owns the transaction.
    """
    before = Identification.objects.count()
    if identifications:  # an update (withdrawn, comment) moves no id
        count_edit()
    Identification.objects.bulk_create(
        identifications,
        update_conflicts=True,
        unique_fields=["occurrence", "taxon", "who", "created_at"],
        update_fields=["withdrawn", "comment"],
    )
    return Identification.objects.count() - before
