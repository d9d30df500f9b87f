"""``taxopost evaluate`` and ``taxopost calibrate`` end to end through ``taxopost.cli.main``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.core import CategoryMap
from taxopost.core.rollup import rank_rollup
from taxopost.core.simulate import simulate_outputs
from taxopost.io import read_taxonomy
from taxopost.tasks.rank_rollup import RankRollupConfig
from tests.evaluation.conftest import LABELS, TAXONOMY_CSV

N_ROWS = 800
THRESHOLDS = {"species": 0.8, "genus": 0.6, "family": 0.4}
PNGS = ("risk_coverage.png", "coverage_by_rank.png", "accuracy_by_confidence.png", "mode_disagreement.png")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY_CSV)
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    category_map = CategoryMap(LABELS, read_taxonomy(tmp_path / "taxonomy.csv", id_column="id"))
    outputs = simulate_outputs(category_map, N_ROWS, seed=5, n_confusers=3)
    np.save(tmp_path / "scores.npy", outputs.scores())
    np.save(tmp_path / "logits.npy", outputs.logits)
    np.save(tmp_path / "truth.npy", outputs.true_class)
    # Labels as names, except Vanessa atalanta given by its id (--id-column id).
    labels = ["1898286" if LABELS[c] == "Vanessa atalanta" else LABELS[c] for c in outputs.true_class]
    write_truth(tmp_path / "truth.csv", labels)
    (tmp_path / "regional.txt").write_text("Vanessa\nCatocala\n")
    pipelines = [
        {"name": "baseline", "steps": []},
        {"name": "lineage", "steps": [{"task": "rank_rollup", "thresholds": THRESHOLDS, "mode": "lineage"}]},
        {"name": "distribution", "steps": [{"task": "rank_rollup", "thresholds": THRESHOLDS, "mode": "distribution"}]},
        {
            "name": "regional",
            "steps": [
                {"task": "class_masking", "taxa_list": "regional.txt"},
                {"task": "rank_rollup", "thresholds": THRESHOLDS},
            ],
        },
    ]
    (tmp_path / "pipelines.json").write_text(json.dumps(pipelines))
    return tmp_path


def write_truth(path, labels, column="label"):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([column, "note"])
        writer.writerows([label, ""] for label in labels)


def evaluate_args(files, *extra, truth="truth.csv", values=("--scores", "scores.npy")):
    return [
        "evaluate",
        "--taxonomy",
        str(files / "taxonomy.csv"),
        "--id-column",
        "id",
        "--category-map",
        str(files / "labels.json"),
        values[0],
        str(files / values[1]),
        "--ground-truth",
        str(files / truth),
        "--pipelines",
        str(files / "pipelines.json"),
        "--output-dir",
        str(files / "out"),
        *extra,
    ]


def calibrate_args(files, *extra):
    return [
        "calibrate",
        "--taxonomy",
        str(files / "taxonomy.csv"),
        "--id-column",
        "id",
        "--category-map",
        str(files / "labels.json"),
        "--scores",
        str(files / "scores.npy"),
        "--ground-truth",
        str(files / "truth.npy"),
        "--output",
        str(files / "config.json"),
        *extra,
    ]


def test_evaluate_writes_metrics_report_and_figures(files, capsys):
    assert main(evaluate_args(files)) == 0
    out = files / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert [p["name"] for p in metrics["pipelines"]] == ["baseline", "lineage", "distribution", "regional"]
    for pipeline in metrics["pipelines"]:
        for key in (
            "name",
            "n",
            "accuracy",
            "baseline_accuracy",
            "coverage",
            "precision",
            "changed",
            "corrected",
            "regressed",
            "generalized",
            "hierarchical_precision",
            "hierarchical_recall",
            "hierarchical_f1",
            "mistake_severity",
            "confidence_bins",
        ):
            assert key in pipeline, key
        assert pipeline["n"] == N_ROWS
        assert sum(pipeline["coverage"].values()) == pytest.approx(1.0)
    baseline, lineage = metrics["pipelines"][:2]
    assert baseline["changed"] == 0 and baseline["accuracy"] == baseline["baseline_accuracy"]
    assert "risk_coverage" in lineage and "risk_coverage" not in baseline
    assert set(lineage["risk_coverage"]) == {"species", "genus", "family"}

    # the same numbers as the core called directly
    category_map = CategoryMap(LABELS, read_taxonomy(files / "taxonomy.csv", id_column="id"))
    truth = category_map.class_taxa[np.load(files / "truth.npy")]
    rolled = rank_rollup(np.load(files / "scores.npy"), category_map, thresholds=THRESHOLDS)
    correct = category_map.taxonomy.is_ancestor_or_self(rolled.taxon, truth)
    assert lineage["accuracy"] == pytest.approx(correct.mean())
    assert lineage["changed"] == int(rolled.changed.sum())
    base_ok = category_map.taxonomy.is_ancestor_or_self(rolled.source_taxon, truth)
    assert baseline["accuracy"] == pytest.approx(base_ok.mean())
    assert metrics["mode_disagreement"][0]["lineage"] == "lineage"

    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(PNGS)
    assert "<table>" in html and "regional" in html
    for name in PNGS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lineage" in capsys.readouterr().out


def test_a_second_evaluation_in_the_same_folder_leaves_no_figure_of_the_first(files, capsys):
    assert main(evaluate_args(files)) == 0
    assert all((files / "out" / name).exists() for name in PNGS)
    capsys.readouterr()
    (files / "pipelines.json").write_text(json.dumps([{"name": "baseline", "steps": []}]))  # no roll-up
    assert main(evaluate_args(files)) == 0
    written = capsys.readouterr().err
    left = sorted(p.name for p in (files / "out").iterdir())
    assert "risk_coverage.png" not in written and "mode_disagreement.png" not in left
    assert (files / "out" / "report.html").read_text().count("data:image/png;base64,") == len(left) - 2


def test_calibrate_checks_its_output_before_any_work(files, capsys):
    args = calibrate_args(files, "--output-dir", str(files / "report"))
    args[args.index("--output") + 1] = str(files / "missing" / "config.json")
    assert main(args) == 2
    assert "--output=" in capsys.readouterr().err
    assert not (files / "report").exists()


def test_evaluate_class_indices_and_logits_give_the_same_metrics(files):
    assert main(evaluate_args(files)) == 0
    by_csv = json.loads((files / "out" / "metrics.json").read_text())
    assert main(evaluate_args(files, truth="truth.npy", values=("--logits", "logits.npy"))) == 0
    by_npy = json.loads((files / "out" / "metrics.json").read_text())
    for a, b in zip(by_csv["pipelines"], by_npy["pipelines"], strict=True):
        assert a["accuracy"] == pytest.approx(b["accuracy"], abs=2 / N_ROWS)  # softmax in float32 may flip a tie
        assert a["coverage"].keys() == b["coverage"].keys()


def test_evaluate_adds_the_other_mode_for_the_comparison_when_none_is_given(files):
    one = [{"name": "only lineage", "steps": [{"task": "rank_rollup", "thresholds": THRESHOLDS}]}]
    (files / "pipelines.json").write_text(json.dumps(one))
    assert main(evaluate_args(files)) == 0
    metrics = json.loads((files / "out" / "metrics.json").read_text())
    assert [p["name"] for p in metrics["pipelines"]] == ["only lineage"]
    (pair,) = metrics["mode_disagreement"]
    assert pair["counterpart_added"] and pair["distribution"] == "only lineage (distribution mode)"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda f: write_truth(f / "truth.csv", ["Vanessa cardui"] * (N_ROWS - 3) + ["Nope", "Nada", "Vanessa"]),
            "2 of 800 ground-truth rows resolve to no taxon",
        ),
        (
            lambda f: write_truth(f / "truth.csv", ["Vanessa cardui"] * 10),
            "the ground truth has 10 rows but the scores have 800",
        ),
        (lambda f: write_truth(f / "truth.csv", ["Vanessa cardui"] * N_ROWS, column="taxon"), "'label' column"),
        (lambda f: np.save(f / "scores.npy", np.full((N_ROWS, len(LABELS)), np.nan)), "scores[0, 0]=nan"),
        (lambda f: np.save(f / "scores.npy", np.ones((N_ROWS, 3)) / 3), "the category map has 7 classes"),
        (
            lambda f: (f / "pipelines.json").write_text(
                json.dumps(
                    [
                        {"name": "a", "steps": []},
                        {"name": "b", "steps": [{"task": "rank_rollup", "thresholds": {"genus": 1.5}}]},
                    ]
                )
            ),
            "pipelines[1].steps[0].thresholds.genus=1.5",
        ),
        (
            lambda f: (f / "pipelines.json").write_text(
                '[{"name": "a", "steps": [{"task": "rank_rollup"}, '
                '{"task": "class_masking", "taxa_list": "regional.txt"}]}]'
            ),
            "pipelines[0].steps[1].task='class_masking'",
        ),
        (lambda f: (f / "pipelines.json").write_text("[{"), "not valid JSON"),
        (  # read as skipped, every later label was one row off (wrong accuracy, exit 0)
            lambda f: (f / "truth.csv").write_text("label\nVanessa\n\n" + "Vanessa\n" * (N_ROWS - 2)),
            "truth.csv:3: label='': every row needs a taxon name or id",
        ),
    ],
)
def test_evaluate_bad_input_exits_2_with_one_line(files, capsys, setup, message):
    setup(files)
    assert main(evaluate_args(files)) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("taxopost: error:") and "\n" not in error
    assert message in error
    assert not (files / "out" / "metrics.json").exists()


def test_a_one_column_ground_truth_ends_at_its_trailing_blank_lines(files):
    (files / "truth.csv").write_text("label\n" + "Vanessa\n" * N_ROWS + "\n\n")
    assert main(evaluate_args(files)) == 0


def test_evaluate_refuses_an_input_that_its_output_dir_writes(files, capsys):
    (files / "out").mkdir()
    (files / "out" / "metrics.json").write_text((files / "pipelines.json").read_text())
    args = evaluate_args(files)
    args[args.index("--pipelines") + 1] = str(files / "out" / "metrics.json")
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert "error: --pipelines=" in error and "is the metrics.json that --output-dir" in error
    assert sorted(p.name for p in (files / "out").iterdir()) == ["metrics.json"]


def test_a_failed_evaluation_leaves_the_previous_report_whole(files, capsys, monkeypatch):
    """Files were written one by one: a failure after metrics.json left a new metrics.json and
    new figures beside the old report.html."""
    from taxopost.errors import InputError
    from taxopost.evaluation import report

    out = files / "out"
    assert main(evaluate_args(files)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (files / "pipelines.json").write_text(json.dumps([{"name": "baseline", "steps": []}]))

    def fails(data):
        raise InputError("figure", "test", "cannot be drawn")

    monkeypatch.setitem(report.EVALUATION_FIGURES, "accuracy_by_confidence.png", ("title", fails))
    assert main(evaluate_args(files)) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()
    (out / "risk_coverage.png").unlink()
    (out / "risk_coverage.png").mkdir()  # a folder where a file goes: refused before any work
    assert main(evaluate_args(files)) == 2
    assert "holds a folder named 'risk_coverage.png' where the report writes a file" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == {name: data for name, data in before.items() if name != "risk_coverage.png"}


def test_calibrate_refuses_an_output_that_its_output_dir_writes(files, capsys):
    """``--output cal/calibration.json --output-dir cal``: the report replaced the config just written."""
    args = calibrate_args(files, "--output-dir", str(files / "cal"))
    args[args.index("--output") + 1] = str(files / "cal" / "calibration.json")
    (files / "cal").mkdir()
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert "error: --output=" in error and "is the calibration.json that --output-dir" in error
    assert "\n" not in error and not any((files / "cal").iterdir())


def test_calibrate_writes_its_report_all_or_none(files, capsys):
    (files / "cal" / "calibration.png").mkdir(parents=True)
    assert main(calibrate_args(files, "--output-dir", str(files / "cal"))) == 2
    assert "holds a folder named 'calibration.png' where the report writes a file" in capsys.readouterr().err
    assert [p.name for p in (files / "cal").iterdir()] == ["calibration.png"] and not (files / "config.json").exists()


def test_evaluate_needs_exactly_one_of_scores_and_logits(files, capsys):
    assert main([*evaluate_args(files), "--logits", str(files / "logits.npy")]) == 2
    assert "exactly one of --scores" in capsys.readouterr().err


def test_calibrate_writes_a_platform_config_and_a_report(files, capsys):
    assert main(calibrate_args(files, "--target-precision", "0.85", "--output-dir", str(files / "cal"))) == 0
    config = json.loads((files / "config.json").read_text())
    assert set(config) == {"thresholds", "order", "mode"}
    assert RankRollupConfig.model_validate(config).mode == "lineage"
    report = json.loads((files / "cal" / "calibration.json").read_text())
    assert report["config"] == config and report["delta"] == 0.1
    assert report["n_calibration"] == N_ROWS // 2
    assert "data:image/png;base64," in (files / "cal" / "report.html").read_text()
    assert (files / "cal" / "calibration.png").exists()
    assert "test prec." in capsys.readouterr().out


def test_calibrate_per_rank_targets_mode_and_order(files):
    args = calibrate_args(
        files,
        "--target-precision",
        "0.8",
        "--target-precision",
        "genus=0.85",
        "--mode",
        "distribution",
        "--order",
        "genus,family",
        "--seed",
        "3",
        "--calibration-fraction",
        "0.6",
        "--output-dir",
        str(files / "cal"),
    )
    assert main(args) == 0
    report = json.loads((files / "cal" / "calibration.json").read_text())
    assert [(r["rank"], r["target"]) for r in report["ranks"]] == [("genus", 0.85), ("family", 0.8)]
    assert report["mode"] == "distribution" and report["n_calibration"] == 480 and report["seed"] == 3


def test_calibrate_unreachable_target_writes_no_config_and_exits_1(files, capsys):
    assert main(calibrate_args(files, "--target-precision", "0.99999")) == 1
    assert "no rank reaches its target precision" in capsys.readouterr().err
    assert not (files / "config.json").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--delta", "1.5"), "delta=1.5"),
        (("--target-precision", "genus"), "target_precision.species='genus'"),
        (("--target-precision", "0.9", "--target-precision", "0.8"), "--target-precision='0.8'"),
        (("--target-precision", "0.9", "--target-precision", "tribe=0.8"), "not in the order"),
        (("--target-precision", "abc", "--target-precision", "genus=0.8"), "target_precision.species='abc'"),
        (("--seed", "-1"), "seed=-1"),
        (("--calibration-fraction", "1"), "calibration_fraction=1.0"),
        (("--mode", "both"), "mode='both'"),
        (("--order", "family,genus"), "order="),
    ],
)
def test_calibrate_bad_options_exit_2(files, capsys, extra, message):
    assert main(calibrate_args(files, *extra)) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
