"""Deciding per occurrence: per-detection best score, MegaDetector's label vote, or a consensus?

One command (``megadetector`` is installed by ``make``, without its model dependencies)::

    .venv/bin/python benchmarks/consensus_evidence.py [--tracks 6000] [--output benchmarks/results/consensus.json]

On two kinds of data, each with and without a roll-up afterwards (lineage mode; AMI thresholds
species 0.8, genus 0.6, family 0.4; CIFAR-100 class 0.8, superclass 0.6):

- **simulated tracks** (docs/simulation.md, "Tracks") over the real AMI label space (2,497
  classes): frames share the individual's error; at the default frame noise (2.5) frames are
  nearly copies of each other, at 6.0 each frame adds much of its own;
- **CIFAR-100 pseudo-occurrences**: the 10,000 REAL DenseNet-BC-100 test outputs, cut into
  groups of 2 to 5 images of one true class (seed 0; a class's last single image is left out).
  Different images are independent views, which favours combining more than real tracks do.

it compares, per occurrence:

- ``best score``: each detection decided alone, the occurrence takes the detection with the
  highest final score, ties to the first (Antenna's rule, and taxopost's without consensus);
- ``finest rank``: each detection decided alone, the occurrence takes the finest rank, then the
  highest score (the alternative rule for determinations);
- ``MegaDetector vote``: ``smooth_classification_results_sequence_level`` (default options) on
  the same outputs written as a MegaDetector results file (top-5 classifications, taxonomy
  strings as category descriptions, one sequence per occurrence), then the best score; with
  roll-up, the detections' rolled-up taxa are what it votes on;
- ``consensus mean`` / ``consensus geometric`` (and, on the tracks, the mean weighted by detector
  confidence or by box area): combine, then decide once.

and prints Markdown tables: accuracy, coverage by rank, and corrected / regressed counts
against ``best score`` without roll-up (the model's answer per detection, best frame).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
from megadetector.postprocessing.classification_postprocessing import (
    ClassificationSmoothingOptions,
    smooth_classification_results_sequence_level,
)

from _common import REPO, SHARED_DATA, ami_category_map
from taxopost.core import CategoryMap, Taxonomy, rank_rollup
from taxopost.core.consensus import consensus
from taxopost.core.ranks import RANKS
from taxopost.core.simulate import simulate_tracks
from taxopost.evaluation import accuracy, is_correct, occurrence_rows, rank_coverage

AMI_THRESHOLDS = {"species": 0.8, "genus": 0.6, "family": 0.4}
CIFAR_THRESHOLDS = {"class": 0.8, "superclass": 0.6}
RANK_INDEX = {rank: i for i, rank in enumerate(RANKS)}


# -- one prediction per occurrence --------------------------------------------------------------


def best_score(taxa: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each group's taxon of its row with the highest score, ties to the first row (the evaluator's rule)."""
    return taxa[occurrence_rows(groups, scores)]


def finest_rank(
    taxa: np.ndarray, scores: np.ndarray, groups: np.ndarray, taxonomy: Taxonomy, first: np.ndarray | None = None
) -> np.ndarray:
    """Each group's finest-rank row, then the highest score, then the first (rows in ``first`` before others)."""
    depth = np.array([RANK_INDEX[taxonomy.rank_of(int(t))] for t in taxa])
    ahead = np.zeros(groups.size, dtype=bool) if first is None else first
    order = np.lexsort((np.arange(groups.size), -scores, -depth, ~ahead, groups))
    starts = np.r_[True, groups[order][1:] != groups[order][:-1]]
    return taxa[order[starts]]


def per_detection(values, groups, category_map, thresholds):
    """Each detection decided alone: (taxa, scores) without and with roll-up."""
    rows = np.arange(len(values))
    winner = np.where(category_map.resolved, values, -1).argmax(axis=1)
    plain = (category_map.class_taxa[winner], values[rows, winner])
    rolled = rank_rollup(values, category_map, thresholds=thresholds)
    return plain, (rolled.taxon, rolled.score, rolled.accepted_rank >= 0)


def consensus_predictions(values, groups, category_map, thresholds, **options):
    combined = consensus(values, groups, category_map, **options)
    plain = category_map.class_taxa[combined.winner]
    rolled = rank_rollup(combined.scores, category_map, thresholds=thresholds).taxon
    return plain, rolled


# -- MegaDetector's label vote -------------------------------------------------------------------


