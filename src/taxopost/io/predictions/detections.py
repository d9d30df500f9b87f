"""What a detector + classifier output file holds, as arrays: the shape every format reader returns.

MegaDetector batch files, SpeciesNet predictions and Antenna processing-service responses all
list images, their detections and each detection's top-k (or full) classification. A reader
turns one into a :class:`DetectionFile`: the classifications as :class:`SparseRows` (one row
per classified detection), the label space, the taxonomy when the file carries one, and the
parsed document with a handle on each detection, so a writer can put results back in the
file's own format.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.ranks import RANK_CODE, parse_rank
from taxopost.core.sparse import SparseRows
from taxopost.core.taxonomy import NO_TAXON, Taxonomy, TaxonRecord
from taxopost.errors import TOO_DEEP, InputError
from taxopost.io._text import check_file
from taxopost.io.taxonomy import find_gbif_key

#: SpeciesNet's label: ``guid;class;order;family;genus;species;common name``.
SPECIESNET_RANKS = ("class", "order", "family", "genus", "species")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: Why a number is refused that JSON holds but a float cannot (``1e400``, or 1 followed by 400 zeros).
TOO_LARGE = "a number too large for a 64-bit float"
#: Why the import refuses an image listed twice: the repeat's detections would get the first's keys.
LISTED_ONCE = "the import keys an image by its file name, so its detections belong in one entry"


@dataclass
class DetectionFile:
    """One output file of a detector and classifier, read into arrays.

    Attributes
    ----------
    format : str
        ``"megadetector"``, ``"speciesnet"`` or ``"antenna"``.
    path : Path
    document : dict
        The parsed JSON, kept so that writers change only what post-processing changes (for a
        MegaDetector file: its top-level values unparsed, and each image parsed only when read
        or changed).
    class_keys : tuple of str
        The file's own id of each class (a MegaDetector category id, a SpeciesNet label, an
        Antenna label), in class order.
    labels : tuple of str
        Each class's name, what it resolves by against a taxonomy file (Antenna's GBIF keys,
        in ``extra["gbif_keys"]``, are tried first).
    taxonomy : Taxonomy or None
        The taxonomy the file's lineage strings give, if they give one.
    class_taxa : ndarray of shape (n_classes,), int32, or None
        Each class's taxon in ``taxonomy`` (``NO_TAXON``: blank, vehicle, "animal").
    scores : SparseRows
        One row per classified detection.
    classified : ndarray of shape (n_rows,), intp
        The detection of each row of ``scores``.
    n_detections : int
    detections : list of dict or None
        Each detection's object in ``document``, in file order (None for MegaDetector, which
        keeps its images unparsed).
    path_of : callable
        ``path_of(detection)`` is its JSON path (``images[3].detections[1]``), for messages.
    images : list of dict or None
        Each detection's image object (None for MegaDetector).
    task : str or None
        The task the file was read for (``"rank_rollup"``, ``"class_masking"``): a row whose
        current output is that task's earlier output is read from what that output replaced
        (``taxopost.io.predictions.steps``). None: every row as it stands.
    replaces : ndarray of shape (n_rows,), bool, or None
        Per row, whether it was read that way, so a write replaces (or undoes) that output.
    """

    format: str
    path: Path
    document: dict
    class_keys: tuple[str, ...]
    labels: tuple[str, ...]
    taxonomy: Taxonomy | None
    class_taxa: np.ndarray | None
    scores: SparseRows
    classified: np.ndarray
    n_detections: int
    detections: list[dict] | None
    path_of: Callable[[int], str]
    images: list[dict] | None
    extra: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    replaces: np.ndarray | None = None

    def category_map(self, taxonomy: Taxonomy | None = None, *, on_unresolved: str = "exclude") -> CategoryMap:
        """The file's label space over its own taxonomy, or resolved against ``taxonomy``.

        Classes with no taxon (blank, vehicle, an empty lineage) are excluded: never a
        prediction, adding to no aggregate.
        """
        if taxonomy is None:
            if self.taxonomy is None:
                raise InputError(
                    "--taxonomy", None, f"this {self.format} file carries no taxonomy: give one", source=str(self.path)
                )
            try:
                return CategoryMap.from_taxa(self.labels, self.class_taxa, self.taxonomy)
            except InputError as exc:
                raise exc.with_source(str(self.path)) from None
        labels = list(self.labels)
        for i, key in enumerate(self.extra.get("gbif_keys") or ()):  # Antenna: a GBIF key first, then the name
            if key and find_gbif_key(taxonomy, key) != NO_TAXON:
                labels[i] = key
        try:
            return CategoryMap(labels, taxonomy, on_unresolved=on_unresolved)
        except InputError as exc:
            raise exc.with_source(str(self.path)) from None

    def where(self, row: int) -> str:
        """The JSON path of the detection of row ``row`` of :attr:`scores`."""
        return self.path_of(int(self.classified[row]))

    def locate(self, exc: InputError) -> InputError:
        """An error about a row of :attr:`scores` (its ``row`` set) told by file and JSON path."""
        if exc.row is None:
            return exc.with_source(str(self.path))
        return InputError(f"{self.where(exc.row)}: {exc.field}", exc.value, exc.reason, source=str(self.path))


#: What Windows tools put before the text of a UTF-8 file (JSON Lines are read past it too).
UTF8_BOM = b"\xef\xbb\xbf"


def read_bytes(path: Path) -> bytes:
    """The file's bytes, past a UTF-8 byte order mark (which no JSON parser takes)."""
    check_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError("file", str(path), f"cannot be read ({exc.strerror or exc})") from None
    return data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data


