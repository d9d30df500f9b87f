"""What every import reports, and the project records go to when they name none."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The project of records (and identification files) that name none.
DEFAULT_PROJECT = "default"


@dataclass
class ImportSummary:
    """Records read and rows created, by kind; printed by the CLI after an import."""

    records: int = 0
    created: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int) -> None:
        self.created[kind] = self.created.get(kind, 0) + n

    def __str__(self) -> str:
        made = ", ".join(f"{n} {kind}" for kind, n in self.created.items() if n) or "nothing new"
        return f"{self.records} records: {made}"