def taxonomy_string(taxon: int, taxonomy: Taxonomy, levels: dict[str, int], top: tuple[str, str]) -> str:
    """A seven-token WI prediction string (id;class;order;family;genus;species;name), lower case."""
    tokens = [*top, "", "", ""]
    node = taxon
    while node >= 0:
        rank = taxonomy.rank_of(node)
        if rank in levels:
            name = taxonomy.names[node]
            tokens[levels[rank]] = name.split(" ", 1)[-1] if rank == "species" else name
        node = int(taxonomy.parents[node])
    return ";".join([str(taxon), *tokens, taxonomy.names[taxon]]).lower()


def megadetector_vote(
    taxa_rows: list[list[tuple[int, float]]], groups: np.ndarray, confidence: np.ndarray, taxonomy, levels, top
) -> np.ndarray:
    """Run MegaDetector's sequence-level smoothing; return each detection's (taxon, score) after it."""
    used = sorted({taxon for row in taxa_rows for taxon, _ in row})
    category_of = {taxon: str(i) for i, taxon in enumerate(used)}
    results = {
        "info": {"format_version": "1.4"},
        "detection_categories": {"1": "animal"},
        "classification_categories": {category_of[t]: taxonomy.names[t].lower() for t in used},
        "classification_category_descriptions": {
            category_of[t]: taxonomy_string(t, taxonomy, levels, top) for t in used
        },
        "images": [
            {
                "file": f"{int(g)}/{i}.jpg",
                "detections": [
                    {
                        "category": "1",
                        "conf": round(float(confidence[i]), 4),
                        "bbox": [0.1, 0.1, 0.5, 0.5],
                        "classifications": [[category_of[t], round(float(s), 5)] for t, s in taxa_rows[i]],
                    }
                ],
            }
            for i, g in enumerate(groups)
        ],
    }
    sequences = [{"file_name": f"{int(g)}/{i}.jpg", "seq_id": str(int(g))} for i, g in enumerate(groups)]
    options = ClassificationSmoothingOptions()
    options.modify_in_place = True
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        smoothed = smooth_classification_results_sequence_level(results, sequences, options=options)
    taxon_of = {category: taxon for taxon, category in category_of.items()}
    taxa = np.array([taxon_of[im["detections"][0]["classifications"][0][0]] for im in smoothed["images"]])
    scores = np.array([im["detections"][0]["classifications"][0][1] for im in smoothed["images"]])
    return taxa, scores


def top_k(values: np.ndarray, category_map: CategoryMap, k: int = 5) -> list[list[tuple[int, float]]]:
    """Each row's k best classes as (taxon, score), best first."""
    masked = np.where(category_map.resolved, values, -1)
    best = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return [[(int(category_map.class_taxa[c]), float(values[i, c])) for c in row] for i, row in enumerate(best)]


# -- the comparison --------------------------------------------------------------------------------


def compare(name, values, groups, truth_class, category_map, thresholds, ranks, levels, top, confidence, extra):
    taxonomy = category_map.taxonomy
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    truth = category_map.class_taxa[truth_class[starts]]
    (plain_taxa, plain_scores), (rolled_taxa, rolled_scores, accepted) = per_detection(
        values, groups, category_map, thresholds
    )
    predictions = {
        ("best score", False): best_score(plain_taxa, plain_scores, groups),
        ("best score", True): best_score(rolled_taxa, rolled_scores, groups),
        ("finest rank", True): finest_rank(rolled_taxa, rolled_scores, groups, taxonomy),
        ("finest accepted rank", True): finest_rank(rolled_taxa, rolled_scores, groups, taxonomy, accepted),
    }
    md_plain = megadetector_vote(top_k(values, category_map), groups, confidence, taxonomy, levels, top)
    predictions[("MegaDetector vote", False)] = best_score(*md_plain, groups)
    rolled_rows = [[(int(t), float(s))] for t, s in zip(rolled_taxa, rolled_scores, strict=True)]
    md_rolled = megadetector_vote(rolled_rows, groups, confidence, taxonomy, levels, top)
    predictions[("MegaDetector vote", True)] = best_score(*md_rolled, groups)
    for label, options in (("consensus mean", {}), ("consensus geometric", {"method": "geometric"}), *extra):
        plain, rolled = consensus_predictions(values, groups, category_map, thresholds, **options)
        predictions[(label, False)], predictions[(label, True)] = plain, rolled
    baseline = predictions[("best score", False)]
    base_ok = is_correct(truth, baseline, taxonomy)
    table = []

    def coverage_mask(predicted: np.ndarray) -> np.ndarray:
        return np.array([taxonomy.rank_of(int(t)) == ranks[0] for t in predicted])

    for (label, rollup), predicted in predictions.items():
        ok = is_correct(truth, predicted, taxonomy)
        changed = predicted != baseline
        coverage = rank_coverage(predicted, taxonomy, ranks=ranks)
        table.append(
            {
                "data": name,
                "method": label,
                "rollup": rollup,
                "occurrences": int(truth.size),
                "accuracy": round(accuracy(truth, predicted, taxonomy), 4),
                "exact": round(float(np.mean(predicted == truth)), 4),
                "finest_precision": round(
                    float(ok[finest].mean()) if (finest := coverage_mask(predicted)).any() else 0, 4
                ),
                "coverage": {rank: round(coverage.get(rank, 0.0), 4) for rank in ranks},
                "corrected": int((changed & ~base_ok & ok).sum()),
                "regressed": int((changed & base_ok & ~ok).sum()),
            }
        )
    return table


