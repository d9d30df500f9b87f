"""Occurrences offline: the consensus pipeline step, per-occurrence metrics, --groups on the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.core import CategoryMap, rank_rollup
from taxopost.core.consensus import consensus
from taxopost.core.simulate import simulate_tracks
from taxopost.errors import InputError
from taxopost.evaluation import (
    consensus_counts,
    evaluate_pipelines,
    occurrence_metrics,
    occurrence_rows,
    parse_pipelines,
    run_pipelines,
)
from taxopost.evaluation.calibration import split_rows
from taxopost.io import read_groups, read_taxonomy
from tests.evaluation.conftest import LABELS, TAXONOMY_CSV

CONSENSUS_ROLLUP = [{"task": "occurrence_consensus", "method": "mean"}, {"task": "rank_rollup"}]


def test_a_consensus_step_before_a_rollup_rolls_up_each_occurrences_combined_vector(moths_map, tmp_path):
    tracks = simulate_tracks(moths_map, 60, seed=1)
    scores = tracks.scores()
    pipelines = parse_pipelines([{"name": "consensus", "steps": CONSENSUS_ROLLUP}], moths_map, base_dir=tmp_path)
    _, [output] = run_pipelines(scores, moths_map, pipelines, groups=tracks.groups)
    combined = consensus(scores, tracks.groups, moths_map)
    expected = rank_rollup(combined.scores, moths_map).taxon[combined.row_group]
    np.testing.assert_array_equal(output.taxon, expected)
    assert len(set(zip(tracks.groups, output.taxon, strict=True))) == combined.group_ids.size  # one answer each


def test_min_detections_leaves_shorter_occurrences_as_they_are(moths_map, tmp_path):
    tracks = simulate_tracks(moths_map, 80, seed=2)
    scores = tracks.scores()
    steps = [{"task": "occurrence_consensus", "min_detections": 3}]
    pipelines = parse_pipelines([{"name": "c", "steps": steps}], moths_map, base_dir=tmp_path)
    _, [output] = run_pipelines(scores, moths_map, pipelines, groups=tracks.groups)
    sizes = np.bincount(tracks.groups)[tracks.groups]
    short = sizes < 3
    assert short.any() and (~short).any()
    np.testing.assert_array_equal(output.taxon[short], moths_map.class_taxa[scores[short].argmax(axis=1)])


def test_consensus_counts_say_what_is_combined_and_what_passes_through():
    groups = np.array([5, 5, 1, 2, 2, 2, 9, 5])  # 5: three rows, 1 and 9: one each, 2: three
    counts = consensus_counts(groups, 3, step=1)
    assert (counts.step, counts.min_detections, counts.combined, counts.rows_combined) == (1, 3, 2, 6)
    assert (counts.one_detection, counts.too_few, counts.rows_passed_through) == (2, 0, 2)
    fewer = consensus_counts(groups, 4)
    assert (fewer.combined, fewer.one_detection, fewer.too_few, fewer.rows_passed_through) == (0, 2, 2, 8)
    with pytest.raises(InputError, match=r"groups\[1\]=-1: group ids must be >= 0"):
        consensus_counts(np.array([0, -1]), 2)


def test_a_pipeline_with_a_consensus_step_needs_the_groups(moths_map, tmp_path):
    pipelines = parse_pipelines([{"name": "c", "steps": CONSENSUS_ROLLUP}], moths_map, base_dir=tmp_path)
    with pytest.raises(
        InputError, match=r"pipelines\[0\]\.steps\[0\]='occurrence_consensus': pipeline 'c' needs the occurrence"
    ):
        run_pipelines(np.full((3, len(LABELS)), 1 / len(LABELS)), moths_map, pipelines)


@pytest.mark.parametrize(
    ("step", "match"),
    [
        ({"weighting": "area"}, r"pipelines\[0\]\.steps\[0\]\.weighting='area': score files carry no boxes"),
        ({"source_algorithm": "m"}, r"pipelines\[0\]\.steps\[0\]\.source_algorithm='m': names a platform"),
        ({"method": "median"}, r"pipelines\[0\]\.steps\[0\]\.method='median'"),
    ],
)
def test_a_consensus_step_refuses_what_a_score_file_cannot_serve(moths_map, tmp_path, step, match):
    data = [{"name": "c", "steps": [{"task": "occurrence_consensus", **step}]}]
    with pytest.raises(InputError, match=match):
        parse_pipelines(data, moths_map, base_dir=tmp_path)


def test_an_occurrence_takes_its_row_with_the_highest_final_score_ties_to_the_first():
    groups = np.array([5, 5, 5, 2, 2, 9])
    scores = np.array([0.4, 0.7, 0.7, 0.9, 0.1, 0.3])
    np.testing.assert_array_equal(occurrence_rows(groups, scores), [3, 1, 5])


def test_occurrence_metrics_count_one_prediction_per_occurrence(moths_map):
    taxonomy = moths_map.taxonomy
    ilia, relicta, catocala, cardui = (
        taxonomy.find(n) for n in ("Catocala ilia", "Catocala relicta", "Catocala", "Vanessa cardui")
    )
    groups = np.array([0, 0, 0, 1, 1])
    truth = np.array([ilia, ilia, ilia, cardui, cardui])
    baseline = np.array([relicta, ilia, relicta, cardui, cardui])
    baseline_score = np.array([0.6, 0.5, 0.55, 0.9, 0.8])  # occurrence 0 takes relicta 0.6: wrong
    predicted = np.array([catocala, catocala, catocala, cardui, cardui])
    metrics = occurrence_metrics(truth, predicted, np.full(5, 0.8), baseline, baseline_score, groups, taxonomy)
    assert (metrics.n, metrics.accuracy, metrics.corrected, metrics.regressed) == (2, 1.0, 1, 0)
    assert metrics.coverage == {"species": 0.5, "genus": 0.5} and metrics.precision == {"species": 1.0, "genus": 1.0}
    message = r"groups='rows 3 and 4': one occurrence, two true taxa \('Vanessa cardui' and 'Catocala ilia'"
    with pytest.raises(InputError, match=message):
        occurrence_metrics(truth[[0, 1, 2, 3, 0]], predicted, np.ones(5), baseline, baseline_score, groups, taxonomy)
    with pytest.raises(InputError, match="groups=4: must hold one group id per row: 5 ids"):
        occurrence_metrics(truth, predicted, np.ones(5), baseline, baseline_score, groups[:4], taxonomy)


def test_evaluate_pipelines_reports_occurrences_beside_rows(moths_map, tmp_path):
    tracks = simulate_tracks(moths_map, 300, seed=3)
    truth = moths_map.class_taxa[tracks.true_class]
    data = [
        {"name": "baseline", "steps": []},
        {"name": "roll-up", "steps": [{"task": "rank_rollup"}]},
        {"name": "consensus roll-up", "steps": CONSENSUS_ROLLUP},
    ]
    pipelines = parse_pipelines(data, moths_map, base_dir=tmp_path)
    evaluation = evaluate_pipelines(tracks.scores(), moths_map, truth, pipelines, groups=tracks.groups)
    baseline, rollup, combined = (entry.occurrences for entry in evaluation.pipelines)
    assert baseline.n == rollup.n == combined.n == 300
    assert baseline.corrected == baseline.regressed == 0
    assert rollup.accuracy > baseline.accuracy and combined.accuracy > baseline.accuracy
    assert abs(sum(combined.coverage.values()) - 1) < 1e-9
    without = evaluate_pipelines(tracks.scores(), moths_map, truth, pipelines[:2])
    assert all(entry.occurrences is None for entry in without.pipelines)


def test_split_rows_with_groups_keeps_occurrences_whole():
    groups = np.repeat(np.arange(50), 3)[np.random.default_rng(0).permutation(150)]
    cal, test = split_rows(150, 0.5, seed=1, groups=groups)
    assert set(groups[cal]).isdisjoint(groups[test]) and len(set(groups[cal])) == 25
    np.testing.assert_array_equal(np.sort(np.r_[cal, test]), np.arange(150))
    with pytest.raises(InputError, match=r"leaves an empty split of the 1 occurrences \(the 31 rows' groups\)"):
        split_rows(31, 0.5, groups=np.zeros(31, dtype=int))


def test_split_rows_with_groups_depends_on_the_partition_not_on_its_ids():
    """A CSV's text ids and a .npy's integers (or the same occurrences numbered otherwise) name one
    partition: it splits the same for a seed."""
    groups = np.repeat(np.arange(40), 3)[np.random.default_rng(2).permutation(120)]
    renamed = np.random.default_rng(5).permutation(1000)[:40][groups] * 7 + 3  # other ids, same partition
    for seed in (0, 1, 2):
        for a, b in zip(split_rows(120, 0.5, seed=seed, groups=groups),
                        split_rows(120, 0.5, seed=seed, groups=renamed), strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)


def test_calibrate_with_groups_counts_an_occurrence_of_identical_rows_once(moths_map):
    """Ten identical frames are one witness, not ten: the bound on grouped rows is the bound on
    their occurrences (counted per row, it was ten times too tight: 0.2 of splits missed a
    target that delta = 0.1 promised)."""
    from taxopost.evaluation import calibrate

    rng = np.random.default_rng(3)
    n_occurrences, frames, n_classes = 1000, 10, moths_map.n_classes
    winner, top = rng.integers(0, n_classes, n_occurrences), rng.uniform(0.3, 1.0, n_occurrences)
    scores = np.repeat(((1 - top) / (n_classes - 1))[:, None], n_classes, axis=1)
    scores[np.arange(n_occurrences), winner] = top
    right = rng.random(n_occurrences) < top  # calibrated: the top score is the chance of being right
    truth = moths_map.class_taxa[np.where(right, winner, (winner + 1) % n_classes)].astype(np.int64)
    kwargs = {"target_precision": 0.9, "delta": 0.1, "order": ["species"], "seed": 5}
    alone = calibrate(scores, moths_map, truth, **kwargs)
    grouped = calibrate(
        np.repeat(scores, frames, axis=0), moths_map, np.repeat(truth, frames), **kwargs,
        groups=np.repeat(np.arange(n_occurrences) * 7, frames),
    )  # fmt: skip
    assert grouped.n_calibration == alone.n_calibration == 500 and grouped.one_per_occurrence
    assert alone.calibration.ranks[0].threshold is not None  # a rank reached: the counts below are not empty
    for a, g in zip(alone.calibration.ranks, grouped.calibration.ranks, strict=True):
        assert (g.rank, g.threshold, g.n_accepted, g.n_errors) == (a.rank, a.threshold, a.n_accepted, a.n_errors)
        np.testing.assert_array_equal(g.bound, a.bound)
        np.testing.assert_array_equal(g.accepted, a.accepted)
    assert grouped.n_test == alone.n_test * frames  # the held-out figures count every row


# -- files and the command line ------------------------------------------------------------------


def test_read_groups_from_npy_and_from_a_csv_of_keys(tmp_path):
    np.save(tmp_path / "g.npy", np.array([3, 3, 1]))
    np.testing.assert_array_equal(read_groups(tmp_path / "g.npy"), [3, 3, 1])
    (tmp_path / "g.csv").write_text("image,occurrence\na,occ-9\nb,occ-2\nc,occ-9\n")
    np.testing.assert_array_equal(read_groups(tmp_path / "g.csv"), [0, 1, 0])
    (tmp_path / "one.csv").write_text("track\n7\n7\n")
    np.testing.assert_array_equal(read_groups(tmp_path / "one.csv"), [0, 0])
    (tmp_path / "cased.csv").write_text("image,Occurrence\na,x\nb,y\nc,x\n")
    np.testing.assert_array_equal(read_groups(tmp_path / "cased.csv"), [0, 1, 0])


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("g.npy", np.array([0, -2]), r"groups\[1\]=-2: occurrence ids must be >= 0"),
        ("g.npy", np.array([1.0, 0.5]), r"groups\[1\]=0.5: not an integer"),
        ("g.npy", np.array([1.0, np.nan]), r"groups\[1\]=nan: not an integer"),
        ("g.npy", np.array([0.0, 1.0]), r"groups='float64 array of shape \(2,\)': expected a 1-D array of integers"),
        ("g.npy", np.array([0, 2**63 + 5], dtype=np.uint64), r"groups\[1\]=9223372036854775813: too large"),
        ("g.npz", {"scores": np.eye(2), "ground_truth": np.array([0, 1])}, r"no array for groups: expected one named"),
        ("g.npy", np.array([0, 1, 2]), r"rows=3: the groups file has 3 ids but the scores have 2 rows"),
        ("g.csv", "image,track\na,1\nb,2\n", r"column='occurrence': the groups file needs an 'occurrence' or 'group'"),
        ("g.csv", "occurrence\n1\n\n \n", r"occurrence='': every row needs an occurrence id"),
        ("g.csv", "occ-1\nocc-2\n", r"has 1 ids but the scores have 2 rows \(its first line, 'occ-1', is read as"),
    ],
)
def test_read_groups_refuses_bad_files_naming_them(tmp_path, name, content, match):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    else:
        np.save(path, content)
    with pytest.raises(InputError, match=match) as caught:
        read_groups(path, n_rows=2)
    assert str(path) in str(caught.value)


def test_read_groups_reads_a_blank_line_amid_a_one_column_file_as_an_empty_id(tmp_path):
    """Skipped, it shifted every later id by one row (wrong metrics, or a row-count error naming
    no line); blank lines at the end are the end, and in a file of more columns a blank line is no row."""
    path = tmp_path / "g.csv"
    for text, line in [("occurrence\na\n\nb\n", 3), ("occurrence\na\n\n\nb\n", 3), ('occurrence\na\n""\n', 3),
                       ("image,occurrence\n1,a\n,\n2,b\n", 3)]:  # fmt: skip
        path.write_text(text)
        with pytest.raises(InputError, match=rf"g\.csv:{line}: occurrence='': every row needs an occurrence id"):
            read_groups(path)
    path.write_text("occurrence\na\nb\n\n\n")
    np.testing.assert_array_equal(read_groups(path, n_rows=2), [0, 1])
    path.write_text("image,occurrence\n1,a\n\n2,b\n")
    np.testing.assert_array_equal(read_groups(path, n_rows=2), [0, 1])


@pytest.fixture
def track_files(tmp_path):
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY_CSV)
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    category_map = CategoryMap(LABELS, read_taxonomy(tmp_path / "taxonomy.csv", id_column="id"))
    tracks = simulate_tracks(category_map, 150, seed=4)
    np.save(tmp_path / "scores.npy", tracks.scores())
    np.save(tmp_path / "truth.npy", tracks.true_class)
    np.save(tmp_path / "groups.npy", tracks.groups)
    data = [{"name": "roll-up", "steps": [{"task": "rank_rollup"}]}, {"name": "consensus", "steps": CONSENSUS_ROLLUP}]
    (tmp_path / "pipelines.json").write_text(json.dumps(data))
    return tmp_path


def _inputs(files):
    return [
        "--taxonomy", str(files / "taxonomy.csv"), "--id-column", "id", "--category-map", str(files / "labels.json"),
        "--scores", str(files / "scores.npy"), "--ground-truth", str(files / "truth.npy"),
    ]  # fmt: skip


def test_taxopost_evaluate_with_groups_writes_occurrence_metrics(track_files, capsys):
    out = track_files / "out"
    args = ["evaluate", *_inputs(track_files), "--pipelines", str(track_files / "pipelines.json")]
    assert main([*args, "--output-dir", str(out), "--groups", str(track_files / "groups.npy")]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for pipeline in metrics["pipelines"]:
        occurrences = pipeline["occurrences"]
        assert set(occurrences) == {"n", "accuracy", "coverage", "precision", "corrected", "regressed"}
        assert occurrences["n"] == 150 and pipeline["n"] > 150
    rollup, combined = metrics["pipelines"]
    sizes = np.bincount(np.load(track_files / "groups.npy"))
    several, single = int((sizes >= 2).sum()), int((sizes == 1).sum())
    assert "consensus" not in rollup
    assert combined["consensus"] == [
        {"step": 0, "min_detections": 2, "combined": several, "rows_combined": int(sizes[sizes >= 2].sum()),
         "one_detection": single, "too_few": 0, "rows_passed_through": single}
    ]  # fmt: skip
    assert 0 < combined["consensus"][0]["one_detection"] < combined["consensus"][0]["combined"]
    assert "Consensus steps" in (out / "report.html").read_text()
    counts = combined["consensus"][0]
    assert (
        f"consensus: consensus combined {counts['combined']:,} occurrences ({counts['rows_combined']:,} rows); "
        f"passed through {counts['one_detection']:,} of one detection and 0 of fewer than 2"
    ) in " ".join(capsys.readouterr().out.split())


def test_taxopost_evaluate_combines_the_top_k_rows_of_a_megadetector_file(tmp_path):
    """Classifications as MegaDetector's batch format keeps them (top-k pairs per detection)."""
    fox, wolf = [["0", 0.55], ["1", 0.3]], [["1", 0.6], ["2", 0.2]]
    box = {"category": "1", "conf": 0.9, "bbox": [0, 0, 0.5, 0.5]}
    images = [
        {"file": f"{i}.jpg", "detections": [{**box, "classifications": c}]} for i, c in enumerate([fox, fox, wolf, fox])
    ]
    batch = {
        "info": {"format_version": "1.5"}, "detection_categories": {"1": "animal"},
        "classification_categories": {"0": "fox", "1": "wolf", "2": "dog"}, "images": images,
    }  # fmt: skip
    (tmp_path / "md.json").write_text(json.dumps(batch))
    lineages = "family,genus,species\nCanidae,Vulpes,fox\nCanidae,Canis,wolf\nCanidae,Canis,dog\n"
    (tmp_path / "taxonomy.csv").write_text(lineages)
    (tmp_path / "truth.csv").write_text("label\nfox\nfox\nwolf\nwolf\n")
    (tmp_path / "groups.csv").write_text("occurrence\na\na\nb\nb\n")
    steps = [{"task": "occurrence_consensus"}, {"task": "rank_rollup"}]
    (tmp_path / "pipelines.json").write_text(json.dumps([{"name": "consensus", "steps": steps}]))
    args = ["evaluate", "--predictions", str(tmp_path / "md.json"), "--taxonomy", str(tmp_path / "taxonomy.csv")]
    args += ["--ground-truth", str(tmp_path / "truth.csv"), "--groups", str(tmp_path / "groups.csv")]
    args += ["--pipelines", str(tmp_path / "pipelines.json"), "--output-dir", str(tmp_path / "out")]
    assert main(args) == 0
    (pipeline,) = json.loads((tmp_path / "out" / "metrics.json").read_text())["pipelines"]
    assert pipeline["occurrences"]["n"] == 2 and pipeline["n"] == 4


