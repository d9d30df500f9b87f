"""``taxopost demo`` (the main job) and ``taxopost example`` (the core on small files)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rich.table import Table
from rich.text import Text

from taxopost.cli.app import app
from taxopost.cli.output import command_name, err, out, progress_bar, warn

RANK_ORDER = ("species", "genus", "family", "order", "unknown")


@app.command()
def demo() -> None:
    """Build the demo moth survey on the embedded database and run masking, roll-up and size filter as jobs."""
    from taxopost.django_setup import setup

    setup()
    from django.conf import settings

    from taxopost import demo as demo_project
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor

    started = time.perf_counter()
    with progress_bar("demo", total=None) as bar:
        built = demo_project.ensure_demo_project(Path(settings.DATA_DIR) / "demo", bar)

        def executor(label: str) -> EmbeddedExecutor:
            def on_progress(stage: str, done: int, total: int) -> None:
                bar.update(completed=done, total=total or None, description=f"job: {label} ({stage})")

            return EmbeddedExecutor(on_progress=on_progress)

        jobs = demo_project.run_demo_pipeline(executor)
    summary = demo_project.demo_summary()
    report = demo_project.ensure_demo_evaluation(Path(settings.DATA_DIR) / "demo" / "evaluation")
    elapsed = time.perf_counter() - started

    runs = Table(title="Post-processing jobs" + ("" if built else " (from an earlier run: nothing left to do)"))
    for column in ("job", "task", "capture set", "status", "examined", "changed"):
        runs.add_column(column, justify="right" if column in ("examined", "changed") else "left")
    from taxopost.observations.models import CaptureSet

    names = dict(CaptureSet.objects.values_list("id", "name"))
    for job in jobs:
        metrics = job.metrics or {}
        runs.add_row(
            str(job.pk), job.task, names.get(job.scope_id, "?"), job.status,
            f"{metrics.get('examined', 0):,}", f"{metrics.get('changed', 0):,}",
        )  # fmt: skip
    out.print(runs)
    for job in jobs:  # e.g. a taxa list that keeps few classes (the demo's keeps 85% of them)
        for warning in (job.result or {}).get("warnings", []):
            warn(f"job {job.pk}: {warning['message']}")

    ranks = Table(title=f"Predictions of {summary.occurrences:,} occurrences by rank")
    for column in ("rank", "model output", "after post-processing"):
        ranks.add_column(column, justify="right" if column != "rank" else "left")
    present = [r for r in RANK_ORDER if r in summary.ranks_before or r in summary.ranks_after]
    for rank in present:
        label = "Not identifiable" if rank == "unknown" else rank
        ranks.add_row(label, f"{summary.ranks_before.get(rank, 0):,}", f"{summary.ranks_after.get(rank, 0):,}")
    out.print(ranks)

    n = summary.identified
    out.print(
        f"Against {n:,} expert identifications: correct (the true taxon or an ancestor) "
        f"{summary.correct_before / n:.1%} before, {summary.correct_after / n:.1%} after; "
        f"{summary.corrected} corrected, {summary.regressed} regressed. "
        f"{summary.changed:,} occurrences changed prediction."
    )
    out.print(f"Evaluation of the pipelines on {demo_project.CAPTURE_SETS[0]} (metrics and figures): {report}")
    out.print(_side_by_side(summary, report, demo_project.CAPTURE_SETS[0]))
    out.print(
        "They differ in what they count: an occurrence's determination is the best of its detections' "
        "classifications, so it is right more often than a detection on its own; and the report covers one "
        "capture set, the headline both."
    )
    out.print(f"Done in {elapsed:.1f} s. Database: {settings.DATABASES['default']['NAME']}")
    me = _database_prefix() + command_name()
    out.print(
        f"Next: `{me} jobs list`, `{me} jobs show ID`, "
        f"`{me} export occurrences --capture-set '{demo_project.CAPTURE_SETS[0]}' --output occurrences.csv`.",
        markup=False,
    )
    out.print(
        f"Web: run `{me} serve`, open http://127.0.0.1:8000/admin/ and log in as "
        f"{demo_project.DEMO_USER} / {demo_project.DEMO_PASSWORD} (a superuser of the demo database).",
        markup=False,
    )
    err.print(f"Run `{me} demo` again: it reuses what exists and finishes fast.", markup=False)


def _database_prefix() -> str:
    """``DATABASE_URL=... `` when one is set, so the hints reach the same database (its password hidden)."""
    import shlex

    url = os.environ.get("DATABASE_URL")
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:****@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        url = urlunsplit(parts._replace(netloc=netloc))
    return f"DATABASE_URL={shlex.quote(url)} "


def _side_by_side(summary, report: Path, capture_set: str) -> Table:
    """The headline's figures and the report's, and why they differ: unit, scope and pipeline."""
    metrics = json.loads((report.parent / "metrics.json").read_text(encoding="utf-8"))
    pipelines = metrics["pipelines"]
    model = next(p for p in pipelines if not p["steps"])
    best = max((p for p in pipelines if p["steps"]), key=lambda p: p["accuracy"])
    n = summary.identified
    table = Table(title="Two measures of the same survey, side by side", title_justify="left")
    for column in ("", "headline (above)", "evaluation report"):
        table.add_column(column)
    table.add_row("counts", "occurrences (one individual each)", "detections (one classified crop each)")
    table.add_row("scope", "both capture sets", capture_set)
    table.add_row("with an expert identification", f"{n:,} occurrences", f"{metrics['n_rows']:,} detections")
    table.add_row("correct, model output", f"{summary.correct_before / n:.1%}", f"{model['accuracy']:.1%}")
    table.add_row(
        "correct, after post-processing",
        f"{summary.correct_after / n:.1%} (the jobs above)",
        f"{best['accuracy']:.1%} ({best['name']}, the best pipeline)",
    )
    return table


def example_path(name: str) -> Path:
    """A file of the example bundled with the package (taxonomy, category map, scores, taxa list)."""
    from importlib import resources

    return Path(str(resources.files("taxopost") / "examples" / name))


@app.command()
def example() -> None:
    """Roll up and mask the small bundled example on files (no database) and print what changed."""
    from taxopost.core.masking import class_masking
    from taxopost.core.rollup import rank_rollup
    from taxopost.io import read_category_map, read_matrix, read_taxa_list, read_taxonomy
    from taxopost.tasks.rank_rollup import RankRollupConfig

    taxonomy = read_taxonomy(example_path("taxonomy.csv"))
    category_map = read_category_map(example_path("category_map.json"), taxonomy)
    scores = read_matrix(example_path("scores.csv"))
    taxa_list = read_taxa_list(example_path("taxa_list.txt"), taxonomy)
    config = RankRollupConfig()
    rollups = {
        mode: rank_rollup(scores, category_map, thresholds=config.thresholds, order=config.order, mode=mode)
        for mode in ("lineage", "distribution")
    }
    keep = category_map.admitted_by(taxa_list.taxa)
    masked = class_masking(scores, category_map, keep)
    then_rolled = rank_rollup(masked.scores, category_map, thresholds=config.thresholds, order=config.order)
    names = taxonomy.names

    def cell(taxon: int, score: float, changed: bool = True) -> Text:
        return Text(f"{names[taxon]} ({taxonomy.rank_of(taxon)}) {score:.2f}") if changed else Text("unchanged", "dim")

    thresholds = ", ".join(f"{rank} {value:g}" for rank, value in config.thresholds.items())
    table = Table(title=f"Rank roll-up (thresholds: {thresholds}) and class masking", show_lines=True)
    for column in ("row", "model prediction", "lineage roll-up", "distribution roll-up", "masked, then rolled up"):
        table.add_column(column)
    lineage, distribution = rollups["lineage"], rollups["distribution"]
    for i in range(len(lineage)):
        masked_taxon = int(category_map.class_taxa[masked.winner[i]])
        after = cell(
            int(then_rolled.taxon[i]), float(then_rolled.score[i]), bool(masked.changed[i] or then_rolled.changed[i])
        )
        if masked.changed[i] and masked_taxon != lineage.source_taxon[i]:
            after = f"masked to {names[masked_taxon]}; {after}"
        table.add_row(
            str(i),
            cell(int(lineage.source_taxon[i]), float(lineage.source_score[i])),
            cell(int(lineage.taxon[i]), float(lineage.score[i]), bool(lineage.changed[i])),
            cell(int(distribution.taxon[i]), float(distribution.score[i]), bool(distribution.changed[i])),
            after,
        )
    out.print(table)
    out.print(f"Taxa list keeps {int(keep.sum())} of {category_map.n_classes} classes. Files: {example_path('')}")
