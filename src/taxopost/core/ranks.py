"""The rank vocabulary: names, their coarse-to-fine order, and iNaturalist's rank levels.

The ranks a survey names (kingdom ... species) are a subset of this list; the intermediate ranks exist
so that real taxonomies (iNaturalist's subphylum, CIFAR-100's superclass) load without loss.
A rank's *code* is its position in :data:`RANKS`: a larger code is a finer rank.
"""

from __future__ import annotations

from collections.abc import Iterable

from taxopost.errors import InputError, InputErrors

#: Every known rank, coarse to fine, with its iNaturalist ``rank_level``.
RANK_LEVELS: dict[str, float] = {
    "kingdom": 70,
    "subkingdom": 67,
    "phylum": 60,
    "subphylum": 57,
    "superclass": 53,
    "class": 50,
    "subclass": 47,
    "infraclass": 45,
    "subterclass": 44,
    "superorder": 43,
    "order": 40,
    "suborder": 37,
    "infraorder": 35,
    "parvorder": 34.5,
    "zoosection": 34,
    "zoosubsection": 33.5,
    "superfamily": 33,
    "epifamily": 32,
    "family": 30,
    "subfamily": 27,
    "supertribe": 26,
    "tribe": 25,
    "subtribe": 24,
    "genus": 20,
    "subgenus": 15,
    "section": 13,
    "subsection": 12,
    "complex": 11,
    "species": 10,
    "subspecies": 5,
    "variety": 4,
    "form": 3,
}
RANKS: tuple[str, ...] = tuple(RANK_LEVELS)
RANK_CODE: dict[str, int] = {name: code for code, name in enumerate(RANKS)}
#: The rank of the "Not identifiable" label written by the small-size filter; outside the order.
UNKNOWN = "unknown"
_LEVEL_TO_RANK: dict[float, str] = {level: name for name, level in reversed(RANK_LEVELS.items())}
# iNaturalist gives every infraspecific rank level 5; its files read them as subspecies.


def parse_rank(value: object, *, field: str = "rank") -> str:
    """Return the canonical (lower-case) rank name, or raise naming ``field`` and the value."""
    name = str(value).strip().lower() if value is not None else ""
    if name not in RANK_CODE:
        raise InputError(field, value, f"unknown rank; known ranks are {', '.join(RANKS)}")
    return name


def rank_code(name: str) -> int:
    """Position of a canonical rank name in :data:`RANKS` (larger is finer)."""
    return RANK_CODE[name]


def rank_from_level(level: float, *, field: str = "rank_level") -> str:
    """Map an iNaturalist ``rank_level`` (10 = species, 20 = genus, ...) to a rank name."""
    try:
        return _LEVEL_TO_RANK[float(level)]
    except (KeyError, TypeError, ValueError):
        known = ", ".join(f"{lvl:g}={name}" for name, lvl in RANK_LEVELS.items())
        raise InputError(field, level, f"unknown iNaturalist rank level; known: {known}") from None


def sort_fine_to_coarse(ranks: Iterable[str]) -> list[str]:
    """Sort canonical rank names from finest to coarsest."""
    return sorted(ranks, key=rank_code, reverse=True)


def check_rollup_order(order: Iterable[object], *, field: str = "order") -> list[str]:
    """Validate a roll-up order: known ranks, no repeats, strictly fine to coarse."""
    names = [parse_rank(rank, field=field) for rank in order]
    if not names:
        raise InputError(field, [], "the roll-up order needs at least one rank")
    if len(set(names)) != len(names):
        raise InputError(field, names, "a rank appears more than once")
    if names != sort_fine_to_coarse(names):
        raise InputError(field, names, f"ranks must go from fine to coarse, e.g. {sort_fine_to_coarse(names)}")
    return names


def check_thresholds(thresholds: dict[object, object], *, field: str = "thresholds") -> dict[str, float]:
    """Validate per-rank thresholds: known ranks mapped to numbers in (0, 1]."""
    if not thresholds:
        raise InputError(field, thresholds, "give at least one rank threshold, e.g. species=0.8")
    checked: dict[str, float] = {}
    problems: list[InputError] = []  # every bad rank at once, so that one correction fixes them all
    for rank, value in thresholds.items():
        try:
            name = parse_rank(rank, field=f"{field}.{rank}")
        except InputError as exc:
            problems.append(exc)
            continue
        try:
            if isinstance(value, bool):  # float(True) is 1.0: a yes is no threshold
                raise TypeError
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            problems.append(InputError(f"{field}.{name}", value, "must be a number in (0, 1]"))
            continue
        if not (0.0 < number <= 1.0):
            problems.append(InputError(f"{field}.{name}", value, "must be in (0, 1]"))
        checked[name] = number
    if problems:
        raise problems[0] if len(problems) == 1 else InputErrors(problems)
    return checked
