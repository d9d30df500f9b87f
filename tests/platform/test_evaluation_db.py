"""The evaluation on the database: a capture set's model outputs against its identifications."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.demo import demo_corrections
from taxopost.errors import InputError
from taxopost.evaluation.evaluate import evaluate_pipelines
from taxopost.evaluation.pipelines import parse_pipelines
from taxopost.evaluation.report import evaluation_record
from taxopost.observations.evaluation import capture_set_rows, evaluate_capture_set
from taxopost.observations.identifications import import_identifications
from taxopost.taxa.models import Taxon

from .conftest import ROWS

pytestmark = pytest.mark.django_db

TRUTH = {
    "occ-confident": "Danaus plexippus",
    "occ-vanessa": "Vanessa cardui",
    "occ-catocala": "Catocala ilia",
    "occ-noctua": "Noctua pronuba",
}


@pytest.fixture
def identified(platform, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("occurrence,taxon\n" + "".join(f"{o},{t}\n" for o, t in TRUTH.items()))
    import_identifications(path)
    return platform


def test_rows_are_the_identified_model_outputs(identified):
    rows = capture_set_rows(identified)
    assert rows.scores.shape == (len(TRUTH), 8)
    expected = [row[3] for row in ROWS if row[0] in TRUTH]
    assert np.allclose(rows.scores, np.asarray(expected, dtype=np.float32))
    names = [rows.category_map.taxonomy.names[t] for t in rows.y_true]
    assert names == list(TRUTH.values())


def test_the_database_evaluation_equals_the_file_evaluation(identified):
    rows = capture_set_rows(identified)
    data = [{"name": "lineage", "steps": [{"task": "rank_rollup"}]}, {"name": "model", "steps": []}]
    from_db = evaluate_capture_set(identified, data)
    from_arrays = evaluate_pipelines(
        rows.scores, rows.category_map, rows.y_true, parse_pipelines(data, rows.category_map), groups=rows.groups
    )
    same = json.dumps(evaluation_record(from_db)["pipelines"], sort_keys=True, default=str)  # NaN != NaN
    assert same == json.dumps(evaluation_record(from_arrays)["pipelines"], sort_keys=True, default=str)
    lineage = from_db.pipelines[0].metrics.outcomes
    # Vanessa atalanta -> genus Vanessa is correct for Vanessa cardui: a correction.
    assert lineage.corrected == 1 and lineage.regressed == 0


def test_masking_steps_name_taxa_lists_stored_on_the_platform(identified):
    data = [{"name": "regional", "steps": [{"task": "class_masking", "taxa_list": "regional"}]}]
    assert evaluate_capture_set(identified, data).pipelines[0].metrics.n == len(TRUTH)
    with pytest.raises(InputError, match="pipelines\\[0\\].steps\\[0\\].taxa_list='nowhere': no taxa list"):
        evaluate_capture_set(identified, [{"name": "x", "steps": [{"task": "class_masking", "taxa_list": "nowhere"}]}])


def test_without_identifications_there_is_nothing_to_evaluate(platform):
    with pytest.raises(InputError, match="no identified occurrence"):
        capture_set_rows(platform)


def test_the_command_writes_the_report(identified, tmp_path, capsys):
    (tmp_path / "p.json").write_text(json.dumps([{"name": "lineage", "steps": [{"task": "rank_rollup"}]}]))
    args = ["evaluate-capture-set", "--capture-set", "station-1", "--output-dir", str(tmp_path / "out")]
    assert main([*args, "--pipelines", str(tmp_path / "p.json")]) == 0
    printed = capsys.readouterr().out
    assert f"station-1: {len(TRUTH):,} identified rows" in printed and "corrected" in printed
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [p["name"] for p in metrics["pipelines"]] == ["lineage"]
    assert main(args) == 0  # default pipelines: model, both modes, each taxa list + roll-up
    names = [p["name"] for p in json.loads((tmp_path / "out" / "metrics.json").read_text())["pipelines"]]
    assert names[:3] == ["model output", "roll-up (lineage)", "roll-up (distribution)"]
    assert "regional + roll-up" in names
    assert (tmp_path / "out" / "report.html").read_text().count("data:image/png;base64") >= 3


def test_the_demo_counts_corrections_as_the_evaluation_does(platform):
    ids = dict(Taxon.objects.values_list("name", "id"))
    truth = {1: ids["Vanessa cardui"], 2: ids["Danaus plexippus"], 3: ids["Catocala ilia"]}
    before = {1: (0.5, ids["Vanessa atalanta"], "species"), 2: (0.9, ids["Danaus plexippus"], "species")}
    after = {o: ((True, 0.6, o), ids[genus], "genus") for o, genus in [(1, "Vanessa"), (2, "Vanessa"), (3, "Catocala")]}
    outcome = demo_corrections(truth, before, after)  # occurrence 3 had no prediction before: wrong
    assert outcome.baseline_correct.tolist() == [False, True, False]
    assert outcome.corrected.tolist() == [True, False, True]
    assert outcome.regressed.tolist() == [False, True, False]


def test_the_command_refuses_a_pipelines_file_that_its_output_dir_writes(identified, tmp_path, capsys):
    """It would have replaced the pipelines with the metrics, as evaluate and calibrate refuse to."""
    (tmp_path / "out").mkdir()
    pipelines = tmp_path / "out" / "metrics.json"
    pipelines.write_text(json.dumps([{"name": "lineage", "steps": [{"task": "rank_rollup"}]}]))
    args = ["evaluate-capture-set", "--capture-set", "station-1", "--output-dir", str(tmp_path / "out")]
    assert main([*args, "--pipelines", str(pipelines)]) == 2
    assert "--pipelines=" in capsys.readouterr().err and json.loads(pipelines.read_text())[0]["name"] == "lineage"
