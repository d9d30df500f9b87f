"""Evaluating pipelines with a threshold sweep on the AMI label space (100,000 rows x 2,497 classes).

Five pipelines (baseline, lineage and distribution roll-up at the default thresholds, a stricter
lineage roll-up, and a mask keeping every other family, a deliberately poor regional list,
followed by a lineage roll-up), each roll-up with a 100-threshold risk-coverage sweep at every
rank, on simulated outputs over the real AMI label space. The sweep reuses one aggregation pass
per (input, order, mode) and turns every threshold into a comparison. Printed, all measured in this run:

- the median time of the whole evaluation (pipelines, metrics and sweeps);
- the sweep alone, three ways: vectorised (one sort per rank), ``apply_thresholds`` once per
  threshold, and a full ``rank_rollup`` per threshold (the naive way: timed on a few
  thresholds and extrapolated to all of them, as the output says);
- the ratio of the naive evaluation (pipelines + one roll-up per threshold) to ours.

    .venv/bin/python benchmarks/evaluation_sweep.py [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ami_category_map, median_seconds
from taxopost.core.masking import class_masking
from taxopost.core.rollup import DEFAULT_THRESHOLDS, apply_thresholds, rank_rollup, rollup_candidates
from taxopost.core.simulate import simulate_outputs
from taxopost.evaluation import evaluate_pipelines, parse_pipelines, risk_coverage_curves
from taxopost.evaluation.sweep import DEFAULT_GRID

STRICT = {"species": 0.9, "genus": 0.7, "family": 0.5}


def pipelines_for(category_map, folder: Path):
    taxonomy = category_map.taxonomy
    families = sorted({taxonomy.names[t] for t in taxonomy.ancestor_at("family")[category_map.class_taxa]})
    (folder / "regional.txt").write_text("\n".join(families[::2]) + "\n")  # every other family
    return parse_pipelines(
        [
            {"name": "baseline", "steps": []},
            {"name": "lineage", "steps": [{"task": "rank_rollup", "mode": "lineage"}]},
            {"name": "distribution", "steps": [{"task": "rank_rollup", "mode": "distribution"}]},
            {"name": "lineage strict", "steps": [{"task": "rank_rollup", "thresholds": STRICT}]},
            {
                "name": "regional + lineage",
                "steps": [{"task": "class_masking", "taxa_list": "regional.txt"}, {"task": "rank_rollup"}],
            },
        ],
        category_map,
        base_dir=folder,
    )


def naive_threshold(values, category_map, truth, thresholds, mode, rank_index, normalized=True):
    """Evaluate one threshold the straightforward way: a full roll-up, then risk and coverage at one rank."""
    result = rank_rollup(values, category_map, thresholds=thresholds, mode=mode, normalized=normalized)
    accepted = result.accepted_rank == rank_index
    reaching = (result.accepted_rank < 0) | (result.accepted_rank >= rank_index)
    wrong = accepted & ~category_map.taxonomy.is_ancestor_or_self(result.taxon, truth)
    return accepted.sum() / max(reaching.sum(), 1), wrong.sum() / max(accepted.sum(), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-thresholds", type=int, default=3, help="thresholds timed the naive way, per mode")
    args = parser.parse_args()

    category_map = ami_category_map()
    start = time.perf_counter()
    outputs = simulate_outputs(category_map, args.rows, seed=1)
    scores = outputs.scores()
    truth = category_map.class_taxa[outputs.true_class]
    print(f"simulated {scores.shape[0]:,} x {scores.shape[1]:,} float32 scores in {time.perf_counter() - start:.1f} s")
    order = list(DEFAULT_THRESHOLDS)
    grid = DEFAULT_GRID
    n_ranks = len(order)

    with tempfile.TemporaryDirectory() as tmp:
        pipelines = pipelines_for(category_map, Path(tmp))
    rollups = [p for p in pipelines if p.rollup is not None]
    evaluate_pipelines(scores[:200], category_map, truth[:200], pipelines)  # compile the kernels
    print(f"{len(pipelines)} pipelines ({len(rollups)} roll-ups), sweep of {grid.size} thresholds x {n_ranks} ranks")

    ours = median_seconds(lambda: evaluate_pipelines(scores, category_map, truth, pipelines, grid=grid), args.repeats)
    evaluation = evaluate_pipelines(scores, category_map, truth, pipelines, grid=grid)
    no_sweep = median_seconds(
        lambda: evaluate_pipelines(scores, category_map, truth, pipelines, grid=grid[:1]), args.repeats
    )
    print(f"evaluation with sweeps, median of {args.repeats}: {ours:.2f} s ({args.rows / ours:,.0f} rows/s)")
    print(f"  of which the {grid.size}-threshold sweeps add: {max(ours - no_sweep, 0.0):.2f} s")

    # The sweep alone on one roll-up's candidates, three ways.
    candidates = rollup_candidates(scores, category_map, order=order, mode="lineage")
    vectorised = median_seconds(
        lambda: risk_coverage_curves(
            candidates, truth, category_map.taxonomy, thresholds=DEFAULT_THRESHOLDS, grid=grid
        ),
        args.repeats,
    )

    def per_threshold_apply() -> None:
        for rank in order:
            for t in grid:
                apply_thresholds(candidates, {**DEFAULT_THRESHOLDS, rank: float(t)})

    applied = median_seconds(per_threshold_apply, 1)

    # The naive way: one full roll-up per threshold, timed on a few and extrapolated.
    picks = np.linspace(0, grid.size - 1, args.naive_thresholds).astype(int)
    masked = class_masking(scores, category_map, rollups[-1].steps[0].prepared.state).scores
    naive_per_pipeline = []
    for pipeline in rollups:
        config = pipeline.rollup
        values = masked if pipeline.transforms else scores
        start = time.perf_counter()
        for k in picks:
            rank = order[int(k) % n_ranks]
            naive_threshold(
                values, category_map, truth, {**config.thresholds, rank: float(grid[k])}, config.mode, order.index(rank)
            )
        per_threshold = (time.perf_counter() - start) / picks.size
        naive_per_pipeline.append(per_threshold * grid.size * n_ranks)
    del masked
    naive_sweep = sum(naive_per_pipeline)
    naive_total = no_sweep + naive_sweep
    per_sweep_naive = naive_per_pipeline[0]
    print(f"one roll-up's sweep ({grid.size} thresholds x {n_ranks} ranks = {grid.size * n_ranks} thresholds):")
    print(f"  vectorised (one sort per rank):            {vectorised * 1000:9.1f} ms")
    print(f"  apply_thresholds per threshold (measured):  {applied * 1000:9.1f} ms  ({applied / vectorised:,.0f}x)")
    print(
        f"  rank_rollup per threshold (extrapolated from {picks.size} thresholds): {per_sweep_naive:9.1f} s "
        f"({per_sweep_naive / vectorised:,.0f}x)"
    )
    print("\nmetrics (simulated outputs):")
    print(f"  {'pipeline':<20}{'accuracy':>9}{'corrected':>10}{'regressed':>10}{'AURC species/genus/family':>28}")
    for entry in evaluation.pipelines:
        curves, outcomes = entry.risk_coverage, entry.metrics.outcomes
        aurc = " / ".join(f"{curves[r].aurc:.4f}" for r in order) if curves else "-"
        print(
            f"  {entry.name:<20}{entry.metrics.accuracy:>9.4f}{outcomes.corrected:>10,}{outcomes.regressed:>10,}"
            f"{aurc:>28}"
        )
    for pair in evaluation.mode_disagreement:
        print(
            f"  {pair.lineage} vs {pair.distribution}: {pair.n_disagree:,} rows differ; correct there: "
            f"lineage {pair.lineage_accuracy:.3f}, distribution {pair.distribution_accuracy:.3f}"
        )
    print(
        f"\nwhole evaluation, naive (pipelines + a full roll-up per threshold, extrapolated from {picks.size} "
        f"thresholds per roll-up pipeline): {naive_total:.1f} s; ours {ours:.2f} s: {naive_total / ours:,.0f}x faster"
    )


if __name__ == "__main__":
    main()
