"""Pipeline files and running pipelines: the same results as the core functions called directly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxopost.core.masking import class_masking
from taxopost.core.rollup import rank_rollup
from taxopost.core.simulate import simulate_outputs
from taxopost.errors import InputError
from taxopost.evaluation import parse_pipelines, read_pipelines, run_pipelines
from taxopost.evaluation.pipelines import count_passes
from taxopost.tasks.rank_rollup import RankRollupConfig

ROLLUP = {"task": "rank_rollup", "thresholds": {"species": 0.8, "genus": 0.6}, "mode": "lineage"}


@pytest.fixture
def taxa_list(tmp_path):
    (tmp_path / "lists").mkdir()
    path = tmp_path / "lists" / "regional.txt"
    path.write_text("Vanessa\nCatocala ilia\nNot a moth\n")
    return path


def test_read_pipelines_json_and_yaml_with_relative_taxa_list(tmp_path, taxa_list, moths_map):
    data = [
        {"name": "baseline", "steps": []},
        {"name": "masked roll-up", "steps": [{"task": "class_masking", "taxa_list": "lists/regional.txt"}, ROLLUP]},
    ]
    (tmp_path / "p.json").write_text(json.dumps(data))
    (tmp_path / "p.yaml").write_text(
        "- name: baseline\n  steps: []\n- name: masked roll-up\n  steps:\n"
        "  - {task: class_masking, taxa_list: lists/regional.txt}\n"
        "  - {task: rank_rollup, thresholds: {species: 0.8, genus: 0.6}, mode: lineage}\n"
    )
    for name in ("p.json", "p.yaml"):
        pipelines = read_pipelines(tmp_path / name, moths_map)
        assert [p.name for p in pipelines] == ["baseline", "masked roll-up"]
        mask, rollup = pipelines[1].steps
        assert mask.prepared.state.tolist() == [True, True, True, False, True, False, False]
        assert isinstance(rollup.config, RankRollupConfig) and rollup.config.order == ["species", "genus"]
        assert "Not a moth" in pipelines[1].warnings[0]


def test_a_rollup_step_without_config_takes_the_platform_defaults(moths_map):
    (pipeline,) = parse_pipelines([{"name": "r", "steps": [{"task": "rank_rollup"}]}], moths_map)
    assert pipeline.rollup == RankRollupConfig()


@pytest.mark.parametrize(
    ("data", "field", "value"),
    [
        ({"name": "x"}, "pipelines", "dict"),
        ([], "pipelines", "[]"),
        (["x"], "pipelines[0]", "'x'"),
        ([{"steps": []}], "pipelines[0].name", "None"),
        ([{"name": "a"}, {"name": "a"}], "pipelines[1].name", "'a'"),
        ([{"name": "a", "stpes": []}], "pipelines[0].stpes", ""),
        ([{"name": "a", "steps": {}}], "pipelines[0].steps", "dict"),
        ([{"name": "a", "steps": [{"task": "rollup"}]}], "pipelines[0].steps[0].task", "'rollup'"),
        (
            [{"name": "a", "steps": [{"task": "rank_rollup", "thresholds": {"species": 1.5}}]}],
            "pipelines[0].steps[0].thresholds.species",
            "1.5",
        ),
        (
            [{"name": "a", "steps": [{"task": "rank_rollup", "thresholds": {"specis": 0.8}}]}],
            "pipelines[0].steps[0].thresholds.specis",
            "'specis'",
        ),
        ([{"name": "a", "steps": [{"task": "rank_rollup", "mode": "both"}]}], "pipelines[0].steps[0].mode", "'both'"),
        (
            [{"name": "a", "steps": [{"task": "rank_rollup", "threshold": 0.5}]}],
            "pipelines[0].steps[0].threshold",
            "0.5",
        ),
        ([{"name": "a", "steps": [{"task": "class_masking"}]}], "pipelines[0].steps[0].taxa_list", ""),
        (
            [{"name": "a", "steps": [ROLLUP, {"task": "class_masking", "taxa_list": "x"}]}],
            "pipelines[0].steps[1].task",
            "'class_masking'",
        ),
        (
            [{"name": "a", "steps": [{"task": "class_masking", "taxa_list": "missing.txt"}]}],
            "pipelines[0].steps[0].taxa_list",
            "'missing.txt'",
        ),
        (  # a rank the label space has no taxon at: refused when read, naming the step
            [{"name": "a", "steps": [{"task": "rank_rollup", "thresholds": {"tribe": 0.5}}]}],
            "pipelines[0].steps[0].thresholds",
            "['tribe']: the taxonomy has no taxon at these ranks; its ranks: order, family, genus, species",
        ),
        (
            [
                {
                    "name": "a",
                    "steps": [
                        {
                            "task": "rank_rollup",
                            "thresholds": {"genus": 0.5, "kingdom": 0.5},
                            "order": ["genus", "kingdom"],
                        }
                    ],
                }
            ],
            "pipelines[0].steps[0].order",
            "['kingdom']",
        ),
    ],
)
def test_bad_pipelines_name_the_field_and_value(moths_map, data, field, value):
    with pytest.raises(InputError) as info:
        parse_pipelines(data, moths_map)
    assert info.value.field == field
    assert value in info.value.message


def test_rollup_then_mask_names_the_step_and_says_why(moths_map):
    with pytest.raises(InputError, match=r"pipelines\[0\]\.steps\[1\]\.task=.*steps\[0\] is a rank_rollup"):
        parse_pipelines([{"name": "a", "steps": [ROLLUP, {"task": "class_masking", "taxa_list": "x"}]}], moths_map)


def test_a_taxa_list_that_keeps_no_class_is_an_error(tmp_path, moths_map):
    (tmp_path / "none.txt").write_text("Not a moth\n")
    step = {"task": "class_masking", "taxa_list": "none.txt"}
    with pytest.raises(InputError, match=r"pipelines\[0\]\.steps\[0\]\.taxa_list"):
        parse_pipelines([{"name": "a", "steps": [step]}], moths_map, base_dir=tmp_path)


def test_read_pipelines_locates_errors_in_the_file(tmp_path, moths_map):
    path = tmp_path / "p.yaml"
    path.write_text("- name: a\n  steps: [{task: nope}]\n")
    with pytest.raises(InputError, match=rf"^{path}: pipelines\[0\]\.steps\[0\]\.task='nope'"):
        read_pipelines(path, moths_map)
    path.write_text("- name: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        read_pipelines(path, moths_map)


@pytest.mark.parametrize("logits", [False, True])
def test_run_pipelines_matches_the_core_called_directly(tmp_path, taxa_list, synthetic, logits):
    (tmp_path / "f0.txt").write_text("F0\nF1\nF2G0\n")
    outputs = simulate_outputs(synthetic, 500, seed=2)
    values = outputs.logits if logits else outputs.scores()
    thresholds = {"species": 0.7, "genus": 0.5, "family": 0.3}
    mask = {"task": "class_masking", "taxa_list": "f0.txt"}
    raw_mask = {**mask, "reweight": False}
    pipelines = parse_pipelines(
        [
            {"name": "baseline", "steps": []},
            {"name": "lineage", "steps": [{"task": "rank_rollup", "thresholds": thresholds}]},
            {
                "name": "distribution",
                "steps": [{"task": "rank_rollup", "thresholds": thresholds, "mode": "distribution"}],
            },
            {"name": "lineage, other thresholds", "steps": [{"task": "rank_rollup", "thresholds": {"genus": 0.9}}]},
            {"name": "mask", "steps": [mask]},
            {"name": "mask+lineage", "steps": [mask, {"task": "rank_rollup", "thresholds": thresholds}]},
            {
                "name": "raw mask+distribution",
                "steps": [raw_mask, {"task": "rank_rollup", "thresholds": thresholds, "mode": "distribution"}],
            },
            {"name": "mask+mask", "steps": [mask, raw_mask]},
        ],
        synthetic,
        base_dir=tmp_path,
    )
    calls = []
    baseline, results = run_pipelines(values, synthetic, pipelines, logits=logits, progress=calls.append)
    assert sum(calls) == 500 * count_passes(pipelines)
    by_name = {r.pipeline.name: r for r in results}
    keep = pipelines[4].steps[0].prepared.state

    direct = rank_rollup(values, synthetic, thresholds={"species": 0.5}, logits=logits)
    assert np.array_equal(baseline.taxon, direct.source_taxon)
    assert np.array_equal(by_name["baseline"].taxon, direct.source_taxon)
    for name, mode in (("lineage", "lineage"), ("distribution", "distribution")):
        expected = rank_rollup(values, synthetic, thresholds=thresholds, mode=mode, logits=logits)
        assert np.array_equal(by_name[name].taxon, expected.taxon)
        assert np.array_equal(by_name[name].rollup.accepted_rank, expected.accepted_rank)
    expected = rank_rollup(values, synthetic, thresholds={"genus": 0.9}, logits=logits)
    assert np.array_equal(by_name["lineage, other thresholds"].taxon, expected.taxon)

    masked = class_masking(values, synthetic, keep, logits=logits)
    assert np.array_equal(by_name["mask"].taxon, taxonomy_of(synthetic, masked.winner))
    expected = rank_rollup(masked.scores, synthetic, thresholds=thresholds)
    assert np.array_equal(by_name["mask+lineage"].taxon, expected.taxon)
    raw = class_masking(values, synthetic, keep, logits=logits, reweight=False)
    expected = rank_rollup(raw.scores, synthetic, thresholds=thresholds, mode="distribution")
    assert np.array_equal(by_name["raw mask+distribution"].taxon, expected.taxon)
    twice = class_masking(masked.scores, synthetic, keep, reweight=False)
    assert np.array_equal(by_name["mask+mask"].taxon, taxonomy_of(synthetic, twice.winner))


def taxonomy_of(category_map, classes):
    return category_map.class_taxa[classes]


def test_pipelines_that_differ_only_in_thresholds_share_one_pass(synthetic):
    pipelines = parse_pipelines(
        [
            {"name": str(t), "steps": [{"task": "rank_rollup", "thresholds": {"species": t, "genus": 0.5}}]}
            for t in (0.5, 0.7, 0.9)
        ],
        synthetic,
    )
    assert count_passes(pipelines) == 1