def decode(path: Path, data: bytes | msgspec.Raw | None = None, type: Any = Any, *, where: str = "") -> Any:
    """Parse JSON with msgspec (as fast as orjson and leaner: benchmarks/formats.py).

    ``where``: the JSON path of ``data`` in the file (``images[3]``), for a number too large for a float
    (msgspec refuses an integer of more than 4300 digits the same way).
    """
    data = read_bytes(path) if data is None else data
    try:
        return msgspec.json.decode(data, type=type)
    except msgspec.ValidationError as exc:
        if str(exc).startswith(("Number out of range", "Integer value out of range")):
            raise _out_of_range(path, data, where) from None
        raise InputError("file", str(path), f"unexpected JSON ({exc})") from None
    except msgspec.DecodeError as exc:
        raise not_valid_json(path, data if isinstance(data, bytes) else None, exc) from None
    except RecursionError:
        raise InputError("file", str(path), TOO_DEEP) from None


def not_valid_json(path: Path, data: bytes | None, exc: msgspec.DecodeError) -> InputError:
    """msgspec's error, with the line, column and text where it stopped when ``data`` is the whole
    file (msgspec counts bytes: "invalid character (byte 1192)" says little about a NaN or 1e400)."""
    found = re.search(r"\(byte (\d+)\)", str(exc))
    if data is None or found is None or int(found.group(1)) > len(data):
        return InputError("file", str(path), f"is not valid JSON ({exc})")
    offset = int(found.group(1))
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    text = data[offset : offset + 24].split(b"\n", 1)[0].decode("utf-8", "replace")
    reason = f"is not valid JSON ({exc}: at line {line}, column {column}: {text!r})"
    return InputError("file", str(path), reason, source=f"{path}:{line}:{column}")


def _out_of_range(path: Path, data: bytes | msgspec.Raw, where: str) -> InputError:
    """The first number too large for a float (an integer too, however many digits), at its JSON path and
    as the file spells it (msgspec elides the keys of its path).

    Found by parsing again with the standard library, keeping such numbers' text: on the error path only.
    """
    import json

    class Huge(str):
        """A number's text, where it would be read as infinity."""

    def first(value: Any, at: str) -> tuple[str, str] | None:
        if isinstance(value, Huge):
            return at, value
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            found = first(item, f"{at}.{key}" if isinstance(key, str) else f"{at}[{key}]")
            if found is not None:
                return found
        return None

    def number(text: str) -> object:
        return Huge(text) if math.isinf(float(text)) else 0

    try:
        parsed = json.loads(bytes(data), parse_float=number, parse_int=number)
        found = first(parsed, where)
    except (ValueError, RecursionError):
        found = None
    if found is None:
        return InputError("file", str(path), f"holds {TOO_LARGE}")
    at, text = found
    text = str(text) if len(text) <= 60 else text[:57] + "..."  # as short() cuts a repr, without its quotes
    return InputError(at.lstrip(".") or "value", text, TOO_LARGE, source=str(path))


def encode(document: Any) -> bytes:
    """The document as JSON (indented like the tools that write these files: one key per line)."""
    return msgspec.json.format(msgspec.json.encode(document), indent=1)


