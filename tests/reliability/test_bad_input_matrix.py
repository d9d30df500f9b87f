"""The bad-input matrix through the command line: files, imports and job configs.

Every case must end with exit code 2 and one line naming what is wrong, and, where the
database is involved, leave every table exactly as it was (row counts and content hashes).
The API and admin entrances have their own matrix in their test packages.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxopost.cli import main

from .checksums import database_fingerprint

TAXONOMY = "order,family,genus,species\n" + "".join(
    f"Lepidoptera,{family},{genus},{species}\n"
    for family, genus, species in [
        ("Nymphalidae", "Vanessa", "Vanessa atalanta"),
        ("Nymphalidae", "Vanessa", "Vanessa cardui"),
        ("Nymphalidae", "Danaus", "Danaus plexippus"),
        ("Erebidae", "Catocala", "Catocala ilia"),
    ]
)
LABELS = ["Vanessa atalanta", "Vanessa cardui", "Danaus plexippus", "Catocala ilia"]
GOOD = np.array([[0.5, 0.3, 0.1, 0.1], [0.9, 0.05, 0.03, 0.02]], dtype=np.float32)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY)
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    np.save(tmp_path / "scores.npy", GOOD)
    (tmp_path / "list.txt").write_text("Vanessa\n")
    return tmp_path


def run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err.strip()


def assert_refused(code: int, error: str, *patterns: str) -> None:
    assert code == 2, error
    assert "Traceback" not in error
    lines = error.splitlines()
    assert len(lines) == 1 or all(line.startswith("taxopost: warning") for line in lines[:-1]), error
    for pattern in patterns:
        assert re.search(pattern, lines[-1]), f"{pattern!r} not in {lines[-1]!r}"


def rollup(files, **paths) -> list[str]:
    values = {"taxonomy": "taxonomy.csv", "category-map": "labels.json", "scores": "scores.npy"} | paths
    args = ["rollup", "--output", str(files / "out.csv")]
    for option, name in values.items():
        args += [f"--{option}", str(files / name)]
    return args


SCORE_CASES = {
    "nan": (np.array([[np.nan, 0.5, 0.25, 0.25]]), r"scores\[0, 0\]=nan: values must be finite"),
    "inf": (np.array([[np.inf, 0.5, 0.25, 0.25]]), r"scores\[0, 0\]=inf: values must be finite"),
    "negative": (np.array([[-0.2, 0.6, 0.3, 0.3]]), r"scores\[0, 0\]=-0.2.*must be >= 0"),
    "sum above": (np.array([[0.5, 0.3, 0.2, 0.1]]), r"scores\[0\]='sum=1.1'.*must sum to at most 1"),
    "percent": (np.array([[50.0, 30.0, 10.0, 5.0]]), r"scores\[0\]='sum=95'.*scores in percent"),
    "too long": (np.full((1, 5), 0.2), "has 5 values|5 values but the category map has 4 classes"),
    "too short": (np.full((1, 3), 1 / 3), "3 values but the category map has 4 classes"),
}


@pytest.mark.parametrize("case", SCORE_CASES)
def test_bad_scores_through_rollup_and_mask(files, capsys, case):
    matrix, pattern = SCORE_CASES[case]
    np.save(files / "bad.npy", matrix.astype(np.float32))
    assert_refused(*run(rollup(files, scores="bad.npy"), capsys), "bad.npy", pattern)
    mask = [*rollup(files, scores="bad.npy"), "--taxa-list", str(files / "list.txt")]
    mask[0] = "mask"
    assert_refused(*run(mask, capsys), "bad.npy", pattern)
    assert not (files / "out.csv").exists()


def test_rows_within_the_sum_tolerance_are_accepted(files, capsys):
    np.save(files / "near.npy", np.array([[0.5, 0.3, 0.1, 0.0995]], dtype=np.float32))
    assert run(rollup(files, scores="near.npy"), capsys)[0] == 0


TAXONOMY_CASES = {
    "cycle": (
        "taxonID,parentNameUsageID,scientificName,taxonRank\n1,2,Vanessa,genus\n2,1,Nymphalidae,family\n",
        "cycle|coarser",
    ),
    "parent finer than child": (
        "taxonID,parentNameUsageID,scientificName,taxonRank\n1,,Vanessa atalanta,species\n2,1,Vanessa,genus\n",
        "parent of 'Vanessa'='Vanessa atalanta': a parent must be coarser",
    ),
    "two lineages": (
        "family,genus\nNymphalidae,Vanessa\nErebidae,Vanessa\n",
        "one name with two lineages",
    ),
    "unknown rank": ("family,genre\nNymphalidae,Vanessa\n", "genre"),
    "duplicate": (
        "taxonID,parentNameUsageID,scientificName,taxonRank\n1,,Vanessa,genus\n1,,Danaus,genus\n",
        "given twice|appears twice",
    ),
    "malformed csv": ('family,genus\n"Nymphalidae,Vanessa\n', "bad.csv.*malformed CSV"),
    "truncated": ("order,family,genus,species\nLepidoptera,Nymphalidae,Vanes", "cells but the header has"),
}


@pytest.mark.parametrize("case", TAXONOMY_CASES)
def test_bad_taxonomies_through_rollup_and_import(files, capsys, db, case):
    content, pattern = TAXONOMY_CASES[case]
    (files / "bad.csv").write_text(content)
    assert_refused(*run(rollup(files, taxonomy="bad.csv"), capsys), pattern)
    before = database_fingerprint()
    assert_refused(*run(["import", "taxonomy", str(files / "bad.csv")], capsys), pattern)
    assert database_fingerprint() == before


LABEL_CASES = {
    "unresolved": (json.dumps([*LABELS[:3], "Nonexistent moth"]), "Nonexistent moth.*resolve to no taxon"),
    "duplicate": (json.dumps([*LABELS[:3], LABELS[0]]), "label='Vanessa atalanta': appears more than once"),
    "malformed json": ('["Vanessa atalanta", ', "not valid JSON"),
    "missing index": (json.dumps({LABELS[0]: 0, LABELS[1]: 2}), "indices must be exactly|0..1"),
}


@pytest.mark.parametrize("case", LABEL_CASES)
def test_bad_category_maps_through_rollup_and_import(files, capsys, db, case):
    content, pattern = LABEL_CASES[case]
    (files / "bad.json").write_text(content)
    assert_refused(*run(rollup(files, **{"category-map": "bad.json"}), capsys), "bad.json", pattern)
    assert run(["import", "taxonomy", str(files / "taxonomy.csv")], capsys)[0] == 0
    before = database_fingerprint()
    code, error = run(["import", "category-map", str(files / "bad.json"), "--algorithm", "m"], capsys)
    assert_refused(code, error, pattern)
    assert database_fingerprint() == before


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        (["--threshold", "genus=0"], r"--threshold='genus=0(\.0)?': must be in \(0, 1\]"),
        (["--threshold", "genus=1.01"], r"must be in \(0, 1\]"),
        (["--threshold", "genus=abc"], "genus"),
        (["--threshold", "tribus=0.5"], "tribus.*unknown rank"),
        (["--threshold", "tribe=0.5"], "tribe.*the taxonomy has no taxon at these ranks"),  # refused before any job
        (["--order", "family,genus", "--threshold", "genus=0.5", "--threshold", "family=0.5"], "fine to coarse"),
    ],
)
def test_bad_rollup_settings_through_the_cli_and_jobs(files, capsys, db, options, pattern):
    assert_refused(*run(rollup(files) + options, capsys), pattern)
    _load_platform(files, capsys)
    before = database_fingerprint()
    assert_refused(*run(["run", "rank_rollup", "--capture-set", "night-1", *options], capsys), pattern)
    assert database_fingerprint() == before


def _load_platform(files, capsys) -> None:
    predictions = files / "p.jsonl"
    predictions.write_text(
        "\n".join(
            json.dumps(
                {
                    "capture_set": "night-1",
                    "image": {"path": f"i{i}.jpg", "width": 100, "height": 100},
                    "bbox": [0, 0, 50, 50],
                    "algorithm": "m",
                    "scores": row.tolist(),
                }
            )
            for i, row in enumerate(GOOD)
        )
        + "\n"
    )
    for args in (
        ["import", "taxonomy", str(files / "taxonomy.csv")],
        ["import", "category-map", str(files / "labels.json"), "--algorithm", "m"],
        ["import", "predictions", str(predictions)],
    ):
        code, error = run(args, capsys)
        assert code == 0, error


@pytest.mark.parametrize(
    ("content", "pattern"),
    [("", "empty"), ("# only a comment\n", "empty"), ("Nonexistent\n", "keeps none|empty")],
)
def test_empty_and_all_excluding_taxa_lists(files, capsys, db, content, pattern):
    (files / "bad.txt").write_text(content)
    mask = [*rollup(files), "--taxa-list", str(files / "bad.txt")]
    mask[0] = "mask"
    assert_refused(*run(mask, capsys), pattern)
    _load_platform(files, capsys)
    before = database_fingerprint()
    assert_refused(*run(["import", "taxa-list", str(files / "bad.txt"), "--name", "x"], capsys), "empty")
    assert database_fingerprint() == before


def test_a_list_that_keeps_no_class_fails_the_masking_job_request(files, capsys, db):
    _load_platform(files, capsys)
    (files / "far.txt").write_text("Lepidoptera\n")
    extra = files / "extra.csv"
    extra.write_text("order,family\nTrichoptera,Limnephilidae\n")
    assert run(["import", "taxonomy", str(extra)], capsys)[0] == 0
    (files / "far.txt").write_text("Limnephilidae\n")
    assert run(["import", "taxa-list", str(files / "far.txt"), "--name", "far"], capsys)[0] == 0
    before = database_fingerprint()
    code, error = run(["run", "class_masking", "--capture-set", "night-1", "--taxa-list", "far"], capsys)
    assert_refused(code, error, "keeps none of the 4 classes")
    assert database_fingerprint() == before


@pytest.mark.parametrize(
    ("record", "pattern"),
    [
        ({"bbox": [0, 0, 500, 50]}, "lies outside its image"),
        ({"image": {"path": "x.jpg", "width": 100}, "bbox": [0, 0, 500, 50]}, None),  # no height: not checkable
        ({"image": {"path": "x.jpg", "width": -1, "height": 10}}, "image.width=-1"),
        ({"scores": [0.25] * 5}, "has 4 classes"),
    ],
)
def test_bad_prediction_records_are_refused_whole(files, capsys, db, record, pattern):
    _load_platform(files, capsys)
    base = {
        "capture_set": "night-2",
        "image": {"path": "new.jpg", "width": 100, "height": 100},
        "algorithm": "m",
        "scores": GOOD[0].tolist(),
    }
    path = files / "more.jsonl"
    path.write_text(json.dumps(base) + "\n" + json.dumps(base | {"detection": "second"} | record) + "\n")
    before = database_fingerprint()
    code, error = run(["import", "predictions", str(path)], capsys)
    if pattern is None:  # a box on an image of unknown size cannot be checked: accepted, counted
        assert code == 0, error
        return
    assert_refused(code, error, "more.jsonl:2", pattern)
    assert database_fingerprint() == before


def test_malformed_and_truncated_parquet_predictions(files, capsys, db):
    _load_platform(files, capsys)
    table = pa.table({"capture_set": ["n"], "image_path": ["a.jpg"], "algorithm": ["m"], "scores": [GOOD[0].tolist()]})
    pq.write_table(table, files / "p.parquet")
    data = (files / "p.parquet").read_bytes()
    (files / "cut.parquet").write_bytes(data[: len(data) - 20])
    before = database_fingerprint()
    assert_refused(*run(["import", "predictions", str(files / "cut.parquet")], capsys), "Parquet")
    assert database_fingerprint() == before


def test_an_image_without_size_is_skipped_and_counted_by_the_size_filter(files, capsys, db):
    _load_platform(files, capsys)
    base = {"capture_set": "night-1", "image": {"path": "nosize.jpg"}, "bbox": [0, 0, 5, 5], "algorithm": "m"}
    (files / "nosize.jsonl").write_text(json.dumps(base | {"scores": GOOD[0].tolist()}) + "\n")
    assert run(["import", "predictions", str(files / "nosize.jsonl")], capsys)[0] == 0
    assert main(["run", "small_size_filter", "--capture-set", "night-1"]) == 0
    from taxopost.jobs.models import Job

    job = Job.objects.latest("pk")
    assert job.metrics["skipped"]["no bbox or image size"] == 1
