"""Evaluation and threshold calibration on REAL model outputs: a DenseNet-BC-100 on CIFAR-100.

One command::

    .venv/bin/python benchmarks/cifar_report.py [--output-dir benchmarks/results/cifar] [--splits 50]

It converts CIFAR-100's two-level hierarchy (``hierarchy.json``) into a lineage CSV
(``superclass,class``) and a label list, then runs the command line itself on the shared
``.npz`` (its ``predictions`` are the scores, its ``ground_truth`` the class indices):

- ``taxopost evaluate`` with the baseline, and lineage and distribution roll-up at
  class=0.8, superclass=0.6 (the default's shape) and at class=0.8, superclass=0.4 (the
  default's coarsest threshold, below one half, where the two modes can pick different taxa);
- ``taxopost calibrate`` at target precision 0.9 and 0.95 (delta 0.1, half the rows held out,
  seed 0), in both modes;

and prints a Markdown table of the results, then how calibration fares over ``--splits``
random splits (mean held-out coverage and precision, share of splits meeting the target).
Reports land in ``--output-dir`` (``evaluate/report.html``, ``calibrate-*/report.html``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import REPO, SHARED_DATA
from taxopost.cli import main as taxopost
from taxopost.core import CategoryMap
from taxopost.evaluation import calibrate
from taxopost.io import read_taxonomy

CIFAR = SHARED_DATA / "cifar100"
PREDICTIONS = CIFAR / "densenet-bc-100_cifar100_test_predictions.npz"
THRESHOLDS = {
    "0.8 / 0.6": {"class": 0.8, "superclass": 0.6},
    "0.8 / 0.4": {"class": 0.8, "superclass": 0.4},
}
TARGETS = (0.9, 0.95)
MODES = ("lineage", "distribution")
DELTA = 0.1


def convert(folder: Path) -> tuple[Path, Path]:
    """hierarchy.json -> a lineage CSV (superclass, class) and a JSON list of labels in class order."""
    hierarchy = json.loads((CIFAR / "hierarchy.json").read_text())
    taxonomy = folder / "cifar100_taxonomy.csv"
    with open(taxonomy, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["superclass", "class"])
        writer.writerows([hierarchy["coarse_of_fine"][label], label] for label in hierarchy["fine_labels"])
    labels = folder / "cifar100_labels.json"
    labels.write_text(json.dumps(hierarchy["fine_labels"]))
    return taxonomy, labels


def pipelines_file(folder: Path) -> Path:
    pipelines = [{"name": "baseline (argmax)", "steps": []}]
    for label, thresholds in THRESHOLDS.items():
        for mode in MODES:
            pipelines.append(
                {"name": f"{mode} {label}", "steps": [{"task": "rank_rollup", "thresholds": thresholds, "mode": mode}]}
            )
    path = folder / "pipelines.json"
    path.write_text(json.dumps(pipelines, indent=2))
    return path


def run(args: list[str]) -> None:
    code = taxopost(args)
    if code != 0:
        sys.exit(f"taxopost {args[0]} failed with exit code {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO / "benchmarks" / "results" / "cifar")
    parser.add_argument("--splits", type=int, default=50, help="random splits for the calibration summary")
    args = parser.parse_args()
    if not PREDICTIONS.exists():
        sys.exit(f"needs the CIFAR-100 outputs in {CIFAR} (set TAXOPOST_SHARED_DATA)")
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        taxonomy, labels = convert(Path(tmp))
        common = [
            "--taxonomy",
            str(taxonomy),
            "--category-map",
            str(labels),
            "--scores",
            str(PREDICTIONS),
            "--ground-truth",
            str(PREDICTIONS),
        ]
        run(["evaluate", *common, "--pipelines", str(pipelines_file(Path(tmp))), "--output-dir", str(out / "evaluate")])
        for mode in MODES:
            for target in TARGETS:
                name = f"calibrate-{mode}-{target}"
                run(
                    [
                        "calibrate",
                        *common,
                        "--target-precision",
                        str(target),
                        "--delta",
                        str(DELTA),
                        "--mode",
                        mode,
                        "--order",
                        "class,superclass",
                        "--seed",
                        "0",
                        "--output",
                        str(out / f"{name}.json"),
                        "--output-dir",
                        str(out / name),
                    ]
                )
        category_map = CategoryMap(json.loads(labels.read_text()), read_taxonomy(taxonomy))
    print_tables(out, category_map, args.splits)


def print_tables(out: Path, category_map: CategoryMap, n_splits: int) -> None:
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())
    print(
        "\n| pipeline | accuracy | exact | class coverage | class precision | superclass coverage | superclass "
        "precision | corrected | regressed | generalized | hF1 | AURC class | AURC superclass |"
    )
    print("|" + "---|" * 13)
    for p in metrics["pipelines"]:
        curves = p.get("risk_coverage", {})
        aurc = [f"{curves[r]['aurc']:.4f}" if r in curves else "–" for r in ("class", "superclass")]
        print(
            f"| {p['name']} | {p['accuracy']:.4f} | {p['exact_accuracy']:.4f} | {p['coverage']['class']:.4f} | "
            f"{_f(p['precision']['class'])} | {p['coverage']['superclass']:.4f} | {_f(p['precision']['superclass'])} | "
            f"{p['corrected']} | {p['regressed']} | {p['generalized']} | {p['hierarchical_f1']:.4f} | "
            f"{aurc[0]} | {aurc[1]} |"
        )
    for d in metrics["mode_disagreement"]:
        print(
            f"\n{d['lineage']} vs {d['distribution']}: {d['n_disagree']} rows differ; correct there: lineage "
            f"{_f(d['lineage_accuracy'])}, distribution {_f(d['distribution_accuracy'])}; confusion "
            f"(rows lineage, columns distribution; exact / correct coarser / wrong): {d['confusion']}"
        )

    print("\nCalibrated on 5,000 rows, held out 5,000 (seed 0), delta = 0.1:\n")
    print(
        "| mode | target | class threshold | superclass threshold | held-out class coverage | held-out class "
        "precision | held-out superclass coverage | held-out superclass precision | not accepted | accuracy |"
    )
    print("|" + "---|" * 10)
    for mode in MODES:
        for target in TARGETS:
            report = json.loads((out / f"calibrate-{mode}-{target}" / "calibration.json").read_text())
            held = {r["rank"]: r for r in report["held_out"]["ranks"]}
            thresholds = {r["rank"]: r["threshold"] for r in report["ranks"]}
            print(
                f"| {mode} | {target} | {_f(thresholds['class'], 'g')} | {_f(thresholds['superclass'], 'g')} | "
                f"{held['class']['coverage']:.4f} | {_f(held['class']['precision'])} | "
                f"{held['superclass']['coverage']:.4f} | {_f(held['superclass']['precision'])} | "
                f"{report['held_out']['not_accepted']['coverage']:.4f} | {report['held_out']['accuracy']:.4f} |"
            )

    data = np.load(PREDICTIONS)
    scores, truth = data["predictions"], category_map.class_taxa[data["ground_truth"]]
    print(
        f"\nOver {n_splits} random 50/50 splits (mean held-out values; 'met' = share of splits whose held-out "
        "precision reaches the target at that rank):\n"
    )
    print(
        "| mode | target | class coverage | class precision | class met | superclass coverage | superclass "
        "precision | superclass met |"
    )
    print("|" + "---|" * 8)
    for mode in MODES:
        for target in TARGETS:
            rows = {"class": [], "superclass": []}
            for seed in range(n_splits):
                report = calibrate(
                    scores,
                    category_map,
                    truth,
                    target_precision=target,
                    delta=DELTA,
                    seed=seed,
                    order=["class", "superclass"],
                    mode=mode,
                )
                for rank in report.held_out.ranks:
                    rows[rank.rank].append((rank.coverage, rank.precision, rank.met))
            cells = []
            for rank in ("class", "superclass"):
                coverage, precision, met = (np.array(column, dtype=float) for column in zip(*rows[rank], strict=True))
                cells += [f"{coverage.mean():.4f}", f"{np.nanmean(precision):.4f}", f"{met.mean():.2f}"]
            print(f"| {mode} | {target} | " + " | ".join(cells) + " |")
    print(f"\nreports: {out}/evaluate/report.html, {out}/calibrate-*/report.html")


def _f(value: object, spec: str = ".4f") -> str:
    return "–" if value is None else format(value, spec)


if __name__ == "__main__":
    main()