def test_taxopost_evaluate_refuses_a_consensus_step_without_groups_and_bad_groups(track_files, capsys):
    args = ["evaluate", *_inputs(track_files), "--pipelines", str(track_files / "pipelines.json")]
    assert main([*args, "--output-dir", str(track_files / "out")]) == 2
    message = capsys.readouterr().err
    assert f"{track_files / 'pipelines.json'}: pipelines[" in message and "].steps[0]='occurrence_consensus'" in message
    assert "needs the occurrence of each row for this step (--groups FILE)" in message
    assert not (track_files / "out").exists()  # refused before the output folder was made
    np.save(track_files / "short.npy", np.zeros(3, dtype=np.int64))
    assert main([*args, "--output-dir", str(track_files / "o2"), "--groups", str(track_files / "short.npy")]) == 2
    assert "the groups file has 3 ids but the scores have" in capsys.readouterr().err


def test_taxopost_calibrate_with_groups_splits_whole_occurrences(track_files):
    config = track_files / "config.json"
    args = ["calibrate", *_inputs(track_files), "--target-precision", "0.8", "--output", str(config)]
    assert main([*args, "--groups", str(track_files / "groups.npy"), "--output-dir", str(track_files / "cal")]) == 0
    report = json.loads((track_files / "cal" / "calibration.json").read_text())
    groups = np.load(track_files / "groups.npy")
    cal, _ = split_rows(groups.size, 0.5, seed=0, groups=groups)
    assert report["n_calibration"] == np.unique(groups[cal]).size < cal.size  # one row per occurrence
    assert report["one_per_occurrence"] is True