def require(mapping: object, key: str, kind: type | tuple[type, ...], where: str, source: Path) -> Any:
    """``mapping[key]``, which must exist and be of ``kind``; else an error naming the JSON path."""
    if not isinstance(mapping, dict):
        raise InputError(where, short(mapping), "must be a JSON object", source=str(source))
    if key not in mapping:
        raise InputError(f"{where}.{key}" if where else key, None, "is missing", source=str(source))
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InputError(
            f"{where}.{key}" if where else key, short(value), f"must be a JSON {names}", source=str(source)
        )
    return value


def check_once(first: dict[str, str], name: str, entry: str, key: str, why: str, source: Path) -> None:
    """Refuse an entry whose ``key`` repeats an earlier entry's; ``first`` maps each name to its first entry."""
    earlier = first.setdefault(name, entry)
    if earlier != entry:
        raise InputError(f"{entry}.{key}", short(name), f"repeats {earlier}: {why}", source=str(source))


def check_box(det: dict, where: str, source: Path) -> None:
    """A detection's ``bbox`` (4 finite numbers, if given) and ``conf`` (a number in [0, 1], if given)."""
    box = det.get("bbox")
    if box is not None:
        numbers = isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)
        if numbers:  # an integer no float holds is named on its own, before isfinite would overflow on it
            check_float(box, lambda k: f"{where}.bbox[{k}]", source)
        if not (numbers and all(math.isfinite(v) for v in box)):
            raise InputError(f"{where}.bbox", short(box), "a box must be 4 finite numbers", source=str(source))
    if "conf" in det and not (_is_number(det["conf"]) and 0 <= det["conf"] <= 1):
        raise InputError(
            f"{where}.conf", short(det["conf"]), "a confidence must be a number in [0, 1]", source=str(source)
        )


def lineage_taxonomy(lineages: Sequence[tuple[str, dict[str, str]]], source: Path) -> tuple[Taxonomy, np.ndarray]:
    """A taxonomy from one lineage per class, and each class's taxon (its finest named rank).

    ``lineages`` holds ``(json_path, {rank: name})`` per class, coarse to fine; empty names are
    skipped ranks and a class naming no rank has no taxon. A name must keep one rank and one
    parent across the file and appear once in a lineage; otherwise the error names both places.
    """
    seen: dict[str, tuple[str, str | None, str]] = {}
    class_taxa = np.full(len(lineages), NO_TAXON, dtype=np.int32)
    leaves: list[str | None] = []
    for where, ranks in lineages:
        parent: str | None = None
        chain: list[str] = []
        for rank, name in ranks.items():
            if not name:
                continue
            if name in chain:
                raise InputError(
                    where, name, f"appears twice in one lineage ({' > '.join(chain)} > {name})", source=str(source)
                )
            known = seen.get(name)
            if known is None:
                seen[name] = (rank, parent, where)
            elif known[0] != rank:
                raise InputError(where, name, f"is a {rank} here but a {known[0]} in {known[2]}", source=str(source))
            elif known[1] != parent:
                raise InputError(
                    where, name, f"has parent {parent!r} here but {known[1]!r} in {known[2]}", source=str(source)
                )
            chain.append(name)
            parent = name
        leaves.append(parent)
    try:
        taxonomy = Taxonomy(TaxonRecord(name=n, rank=r, parent=p, source=w) for n, (r, p, w) in seen.items())
    except InputError as exc:
        raise exc.with_source(str(source)) from None
    for i, leaf in enumerate(leaves):
        if leaf is not None:
            class_taxa[i] = taxonomy.index(leaf)
    return taxonomy, class_taxa


def speciesnet_lineage(label: str) -> dict[str, str] | None:
    """``{rank: name}`` of a SpeciesNet label, species as a binomial; None if it is not one."""
    parts = label.split(";")
    if len(parts) != 7 or (parts[0] and not _GUID.fullmatch(parts[0])):
        return None
    ranks = dict(zip(SPECIESNET_RANKS, (p.strip() for p in parts[1:6]), strict=True))
    if ranks["species"]:
        ranks["species"] = f"{ranks['genus']} {ranks['species']}".strip()
    return ranks


def speciesnet_label(taxonomy: Taxonomy, taxon: int, known: dict[int, str]) -> str:
    """The SpeciesNet label of ``taxon``: a class's own label, else built from its lineage with no guid."""
    if taxon in known:
        return known[taxon]
    fields = dict.fromkeys(SPECIESNET_RANKS, "")
    for t in taxonomy.lineage(taxon):
        rank = taxonomy.rank_of(t)
        if rank in fields:
            fields[rank] = taxonomy.names[t]
    if fields["species"] and fields["genus"] and fields["species"].startswith(fields["genus"] + " "):
        fields["species"] = fields["species"][len(fields["genus"]) + 1 :]
    common = taxonomy.names[taxon]
    return ";".join(["", *fields.values(), common])


