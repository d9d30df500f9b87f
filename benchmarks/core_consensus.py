"""Occurrence consensus plus roll-up on the AMI label space (100,000 detections x 2,497 classes).

100,000 simulated detections in 25,000 occurrences of 4 (simulated outputs, float32; rows
sorted by occurrence, as a tracker writes them, and shuffled). Prints medians of 7 rounds and
ratios measured in the same run against the floor: one pass over the matrix
(``scores.sum(axis=1)``). Target: consensus plus the roll-up of its 25,000 rows within 2x of the
floor. The roll-up of the 100,000 rows one by one (today's per-detection decision) is shown too.

    .venv/bin/python benchmarks/core_consensus.py [--rows 100000] [--per-occurrence 4]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from _common import ami_category_map, median_seconds
from taxopost.core import rank_rollup
from taxopost.core.consensus import consensus
from taxopost.core.simulate import simulate_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--per-occurrence", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    category_map = ami_category_map()
    scores = simulate_outputs(category_map, args.rows, seed=0).scores()
    groups = np.arange(args.rows) // args.per_occurrence
    shuffled = np.random.default_rng(0).permutation(args.rows)
    scores_shuffled, groups_shuffled = scores[shuffled], groups[shuffled]
    consensus(scores[:1000], groups[:1000], category_map)  # compile the kernel
    rank_rollup(scores[:1000], category_map)

    combined = consensus(scores, groups, category_map).scores

    def then_rollup(values, ids, **options):
        combined = consensus(values, ids, category_map, **options)
        return rank_rollup(combined.scores, category_map)

    measures = {
        "floor: scores.sum(axis=1)": lambda: scores.sum(axis=1),
        "roll-up of every detection (no consensus)": lambda: rank_rollup(scores, category_map),
        "consensus mean": lambda: consensus(scores, groups, category_map),
        "roll-up of the combined rows": lambda: rank_rollup(combined, category_map),
        "consensus mean + roll-up": lambda: then_rollup(scores, groups),
        "consensus mean + roll-up, shuffled rows": lambda: then_rollup(scores_shuffled, groups_shuffled),
        "consensus geometric + roll-up": lambda: then_rollup(scores, groups, method="geometric"),
    }
    # Interleaved (each measure once per round, medians over rounds): on a shared machine a busy
    # moment then slows every measure of a round, not all the runs of one measure.
    rounds = {name: [] for name in measures}
    for _ in range(args.repeats):
        for name, function in measures.items():
            rounds[name].append(median_seconds(function, 1))
    times = {name: statistics.median(values) for name, values in rounds.items()}
    floor = times["floor: scores.sum(axis=1)"]
    occurrences = args.rows // args.per_occurrence
    print(f"{args.rows:,} detections x {category_map.n_classes:,} classes, {occurrences:,} occurrences")
    print("| measure | median | x the floor |")
    print("|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds * 1000:.0f} ms | {seconds / floor:.2f} |")


if __name__ == "__main__":
    main()
