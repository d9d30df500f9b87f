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
    changed: int = 0
    superseded: int = 0  # sources another job demoted before this one could write
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
        for change in counted:
            self.transitions[f"{change.from_rank} -> {change.to_rank}"] += 1
            self.to_taxa[change.to_name] += 1

    def merge(self, other: Summary) -> None:
        """Add another chunk's counts."""
        self.examined += other.examined
        self.changed += other.changed
        self.superseded += other.superseded
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
            "superseded": self.superseded,
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
            superseded=data.get("superseded", 0),
            skipped=Counter(data.get("skipped", {})),
            transitions=Counter(data.get("transitions", {})),
            to_taxa=Counter(data.get("to_taxa", {})),
            determinations_changed=data.get("determinations_changed", 0),
            sample=list(data.get("sample", [])),
        )


def _order(source_id: int | None, detection_id: int) -> tuple[bool, int]:
    """Sample order: changes of classifications by source id, then those of bare detections."""
    return (source_id is None, detection_id if source_id is None else source_id)