def test_taxopost_refuses_an_occurrence_of_two_true_taxa_and_one_occurrence_to_split_leaving_no_folder(
    track_files, capsys
):
    truth = np.load(track_files / "truth.npy")
    groups = np.load(track_files / "groups.npy")
    other = int(np.flatnonzero(truth != truth[0])[0])
    mixed = groups.copy()
    mixed[other] = groups[0]  # a row of another individual put in the first row's occurrence
    np.save(track_files / "mixed.npy", mixed)
    args = ["evaluate", *_inputs(track_files), "--pipelines", str(track_files / "pipelines.json")]
    assert main([*args, "--output-dir", str(track_files / "out"), "--groups", str(track_files / "mixed.npy")]) == 2
    message = capsys.readouterr().err
    assert f"{track_files / 'mixed.npy'}: groups='rows 0 and {other}': one occurrence, two true taxa" in message
    assert not (track_files / "out").exists()

    np.save(track_files / "one.npy", np.zeros(groups.size, dtype=np.int64))
    np.save(track_files / "truth.npy", np.full(groups.size, truth[0]))  # one individual: one true taxon
    args = ["calibrate", *_inputs(track_files), "--target-precision", "0.8", "--output", str(track_files / "c.json")]
    assert main([*args, "--groups", str(track_files / "one.npy"), "--output-dir", str(track_files / "cal")]) == 2
    assert f"leaves an empty split of the 1 occurrences (the {groups.size} rows' groups)" in capsys.readouterr().err
    assert not (track_files / "cal").exists() and not (track_files / "c.json").exists()


def test_taxopost_calibrate_refuses_an_occurrence_of_two_true_taxa_as_evaluate_does(track_files, capsys):
    """One row drawn per occurrence stands for all its rows: calibrating on mixed occurrences
    would state a guarantee on rows it never saw."""
    truth = np.load(track_files / "truth.npy")
    groups = np.load(track_files / "groups.npy")
    other = int(np.flatnonzero(truth != truth[0])[0])
    groups[other] = groups[0]
    np.save(track_files / "mixed.npy", groups)
    extra = ["--groups", str(track_files / "mixed.npy")]
    args = ["evaluate", *_inputs(track_files), "--pipelines", str(track_files / "pipelines.json")]
    assert main([*args, *extra, "--output-dir", str(track_files / "out")]) == 2
    refused = capsys.readouterr().err
    args = ["calibrate", *_inputs(track_files), "--target-precision", "0.8", "--output", str(track_files / "c.json")]
    assert main([*args, *extra, "--output-dir", str(track_files / "cal")]) == 2
    assert capsys.readouterr().err == refused
    assert f"{track_files / 'mixed.npy'}: groups='rows 0 and {other}': one occurrence, two true taxa" in refused
    assert not (track_files / "cal").exists() and not (track_files / "c.json").exists()
