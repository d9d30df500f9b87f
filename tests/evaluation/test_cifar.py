"""Evaluation and calibration on REAL model outputs: DenseNet-BC-100 on the CIFAR-100 test set."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.core import CategoryMap, Taxonomy
from taxopost.evaluation import calibrate, evaluate_pipelines, parse_pipelines

pytestmark = pytest.mark.shared_data
THRESHOLDS = {"class": 0.8, "superclass": 0.6}


@pytest.fixture(scope="module")
def cifar(shared_data):
    folder = shared_data / "cifar100"
    hierarchy = json.loads((folder / "hierarchy.json").read_text())
    rows = [{"superclass": hierarchy["coarse_of_fine"][label], "class": label} for label in hierarchy["fine_labels"]]
    category_map = CategoryMap(hierarchy["fine_labels"], Taxonomy.from_lineages(rows, ["superclass", "class"]))
    data = np.load(folder / "densenet-bc-100_cifar100_test_predictions.npz")
    truth = category_map.class_taxa[data["ground_truth"]].astype(np.int64)
    return category_map, data["predictions"], truth, hierarchy


def test_rollup_on_real_outputs_corrects_without_regressing_in_lineage_mode(cifar):
    category_map, scores, truth, _ = cifar
    pipelines = parse_pipelines(
        [{"name": "baseline", "steps": []}]
        + [
            {"name": mode, "steps": [{"task": "rank_rollup", "thresholds": THRESHOLDS, "mode": mode}]}
            for mode in ("lineage", "distribution")
        ],
        category_map,
    )
    evaluation = evaluate_pipelines(scores, category_map, truth, pipelines)
    baseline, lineage, distribution = (entry.metrics for entry in evaluation.pipelines)
    assert baseline.accuracy == pytest.approx(0.7541)  # the published top-1 accuracy
    assert evaluation.ranks == ["class", "superclass"]
    for rolled in (lineage, distribution):
        assert rolled.accuracy > baseline.accuracy + 0.03
        assert rolled.outcomes.corrected > 300 and rolled.outcomes.generalized > 500
        assert rolled.coverage["class"] + rolled.coverage["superclass"] == pytest.approx(1.0)
        assert rolled.precision["class"] > baseline.precision["class"]
    assert lineage.outcomes.regressed == 0  # lineage only generalises the model's prediction
    assert set(evaluation.pipelines[1].risk_coverage) == {"class", "superclass"}


@pytest.mark.parametrize("target", [0.9, 0.95])
def test_calibrated_thresholds_hold_on_the_held_out_half(cifar, target):
    category_map, scores, truth, _ = cifar
    report = calibrate(scores, category_map, truth, target_precision=target, delta=0.1, seed=0)
    assert [r.rank for r in report.calibration.ranks] == ["class", "superclass"]  # from the label space
    assert not report.calibration.unreachable
    for rank in report.held_out.ranks:
        assert rank.precision >= target - 0.01
        assert rank.coverage > 0.05
    assert report.held_out.ranks[0].coverage > (0.6 if target == 0.9 else 0.4)


def test_evaluate_command_reads_the_npz_for_scores_and_ground_truth(cifar, shared_data, tmp_path):
    _category_map, _, _, hierarchy = cifar
    with open(tmp_path / "taxonomy.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["superclass", "class"])
        writer.writerows([hierarchy["coarse_of_fine"][label], label] for label in hierarchy["fine_labels"])
    (tmp_path / "labels.json").write_text(json.dumps(hierarchy["fine_labels"]))
    steps = [{"task": "rank_rollup", "thresholds": THRESHOLDS}]
    (tmp_path / "pipelines.json").write_text(
        json.dumps([{"name": "baseline", "steps": []}, {"name": "r", "steps": steps}])
    )
    npz = str(shared_data / "cifar100" / "densenet-bc-100_cifar100_test_predictions.npz")
    args = [
        "evaluate",
        "--taxonomy",
        str(tmp_path / "taxonomy.csv"),
        "--category-map",
        str(tmp_path / "labels.json"),
        "--scores",
        npz,
        "--ground-truth",
        npz,
        "--pipelines",
        str(tmp_path / "pipelines.json"),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["pipelines"][0]["accuracy"] == pytest.approx(0.7541)
    assert metrics["mode_disagreement"][0]["distribution"] == "r (distribution mode)"