def check_pairs(
    indices: np.ndarray,
    values: np.ndarray,
    indptr: np.ndarray,
    n_classes: int,
    pair_path: Callable[[int], str],
    value_at: Callable[[int], tuple[object, object]],
    source: Path,
    categories: str,
) -> SparseRows:
    """Top-k pairs checked in bulk: known classes (``-1`` marks an unknown id), scores in [0, 1],
    sorted by descending score, no class twice in one row.

    ``pair_path(p)`` names pair ``p`` (flat) in the document, ``value_at(p)`` gives its id and score
    as the file spelled them (only a message needs them).
    """
    bad = np.flatnonzero(indices < 0)
    if bad.size:
        p = int(bad[0])
        raise InputError(pair_path(p), value_at(p)[0], f"no such category in {categories}", source=str(source))
    outside = np.flatnonzero(~((values >= 0) & (values <= 1)))
    if outside.size:
        p = int(outside[0])
        raise InputError(pair_path(p), value_at(p)[1], "a confidence must be in [0, 1]", source=str(source))
    ptr = np.asarray(indptr, dtype=np.int64)
    rising = np.flatnonzero(np.diff(values) > 0)
    if rising.size:
        starts = np.zeros(values.size, dtype=bool)
        starts[ptr[:-1][ptr[:-1] < values.size]] = True
        within = rising[~starts[rising + 1]]
        if within.size:
            p = int(within[0]) + 1
            raise InputError(
                pair_path(p), value_at(p)[1],
                f"pairs must be sorted by descending confidence (after {value_at(p - 1)[1]})", source=str(source),
            )  # fmt: skip
    from_rows = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    keys = from_rows * np.int64(n_classes) + indices
    order = np.argsort(keys, kind="stable")
    twice = np.flatnonzero(np.diff(keys[order]) == 0)
    if twice.size:
        p = int(order[twice[0] + 1])
        raise InputError(pair_path(p), value_at(p)[0], "a category appears twice in one detection", source=str(source))
    return SparseRows(ptr, indices.astype(np.int32), values.astype(np.float32), n_classes)


def confidences(values: list, pair_path: Callable[[int], str], source: Path) -> np.ndarray:
    """Scores as float64, a non-number named by its JSON path.

    Each value is checked for a JSON number: numpy alone turns ``null`` into NaN, ``true`` into 1
    and ``"0.5"`` into 0.5.
    """
    p = next((i for i, v in enumerate(values) if type(v) not in _NUMBERS), None)
    if p is not None:
        raise InputError(pair_path(p), short(values[p]), "a confidence must be a number", source=str(source))
    try:
        return np.array(values, dtype=np.float64).reshape(len(values))
    except OverflowError:  # an integer of hundreds of digits: found only on this path
        check_float(values, pair_path, source)
        raise


def check_float(numbers: Sequence[int | float], path: Callable[[int], str], source: Path) -> None:
    """Refuse the first integer a float cannot hold (JSON has no limit: 1 followed by 400 zeros),
    named by ``path(position)``; each value is already known to be a number."""
    for k, value in enumerate(numbers):
        if value.__class__ is int and value.bit_length() > 1000:
            try:
                float(value)
            except OverflowError:
                raise InputError(path(k), short(value), TOO_LARGE, source=str(source)) from None


def parse_ranks(text: str, field: str) -> tuple[str, ...]:
    """A comma-separated rank list (``kingdom,phylum,class,...``), coarse to fine."""
    ranks = tuple(parse_rank(part.strip(), field=field) for part in text.split(",") if part.strip())
    if not ranks:
        raise InputError(field, text, "give the lineage's ranks, coarse to fine, comma-separated")
    for before, rank in pairwise(ranks):
        if rank == before:
            raise InputError(field, text, f"names {rank} twice: each rank of the lineage once, coarse to fine")
        if RANK_CODE[rank] < RANK_CODE[before]:
            raise InputError(field, text, f"{rank} is coarser than {before} before it: list the ranks coarse to fine")
    return ranks


_NUMBERS = frozenset({int, float})  # what a JSON number decodes to (bool is not one)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def short(value: object) -> object:
    """A value as a message quotes it: itself, or its repr cut to 60 characters."""
    text = repr(value)
    return value if len(text) <= 60 else text[:57] + "..."
