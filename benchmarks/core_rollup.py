"""Rank roll-up throughput on the AMI label space (100,000 rows x 2,497 classes, simulated outputs).

Prints rows/s, peak extra memory, and ratios measured in the same run against
(a) the straightforward per-row Python loop that accumulates a dict per rank (timed on a
subset and scaled per row) and (b) the floor: one pass over the matrix (``scores.sum(axis=1)``).
Targets: >= 100x the per-row loop, within 3x of the floor, peak extra memory < 2x the matrix.

    .venv/bin/python benchmarks/core_rollup.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections import defaultdict

import numpy as np

from _common import ami_category_map, median_seconds
from taxopost.core import DEFAULT_THRESHOLDS, CategoryMap, rank_rollup
from taxopost.core.simulate import simulate_outputs

ORDER = ("species", "genus", "family")


def per_row_loop(scores: np.ndarray, category_map: CategoryMap, mode: str) -> list[tuple[str, float]]:
    """How a platform first writes it: per row, walk each class's lineage into a dict per rank."""
    taxonomy = category_map.taxonomy
    parent = {taxonomy.names[i]: (taxonomy.names[p] if p >= 0 else None) for i, p in enumerate(taxonomy.parents)}
    rank = {name: taxonomy.rank_of(i) for i, name in enumerate(taxonomy.names)}
    labels = [taxonomy.names[t] for t in category_map.class_taxa]
    results = []
    for row in scores.tolist():
        aggregates: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for label, score in zip(labels, row, strict=True):
            node = label
            while node is not None:
                aggregates[rank[node]][node] += score
                node = parent[node]
        source = labels[int(np.argmax(row))]
        chosen = (source, max(row))
        for r in ORDER:
            if mode == "lineage":
                node = source
                while node is not None and rank[node] != r:
                    node = parent[node]
                candidate = (node, aggregates[r].get(node, 0.0)) if node else None
            else:
                candidate = max(aggregates[r].items(), key=lambda kv: kv[1], default=None)
            if candidate and candidate[1] >= DEFAULT_THRESHOLDS[r]:
                chosen = candidate
                break
        results.append(chosen)
    return results


def peak_extra_bytes(function) -> int:
    """Peak bytes allocated while ``function`` runs (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--loop-rows", type=int, default=300, help="rows timed for the per-row loop")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    category_map = ami_category_map()
    start = time.perf_counter()
    scores = simulate_outputs(category_map, args.rows, seed=1).scores()
    print(f"simulated {scores.shape[0]:,} x {scores.shape[1]:,} float32 scores in {time.perf_counter() - start:.1f} s")
    matrix_mb = scores.nbytes / 2**20

    for mode in ("lineage", "distribution"):  # compile the kernels before timing
        rank_rollup(scores[:100], category_map, mode=mode)
    floor = median_seconds(lambda: scores.sum(axis=1), args.repeats)
    print(f"floor, one pass (scores.sum(axis=1)): {floor * 1000:.1f} ms")
    print(f"{'mode':<13}{'median s':>10}{'rows/s':>14}{'x floor':>9}{'x per-row loop':>16}{'peak extra':>14}")
    for mode in ("lineage", "distribution"):
        seconds = median_seconds(lambda mode=mode: rank_rollup(scores, category_map, mode=mode), args.repeats)
        subset = scores[: args.loop_rows]
        loop_seconds = median_seconds(lambda mode=mode, subset=subset: per_row_loop(subset, category_map, mode), 3)
        loop_per_row = loop_seconds / subset.shape[0]
        ours_per_row = seconds / scores.shape[0]
        extra = peak_extra_bytes(lambda mode=mode: rank_rollup(scores, category_map, mode=mode)) / 2**20
        result = rank_rollup(scores, category_map, mode=mode)
        reference = per_row_loop(scores[:50], category_map, mode)
        agree = all(category_map.taxonomy.names[result.taxon[i]] == reference[i][0] for i in range(len(reference)))
        print(
            f"{mode:<13}{seconds:>10.3f}{scores.shape[0] / seconds:>14,.0f}{seconds / floor:>9.2f}"
            f"{loop_per_row / ours_per_row:>15,.0f}x{extra:>9.0f} MiB ({extra / matrix_mb:.2f}x matrix)"
            + ("" if agree else "  RESULTS DIFFER FROM THE PER-ROW LOOP")
        )
        rolled = np.bincount(result.accepted_rank + 1, minlength=len(ORDER) + 1)
        print(f"{'':<13}accepted at species/genus/family/none: {rolled[1]}, {rolled[2]}, {rolled[3]}, {rolled[0]}")
    print(f"matrix: {matrix_mb:.0f} MiB; per-row loop timed on {args.loop_rows} rows and scaled per row")


if __name__ == "__main__":
    main()
