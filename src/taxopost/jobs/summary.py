"""What a run counts: per chunk, stored with the chunk, and merged into the job's metrics.

A chunk's :class:`Summary` is saved as JSON in the transaction that writes the chunk, so the
job's metrics are the merge of its finished chunks in plan order, whichever worker ran them
and however often the job was interrupted: the same numbers as one uninterrupted run.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

SAMPLE_SIZE = 20
TOP_TAXA = 20


class CountedChange(Protocol):
    """What a summary reads of one change a task made (the task framework's ``Change``)."""

    source_id: int | None
    detection_id: int
    occurrence_id: int | None
    from_name: str
    from_rank: str
    to_name: str
    to_rank: str

    @property
    def score(self) -> float: ...


@dataclass
class Summary:
    """Counts a run reports (the job's metrics) and, for previews, a sample of rows."""

    examined: int = 0
    changed: int = 0  # classifications written
    restored: int = 0  # sources current again: their earlier output replaced, the new config left them
    superseded: int = 0  # sources another job demoted before this one could write
    replaced: Counter = field(default_factory=Counter)  # earlier outputs of the task, by "job:algorithm"
    replaced_later: Counter = field(default_factory=Counter)  # outputs of later tasks built on them, likewise
    skipped: Counter = field(default_factory=Counter)
    transitions: Counter = field(default_factory=Counter)
    to_taxa: Counter = field(default_factory=Counter)
    determinations_changed: int = 0
    sample: list[dict] = field(default_factory=list)

    def add(
        self,
        changes: Sequence[CountedChange],
        written: int,
        *,
        examined: int,
        skipped: Mapping[str, int],
        dry_run: bool,
    ) -> None:
        """Count one chunk's ``changes``, of which the first ``written`` were written."""
        self.examined += examined
        self.skipped.update(skipped)
        first = heapq.nsmallest(SAMPLE_SIZE, changes, key=lambda c: _order(c.source_id, c.detection_id))
        self._add_sample(
            {
                "classification": change.source_id,
                "detection": change.detection_id,
                "occurrence": change.occurrence_id,
                "from": change.from_name,
                "from_rank": change.from_rank,
                "to": change.to_name,
                "to_rank": change.to_rank,
                "score": round(float(change.score), 6),
            }
            for change in first
        )
        counted = changes if dry_run else changes[:written]
        self.changed += len(counted)
        self._count(counted)

    def add_restored(self, restores: Sequence[CountedChange]) -> None:
        """Count sources that are the current answer again (from the replaced answer to the source)."""
        self.restored += len(restores)
        self._count(restores)

    def add_replaced(self, earlier: Iterable[tuple[int | None, int]], later: Iterable[tuple[int | None, int]]) -> None:
        """Count replaced outputs by (job, algorithm): the task's ``earlier`` ones, and those ``later`` on them."""
        self.replaced.update(_key(*pair) for pair in earlier)
        self.replaced_later.update(_key(*pair) for pair in later)

    def _count(self, changes: Iterable[CountedChange]) -> None:
        for change in changes:
            self.transitions[f"{change.from_rank} -> {change.to_rank}"] += 1
            self.to_taxa[change.to_name] += 1

    def merge(self, other: Summary) -> None:
        """Add another chunk's counts."""
        self.examined += other.examined
        self.changed += other.changed
        self.restored += other.restored
        self.superseded += other.superseded
        self.replaced.update(other.replaced)
        self.replaced_later.update(other.replaced_later)
        self.skipped.update(other.skipped)
        self.transitions.update(other.transitions)
        self.to_taxa.update(other.to_taxa)
        self.determinations_changed += other.determinations_changed
        self._add_sample(other.sample)

    def _add_sample(self, rows: Iterable[dict]) -> None:
        """The sample is the changes of the lowest source ids (then of detections without a
        classification, by id): the same however the run was cut."""
        rows = [*self.sample, *rows]
        self.sample = heapq.nsmallest(
            SAMPLE_SIZE, rows, key=lambda row: _order(row["classification"], row.get("detection", 0))
        )

    def as_metrics(self) -> dict:
        """The job's metrics: totals, the transitions by count, the most frequent target taxa."""
        return {
            "examined": self.examined,
            "changed": self.changed,
            "restored": self.restored,
            "superseded": self.superseded,
            "replaced": dict(sorted(self.replaced.items())),
            "replaced_later": dict(sorted(self.replaced_later.items())),
            "skipped": dict(self.skipped),
            "transitions": dict(self.transitions.most_common()),
            "to_taxa": dict(self.to_taxa.most_common(TOP_TAXA)),
            "determinations_changed": self.determinations_changed,
        }

    def to_json(self) -> dict:
        """Everything, to store with a chunk (its ``to_taxa`` in full: the top ones need all chunks)."""
        return {**self.as_metrics(), "to_taxa": dict(self.to_taxa), "sample": self.sample}

    @classmethod
    def from_json(cls, data: dict) -> Summary:
        return cls(
            examined=data.get("examined", 0),
            changed=data.get("changed", 0),
            restored=data.get("restored", 0),
            superseded=data.get("superseded", 0),
            replaced=Counter(data.get("replaced", {})),
            replaced_later=Counter(data.get("replaced_later", {})),
            skipped=Counter(data.get("skipped", {})),
            transitions=Counter(data.get("transitions", {})),
            to_taxa=Counter(data.get("to_taxa", {})),
            determinations_changed=data.get("determinations_changed", 0),
            sample=list(data.get("sample", [])),
        )


def _order(source_id: int | None, detection_id: int) -> tuple[bool, int]:
    """Sample order: changes of classifications by source id, then those of bare detections."""
    return (source_id is None, detection_id if source_id is None else source_id)


def _key(job_id: int | None, algorithm_id: int) -> str:
    """A replaced output's job and algorithm as one JSON key: ``"5:12"`` (``"-:12"`` without a job)."""
    return f"{'-' if job_id is None else job_id}:{algorithm_id}"


def split_key(key: str) -> tuple[int | None, int]:
    """The (job, algorithm) of a key of ``replaced`` or ``replaced_later``."""
    job, _, algorithm = key.partition(":")
    return (None if job == "-" else int(job)), int(algorithm)
