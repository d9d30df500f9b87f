"""Antenna's JSON, parsed into plain records (Python and numpy values): what the importer needs, checked.

Each parser takes one object of the API (a list entry or a detail) and raises a
:class:`~taxopost.io.antenna.client.ConnectorError` naming the object and the field when the
server's answer lacks what the import relies on.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

import msgspec
import numpy as np

from taxopost.io.antenna.client import ConnectorError

_ID_IN_LINK = re.compile(r"/(\d+)/?(?:\?.*)?$")
#: How Antenna's post-processing tasks describe the algorithm they write under (``BasePostProcessingTask``).
_TASK_DESCRIPTION = re.compile(r"^Post-processing task: ([a-z0-9_]+)\s*$")
#: The key of the algorithm Antenna's class masking writes under: ``{source key}_filtered_by_taxa_list_{id}``.
_MASKING_KEY = re.compile(r"_filtered_by_taxa_list_\d+$")
#: Antenna's ``task_type`` of the algorithms its post-processing tasks create.
POST_PROCESSING = "post_processing"

# Why a derived classification cannot be placed in a chain (the importer counts each).
MISSING_SOURCE = "classifications derived from one that is not in the capture set's data, or was left out"
CYCLE = "classifications whose applied_to chain loops back on itself"


@dataclass(frozen=True)
class AntennaImage:
    """A capture (Antenna's SourceImage): its size and time, and how many detections it holds."""

    id: int
    path: str
    width: int | None
    height: int | None
    timestamp: datetime | None
    detections_count: int


@dataclass(frozen=True)
class ClassificationRef:
    """A classification as nested in a detection: enough to decide whether to fetch its detail."""

    id: int
    algorithm_key: str
    terminal: bool
    applied_to: int | None
    task: str | None = None  # the Antenna post-processing task that wrote it (:func:`antenna_task`)


@dataclass(frozen=True)
class AntennaDetection:
    id: int
    capture_id: int
    bbox: list[float] | None
    occurrence_id: int | None
    classifications: tuple[ClassificationRef, ...]


@dataclass(frozen=True)
class AntennaAlgorithm:
    id: int
    key: str
    name: str
    version: str
    category_map_id: int | None
    task: str | None = None  # the Antenna post-processing task it stands for (:func:`antenna_task`)


@dataclass(frozen=True)
class AntennaClassification:
    """A classification detail: the only place Antenna exposes the score and logit vectors."""

    id: int
    algorithm: AntennaAlgorithm
    taxon_id: int | None
    score: float | None
    scores: np.ndarray | None  # float32, in category-map order
    logits: np.ndarray | None
    applied_to: int | None
    created_at: datetime | None


@dataclass(frozen=True)
class AntennaTaxon:
    id: int
    name: str
    rank: str  # lower case, as taxopost spells ranks
    parent_id: int | None
    gbif_key: int | None = None


@dataclass(frozen=True)
class AntennaCategoryMap:
    """Labels in class-index order (``scores[i]`` belongs to ``labels[i]``) with their GBIF keys."""

    id: int
    labels: list[str]
    gbif_keys: list[int | None]


@dataclass(frozen=True)
class AntennaIdentification:
    """An identification; ``id`` is its key (``user`` is a label: people rename themselves)."""

    id: int
    occurrence_id: int
    taxon_id: int
    user: str
    withdrawn: bool
    comment: str
    created_at: datetime | None
    user_id: int | None = None


def local_time(value: object, zone: tzinfo, *, where: str) -> datetime | None:
    """An Antenna timestamp as an aware datetime.

    Antenna runs with ``USE_TZ=False``: its times carry no offset and are wall-clock times in the
    server's ``TIME_ZONE``, which ``zone`` names. A time that does carry an offset keeps it.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConnectorError("timestamp", value, f"expected an ISO 8601 string ({where})")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConnectorError("timestamp", value, f"not an ISO 8601 date and time ({where})") from None
    return parsed.replace(tzinfo=zone) if parsed.utcoffset() is None else parsed


def id_from_link(value: object, *, field: str, where: str) -> int | None:
    """The id at the end of a hyperlink (``.../occurrences/7/``), an ``{id: ...}`` object or an id."""
    if value is None:
        return None
    if isinstance(value, dict):
        return _int(value, "id", f"{where}.{field}")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _ID_IN_LINK.search(value) if isinstance(value, str) else None
    if match is None:
        raise ConnectorError(field, value, f"expected a link or an id ({where})")
    return int(match.group(1))


def parse_image(data: dict, zone: tzinfo) -> AntennaImage:
    where = f"capture {data.get('id')}"
    pk = _int(data, "id", "capture")
    return AntennaImage(
        id=pk,
        path=str(data.get("path") or f"antenna-capture-{pk}"),
        width=_optional_int(data, "width", where),
        height=_optional_int(data, "height", where),
        timestamp=local_time(data.get("timestamp"), zone, where=f"{where}.timestamp"),
        detections_count=_optional_int(data, "detections_count", where) or 0,
    )


def parse_detection(data: dict, *, capture_id: int | None = None, occurrence_id: int | None = None) -> AntennaDetection:
    """A detection nested in an occurrence detail (``capture{id}``) or a detection detail (links)."""
    pk = _int(data, "id", "detection")
    where = f"detection {pk}"
    if capture_id is None:
        capture = data.get("capture") if data.get("capture") is not None else data.get("source_image")
        capture_id = id_from_link(capture, field="capture", where=where)
        if capture_id is None:
            raise ConnectorError("capture", None, f"{where} names no capture")
    if occurrence_id is None:
        occurrence_id = id_from_link(data.get("occurrence"), field="occurrence", where=where)
    bbox = data.get("bbox")
    if bbox is not None and not (
        isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) and math.isfinite(v) for v in bbox)
    ):
        raise ConnectorError("bbox", bbox, f"expected [x1, y1, x2, y2] in pixels ({where})")
    nested = data.get("classifications")
    if not isinstance(nested, list):
        raise ConnectorError("classifications", str(nested)[:60], f"expected the nested list ({where})")
    refs = []
    for item in nested:
        algorithm = item.get("algorithm") if isinstance(item, dict) else None
        if not isinstance(algorithm, dict) or not algorithm.get("key"):
            raise ConnectorError("algorithm", algorithm, f"{where}: a nested classification names no algorithm key")
        refs.append(
            ClassificationRef(
                id=_int(item, "id", f"{where} classification"),
                algorithm_key=str(algorithm["key"]),
                terminal=bool(item.get("terminal", True)),
                applied_to=id_from_link(item.get("applied_to"), field="applied_to", where=where),
                task=antenna_task(algorithm),
            )
        )
    return AntennaDetection(
        id=pk,
        capture_id=capture_id,
        bbox=[float(v) for v in bbox] if bbox is not None else None,
        occurrence_id=occurrence_id,
        classifications=tuple(refs),
    )


def parse_algorithm(data: object, where: str) -> AntennaAlgorithm:
    if not isinstance(data, dict):
        raise ConnectorError("algorithm", data, f"expected the algorithm object ({where})")
    category_map = data.get("category_map")
    return AntennaAlgorithm(
        id=_int(data, "id", f"{where} algorithm"),
        key=str(data.get("key") or f"antenna-algorithm-{data['id']}"),
        name=str(data.get("name") or data.get("key") or ""),
        version=str(data.get("version_name") or data.get("version") or ""),
        category_map_id=id_from_link(category_map, field="category_map", where=where),
        task=antenna_task(data),
    )


def antenna_task(algorithm: dict) -> str | None:
    """The key of the Antenna post-processing task an algorithm object stands for, else None (a model).

    Antenna's tasks create their algorithm with ``description="Post-processing task: {key}"``
    and ``task_type="post_processing"``, named after the task (``"Rank rollup"``, earlier
    ``"RankRollupTask"``); its class masking writes under a classification-type algorithm keyed
    ``{source key}_filtered_by_taxa_list_{id}``. The keys are Antenna's registry's
    (``rank_rollup``, ``class_masking``, ``small_size_filter``, ...).
    """
    description = algorithm.get("description")
    found = _TASK_DESCRIPTION.match(description) if isinstance(description, str) else None
    if found is not None:
        return found.group(1)
    key = str(algorithm.get("key") or "")
    if _MASKING_KEY.search(key):
        return "class_masking"
    if algorithm.get("task_type") == POST_PROCESSING:
        name = str(algorithm.get("name") or key)
        name = re.sub(r"Task$", "", name.strip())
        name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)  # RankRollup -> Rank_Rollup
        name = re.sub(r"-\d+$", "", name)  # a slug key with its version: rank-rollup-1
        return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or None
    return None


def chain_order(refs: Sequence[ClassificationRef]) -> tuple[list[tuple[ClassificationRef, int]], Counter]:
    """A detection's classifications, each source before what derives from it, with its depth
    (0: derived from nothing), whatever order Antenna lists them in.

    A classification derived from one not in ``refs`` is left out, and so is everything above it;
    so is a chain that loops. Returns the kept ones (by depth, then as listed) and the reasons
    for those left out.
    """
    by_id = {ref.id: ref for ref in refs}
    depth: dict[int, int] = {}
    left_out: Counter = Counter()
    for ref in refs:
        path: list[int] = []
        node: ClassificationRef | None = ref
        reason = None
        while node is not None and node.id not in depth:
            if node.id in path:
                reason = CYCLE
                break
            path.append(node.id)
            if node.applied_to is None:
                node = None
            elif node.applied_to in by_id:
                node = by_id[node.applied_to]
            else:
                reason = MISSING_SOURCE
                break
        if reason is not None or (node is not None and depth[node.id] < 0):
            reason = reason or MISSING_SOURCE  # above one left out
            for pk in path:
                depth[pk] = -1
                left_out[reason] += 1
            continue
        base = -1 if node is None else depth[node.id]
        for pk in reversed(path):
            base += 1
            depth[pk] = base
    kept = sorted(((ref, depth[ref.id]) for ref in refs if depth[ref.id] >= 0), key=lambda item: item[1])
    return kept, left_out


def parse_classification(data: dict, zone: tzinfo) -> AntennaClassification:
    pk = _int(data, "id", "classification")
    where = f"classification {pk}"
    taxon = data.get("taxon")
    score = data.get("score")
    if score is not None and not _is_number(score):
        raise ConnectorError("score", score, f"expected a number, not {_json_kind(score)} ({where})")
    return AntennaClassification(
        id=pk,
        algorithm=parse_algorithm(data.get("algorithm"), where),
        taxon_id=id_from_link(taxon, field="taxon", where=where),
        score=float(score) if _is_number(score) else None,
        scores=_vector(data.get("scores"), "scores", where),
        logits=_vector(data.get("logits"), "logits", where),
        applied_to=id_from_link(data.get("applied_to"), field="applied_to", where=where),
        created_at=local_time(data.get("created_at"), zone, where=f"{where}.created_at"),
    )


def parse_taxon(data: dict) -> AntennaTaxon:
    """A taxon of the taxa list (``parent_id``) or a taxon detail (``parent{}``, ``gbif_taxon_key``)."""
    pk = _int(data, "id", "taxon")
    where = f"taxon {pk}"
    parent = data.get("parent_id") if "parent_id" in data else data.get("parent")
    gbif = data.get("gbif_taxon_key")
    name, rank = data.get("name"), data.get("rank")
    if not isinstance(name, str) or not name.strip() or not isinstance(rank, str):
        raise ConnectorError("taxon", {"name": name, "rank": rank}, f"{where} needs a name and a rank")
    return AntennaTaxon(
        id=pk,
        name=name.strip(),
        rank=rank.strip().lower(),
        parent_id=id_from_link(parent, field="parent", where=where),
        gbif_key=int(gbif) if isinstance(gbif, int) and not isinstance(gbif, bool) else None,
    )


def parse_category_map(data: dict) -> AntennaCategoryMap:
    pk = _int(data, "id", "category map")
    where = f"category map {pk}"
    labels = data.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise ConnectorError("labels", str(labels)[:60], f"expected the labels in index order ({where})")
    keys: list[int | None] = [None] * len(labels)
    for entry in data.get("data") or []:
        index = entry.get("index") if isinstance(entry, dict) else None
        if isinstance(index, int) and 0 <= index < len(labels):
            if entry.get("label") not in (None, labels[index]):
                raise ConnectorError("data", entry, f"{where}: its label differs from labels[{index}]")
            gbif = entry.get("gbif_key")
            keys[index] = int(gbif) if isinstance(gbif, int) and not isinstance(gbif, bool) else None
    return AntennaCategoryMap(id=pk, labels=list(labels), gbif_keys=keys)


def parse_identification(data: dict, occurrence_id: int, zone: tzinfo) -> AntennaIdentification:
    """An identification as nested in an occurrence (no ``occurrence`` field of its own)."""
    pk = _int(data, "id", "identification")
    where = f"identification {pk}"
    taxon_id = id_from_link(data.get("taxon"), field="taxon", where=where)
    if taxon_id is None:
        raise ConnectorError("taxon", None, f"{where} names no taxon")
    user = data.get("user")
    if isinstance(user, dict):
        user_id = user.get("id") if _is_int(user.get("id")) else None
        who = f"{user.get('name') or 'user'} (Antenna user {user.get('id')})"
    else:
        user_id = id_from_link(user, field="user", where=where)
        who = "Antenna user" if user_id is None else f"Antenna user {user_id}"
    return AntennaIdentification(
        id=pk,
        occurrence_id=occurrence_id,
        taxon_id=taxon_id,
        user=who,
        withdrawn=bool(data.get("withdrawn", False)),
        comment=str(data.get("comment") or ""),
        created_at=local_time(data.get("created_at"), zone, where=f"{where}.created_at"),
        user_id=user_id,
    )


def _vector(values: object, field: str, where: str) -> np.ndarray | None:
    """A list of JSON numbers (a null reads as nan) as float32.

    Checked in one call (msgspec's, in C): 2,497 ``isinstance`` calls a row would cost more than
    the rest of the import. A string or a boolean is refused, not converted: ``"0.1"`` is no score.
    """
    if values is None:
        return None
    if not isinstance(values, list) or not values:
        raise ConnectorError(field, str(values)[:60], f"expected a list of numbers ({where})")
    try:
        numbers = msgspec.convert(values, list[float | None])
    except msgspec.ValidationError:  # the slow search, on the way out only
        at = next(i for i, value in enumerate(values) if value is not None and not _is_number(value))
        reason = f"expected a number, not {_json_kind(values[at])} ({where})"
        raise ConnectorError(f"{field}[{at}]", values[at], reason) from None
    return np.asarray(numbers, dtype=np.float32)


def _json_kind(value: object) -> str:
    """What a JSON value is, as a message names it."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def _int(data: object, key: str, where: str) -> int:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConnectorError(key, value, f"expected an integer in the {where} object")
    return value


def _optional_int(data: dict, key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConnectorError(key, value, f"expected a whole number ({where})")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
