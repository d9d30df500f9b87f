"""What ``taxopost demo`` tells a new user: the next commands reach the same database, and why two accuracies differ."""

from __future__ import annotations

import json

from rich.console import Console

from taxopost.cli.demo import _database_prefix, _side_by_side
from taxopost.demo import DemoSummary


def test_the_hints_carry_database_url(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert _database_prefix() == ""
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taxopost_demo")
    assert _database_prefix() == "DATABASE_URL=postgres://postgres@127.0.0.1:5432/taxopost_demo "
    monkeypatch.setenv("DATABASE_URL", "postgres://me:s3cret@db.lab:5433/survey")
    assert _database_prefix() == "DATABASE_URL='postgres://me:****@db.lab:5433/survey' "  # never the password


def test_the_headline_and_the_report_are_explained_side_by_side(tmp_path):
    metrics = {
        "n_rows": 1521,
        "pipelines": [
            {"name": "model output", "steps": [], "accuracy": 0.6437},
            {"name": "roll-up (lineage)", "steps": [{"task": "rank_rollup"}], "accuracy": 0.714},
            {"name": "checklist + roll-up", "steps": [{"task": "class_masking"}, {}], "accuracy": 0.7272},
        ],
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    summary = DemoSummary(
        occurrences=16040, ranks_before={}, ranks_after={}, identified=2406, correct_before=1778,
        correct_after=1973, corrected=262, regressed=65, changed=5833,
    )  # fmt: skip
    console = Console(width=200, record=True)
    console.print(_side_by_side(summary, tmp_path / "report.html", "Station 1 · July 2024"))
    text = console.export_text()
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]] for line in text.splitlines()
            if line.startswith("│")}  # fmt: skip
    assert rows["counts"] == ["occurrences (one individual each)", "detections (one classified crop each)"]
    assert rows["scope"] == ["both capture sets", "Station 1 · July 2024"]
    assert rows["with an expert identification"] == ["2,406 occurrences", "1,521 detections"]
    assert rows["correct, model output"] == ["73.9%", "64.4%"]
    assert rows["correct, after post-processing"] == [
        "82.0% (the jobs above)",
        "72.7% (checklist + roll-up, the best pipeline)",
    ]