def simulated(n_tracks: int, frame_noise: float):
    category_map = ami_category_map()
    tracks = simulate_tracks(category_map, n_tracks, seed=0, frame_noise=frame_noise)
    extra = (
        ("consensus mean, by confidence", {"weights": tracks.confidence}),
        ("consensus mean, by area", {"weights": tracks.area}),
        ("consensus geometric, by confidence", {"method": "geometric", "weights": tracks.confidence}),
    )
    levels = {"family": 2, "genus": 3, "species": 4}
    return compare(
        f"simulated tracks, frame noise {frame_noise:g} ({n_tracks:,} tracks, {tracks.groups.size:,} frames)",
        tracks.scores(), tracks.groups, tracks.true_class, category_map, AMI_THRESHOLDS,
        ["species", "genus", "family"], levels, ("insecta", "lepidoptera"), tracks.confidence, extra,
    )  # fmt: skip


def cifar():
    folder = SHARED_DATA / "cifar100"
    if not folder.exists():
        sys.exit(f"benchmark needs {folder} (set TAXOPOST_SHARED_DATA)")
    hierarchy = json.loads((folder / "hierarchy.json").read_text())
    rows = [{"superclass": hierarchy["coarse_of_fine"][label], "class": label} for label in hierarchy["fine_labels"]]
    taxonomy = Taxonomy.from_lineages(rows, ["class", "superclass"])
    category_map = CategoryMap(hierarchy["fine_labels"], taxonomy)
    data = np.load(folder / "densenet-bc-100_cifar100_test_predictions.npz")
    scores, truth = data["predictions"].astype(np.float32), data["ground_truth"].astype(np.int64)
    scores /= scores.sum(axis=1, keepdims=True)  # stored rounded; renormalise within float32
    rng = np.random.default_rng(0)
    chosen, groups = [], []
    for label in range(len(hierarchy["fine_labels"])):
        images = rng.permutation(np.flatnonzero(truth == label))
        at = 0
        while images.size - at >= 2:
            size = min(int(rng.integers(2, 6)), images.size - at)
            if images.size - at - size == 1 and size > 2:
                size -= 1  # leave two, not one, for the next group
            chosen.extend(images[at : at + size])
            groups.extend([groups[-1] + 1 if groups else 0] * size)
            at += size
    index = np.array(chosen)
    groups = np.array(groups, dtype=np.int64)
    levels = {"superclass": 2, "class": 3}
    return compare(
        f"CIFAR-100 pseudo-occurrences ({groups[-1] + 1:,} of 2-5 images, {index.size:,} images)",
        scores[index], groups, truth[index], category_map, CIFAR_THRESHOLDS, ["class", "superclass"], levels,
        ("cifar", "all"), np.full(index.size, 0.9), (),
    )  # fmt: skip


def markdown(table: list[dict]) -> str:
    ranks = list(table[0]["coverage"])
    head = ["method", "roll-up", "accuracy", "exact", *(f"{rank} coverage" for rank in ranks)]
    head += [f"{ranks[0]} precision", "corrected", "regressed"]
    lines = [f"**{table[0]['data']}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table:
        cells = [row["method"], "yes" if row["rollup"] else "no", f"{row['accuracy']:.4f}", f"{row['exact']:.4f}"]
        cells += [f"{row['coverage'][rank]:.4f}" for rank in ranks] + [f"{row['finest_precision']:.4f}"]
        cells += [str(row["corrected"]), str(row["regressed"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=6000)
    parser.add_argument(
        "--frame-noise", type=float, nargs="+", default=[2.5, 6.0], help="simulate_tracks' frame_noise, one run each"
    )
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "consensus.json")
    args = parser.parse_args()
    tables = [*(simulated(args.tracks, noise) for noise in args.frame_noise), cifar()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(tables, indent=2))
    for table in tables:
        print(markdown(table), end="\n\n")


if __name__ == "__main__":
    main()
