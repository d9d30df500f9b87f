"""The command-line contract of `taxopost rollup` and `taxopost mask`, on small files and real data."""

from __future__ import annotations

import csv
import json
import os
import stat

import numpy as np
import pytest

from taxopost.cli import main

TAXONOMY = """order,family,genus,species
Lepidoptera,Nymphalidae,Vanessa,Vanessa atalanta
Lepidoptera,Nymphalidae,Vanessa,Vanessa cardui
Lepidoptera,Nymphalidae,Vanessa,Vanessa itea
Lepidoptera,Nymphalidae,Danaus,Danaus plexippus
Lepidoptera,Erebidae,Catocala,Catocala ilia
"""
LABELS = ["Vanessa atalanta", "Vanessa cardui", "Vanessa itea", "Danaus plexippus", "Catocala ilia"]
SCORES = np.array(
    [
        [0.5, 0.2, 0.1, 0.1, 0.1],  # Antenna's case: genus Vanessa at 0.8
        [0.9, 0.05, 0.02, 0.02, 0.01],  # confident: unchanged
        [0.3, 0.05, 0.05, 0.3, 0.3],  # no species or genus clears: family Nymphalidae at 0.7
    ],
    dtype=np.float32,
)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY)
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    np.save(tmp_path / "scores.npy", SCORES)
    return tmp_path


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def rollup_args(files, *extra):
    return [
        "rollup",
        "--taxonomy", str(files / "taxonomy.csv"),
        "--category-map", str(files / "labels.json"),
        "--scores", str(files / "scores.npy"),
        "--output", str(files / "out.csv"),
        *extra,
    ]  # fmt: skip


def mask_args(files, output: str, scores_output: str) -> list[str]:
    """A mask run on a regional list of Vanessa cardui and the genus Danaus."""
    (files / "regional.txt").write_text("Vanessa cardui\nDanaus\n")
    return [
        "mask",
        "--taxonomy", str(files / "taxonomy.csv"),
        "--category-map", str(files / "labels.json"),
        "--scores", str(files / "scores.npy"),
        "--taxa-list", str(files / "regional.txt"),
        "--output", output,
        "--output-scores", scores_output,
    ]  # fmt: skip


def test_rollup_writes_one_row_per_input_row_with_the_contract_columns(files):
    assert main(rollup_args(files)) == 0
    rows = read_csv(files / "out.csv")
    assert [row["row"] for row in rows] == ["0", "1", "2"]
    assert list(rows[0])[:8] == [
        "row", "source_taxon", "source_rank", "source_score", "taxon", "rank", "score", "changed",
    ]  # fmt: skip
    assert (rows[0]["taxon"], rows[0]["rank"], rows[0]["changed"]) == ("Vanessa", "genus", "true")
    assert float(rows[0]["score"]) == pytest.approx(0.8)
    assert (rows[1]["taxon"], rows[1]["changed"]) == ("Vanessa atalanta", "false")
    assert (rows[2]["taxon"], rows[2]["rank"]) == ("Nymphalidae", "family")
    assert rows[0]["species_candidate"] == "Vanessa atalanta" and rows[0]["family_candidate"] == ""


def test_rollup_thresholds_and_mode_options(files):
    assert main(rollup_args(files, "--threshold", "species=0.5", "--mode", "distribution")) == 0
    rows = read_csv(files / "out.csv")
    assert rows[0]["taxon"] == "Vanessa atalanta" and rows[0]["changed"] == "false"


def test_rollup_accepts_logits(files):
    np.save(files / "logits.npy", np.log(SCORES))
    args = rollup_args(files)
    args[args.index("--scores")] = "--logits"
    args[args.index("--logits") + 1] = str(files / "logits.npy")
    assert main(args) == 0
    assert read_csv(files / "out.csv")[0]["taxon"] == "Vanessa"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "genus=1.5"], r"--threshold='genus=1.5': must be in \(0, 1\]"),
        (["--threshold", "genre=0.5"], "unknown rank"),
        (["--threshold", "genus"], "expected RANK=VALUE"),
        (["--mode", "sideways"], "--mode='sideways'"),
        (["--order", "family,genus"], "fine to coarse"),
    ],
)
def test_rollup_bad_options_exit_2_with_one_line(files, capsys, extra, message):
    assert main(rollup_args(files, *extra)) == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error and len(error.splitlines()) == 1
    assert __import__("re").search(message, error), error


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.array([[np.nan, 0.5, 0.5, 0, 0]], np.float32), r"scores\[0, 0\]=nan: values must be finite"),
        (np.array([[-0.1, 0.6, 0.5, 0, 0]], np.float32), r"scores\[0, 0\]=-0.1.*must be >= 0"),
        (np.array([[0.6, 0.4, 0.1, 0, 0]], np.float32), r"scores\[0\].*must sum to at most 1"),
        (np.full((1, 4), 0.25, np.float32), "4 values but the category map has 5 classes"),
    ],
)
def test_rollup_bad_scores_name_the_file_and_value(files, capsys, matrix, message):
    np.save(files / "scores.npy", matrix)
    assert main(rollup_args(files)) == 2
    error = capsys.readouterr().err
    assert "scores.npy" in error and __import__("re").search(message, error), error
    assert not (files / "out.csv").exists()


def test_rollup_unresolved_labels_are_listed(files, capsys):
    (files / "labels.json").write_text(json.dumps([*LABELS[:4], "Nonexistent moth"]))
    assert main(rollup_args(files)) == 2
    assert "Nonexistent moth" in capsys.readouterr().err
    assert main(rollup_args(files, "--exclude-unresolved")) == 0


def test_mask_restricts_to_the_taxa_list(files):
    args = mask_args(files, str(files / "masked.csv"), str(files / "masked.npy"))
    (files / "regional.txt").write_text("# checklist\nVanessa cardui\nDanaus\n")  # the same list, with a comment
    assert main(args) == 0
    rows = read_csv(files / "masked.csv")
    assert rows[0]["taxon"] == "Danaus plexippus" or rows[0]["taxon"] == "Vanessa cardui"
    masked = np.load(files / "masked.npy")
    assert np.allclose(masked[:, [0, 2, 4]], 0)
    assert np.allclose(masked.sum(axis=1), 1, atol=1e-6)
    assert main([*args, "--no-reweight"]) == 0
    assert np.allclose(np.load(files / "masked.npy")[0], [0, 0.2, 0, 0.1, 0])


def test_mask_with_a_list_that_keeps_nothing_fails(files, capsys):
    (files / "regional.txt").write_text("Catocala\n")
    (files / "taxonomy.csv").write_text(TAXONOMY + "Lepidoptera,Erebidae,Zale,Zale lunata\n")
    (files / "regional.txt").write_text("Zale lunata\n")
    args = [
        "mask",
        "--taxonomy", str(files / "taxonomy.csv"),
        "--category-map", str(files / "labels.json"),
        "--scores", str(files / "scores.npy"),
        "--taxa-list", str(files / "regional.txt"),
        "--output", str(files / "masked.csv"),
    ]  # fmt: skip
    assert main(args) == 2
    assert "keeps none of the 5 classes" in capsys.readouterr().err
    assert not (files / "masked.csv").exists()


@pytest.mark.shared_data
def test_rollup_on_the_ami_label_space(shared_data, tmp_path):
    from taxopost.core.simulate import simulate_outputs
    from taxopost.io import read_category_map, read_taxonomy

    ami = shared_data / "ami"
    taxonomy = read_taxonomy(ami / "taxonomy_map.csv", id_column="speciesKey")
    category_map = read_category_map(ami / "ne-america_category_map.json", taxonomy)
    np.save(tmp_path / "scores.npy", simulate_outputs(category_map, 500, seed=3).scores())
    args = [
        "rollup",
        "--taxonomy", str(ami / "taxonomy_map.csv"), "--id-column", "speciesKey",
        "--category-map", str(ami / "ne-america_category_map.json"),
        "--scores", str(tmp_path / "scores.npy"),
        "--output", str(tmp_path / "out.csv"),
    ]  # fmt: skip
    assert main(args) == 0
    rows = read_csv(tmp_path / "out.csv")
    assert len(rows) == 500
    assert {row["rank"] for row in rows} <= {"species", "genus", "family"}
    assert any(row["changed"] == "true" for row in rows)


@pytest.mark.shared_data
def test_rollup_on_real_cifar100_outputs_with_superclass_above_class(shared_data, tmp_path):
    hierarchy = json.loads((shared_data / "cifar100" / "hierarchy.json").read_text())
    with open(tmp_path / "taxonomy.csv", "w") as handle:
        handle.write("superclass,class\n")
        for fine in hierarchy["fine_labels"]:
            handle.write(f"{hierarchy['coarse_of_fine'][fine]},{fine}\n")
    (tmp_path / "labels.json").write_text(json.dumps(hierarchy["fine_labels"]))
    args = [
        "rollup",
        "--taxonomy", str(tmp_path / "taxonomy.csv"),
        "--category-map", str(tmp_path / "labels.json"),
        "--scores", str(shared_data / "cifar100" / "densenet-bc-100_cifar100_test_predictions.npz"),
        "--threshold", "class=0.8", "--threshold", "superclass=0.6",
        "--output", str(tmp_path / "out.csv"),
    ]  # fmt: skip
    assert main(args) == 0
    rows = read_csv(tmp_path / "out.csv")
    assert len(rows) == 10_000
    ranks = {row["rank"] for row in rows}
    assert ranks == {"class", "superclass"}
    rolled = [row for row in rows if row["changed"] == "true"]
    assert all(row["rank"] == "superclass" and float(row["score"]) >= 0.6 for row in rolled)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rollup", "--taxonomy", "x.csv"], "Missing option '--output'"),
        (["rollup", "--bogus"], "No such option '--bogus'"),
        (["jobs", "show", "abc"], "'abc' is not a valid integer"),
        (["nosuch"], "No such command 'nosuch'"),
    ],
)
def test_usage_errors_exit_2_with_the_reason_and_no_traceback(capsys, argv, message):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{dir}", "is a folder; give a file name"),
        ("{dir}/a-file/out.csv", "is a file, not a folder"),
        ("{dir}/missing/out.csv", "the folder does not exist"),
        ("/proc/out.csv", "cannot be written there"),
    ],
)
def test_an_output_that_cannot_be_written_exits_2_with_one_line(files, capsys, output, message):
    (files / "a-file").write_text("")
    args = rollup_args(files)
    args[args.index("--output") + 1] = output.format(dir=files)
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "--output=" in error and len(error.splitlines()) == 1


def test_mask_writes_neither_output_when_one_cannot_be_written(files, capsys):
    assert main(mask_args(files, str(files / "masked.csv"), str(files / "missing" / "masked.npy"))) == 2
    assert "--output-scores=" in capsys.readouterr().err
    assert not (files / "masked.csv").exists()
    assert main(mask_args(files, str(files / "masked.csv"), str(files / "masked.csv.scores"))) == 2
    assert "cannot write '.scores' files: give a .npy file" in capsys.readouterr().err
    assert not (files / "masked.csv").exists() and not (files / "masked.csv.scores").exists()


def test_outputs_are_written_at_the_path_given_with_the_usual_permissions(files):
    previous = os.umask(0o022)
    try:
        assert main(mask_args(files, str(files / "masked.csv"), str(files / "masked.npy"))) == 0
    finally:
        os.umask(previous)
    assert np.load(files / "masked.npy").shape == SCORES.shape
    assert not (files / "masked.npy.npy").exists()
    for name in ("masked.csv", "masked.npy"):
        assert stat.S_IMODE((files / name).stat().st_mode) == 0o644
    assert sorted(p.name for p in files.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def _listing(folder):
    return sorted((path.name, path.stat().st_mtime_ns) for path in folder.rglob("*"))


def calibrate_args(files, output: str, *extra: str) -> list[str]:
    (files / "truth.csv").write_text("taxon\nVanessa atalanta\nVanessa atalanta\nDanaus plexippus\n")
    return [
        "calibrate", "--taxonomy", str(files / "taxonomy.csv"), "--category-map", str(files / "labels.json"),
        "--scores", str(files / "scores.npy"), "--ground-truth", str(files / "truth.csv"),
        "--target-precision", "0.9", "--output", output, *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (lambda f: [*rollup_args(f)[:-2], "--output", str(f / "taxonomy.csv")],
         "--output='{f}/taxonomy.csv': is the --taxonomy file this command reads"),
        (lambda f: [*rollup_args(f)[:5], "--scores", str(f / "scores.csv"), "--output", str(f / "scores.csv")],
         "--output='{f}/scores.csv': is the --scores file"),
        (lambda f: mask_args(f, str(f / "m.csv"), str(f / "scores.npy")),
         "--output-scores='{f}/scores.npy': is the --scores file"),
        (lambda f: calibrate_args(f, str(f / "labels.json")), "--output='{f}/labels.json': is the --category-map file"),
        # A folder that refuses new files is found before the other output (a report, the masked scores) is written.
        (lambda f: calibrate_args(f, "/proc/cal.json", "--output-dir", str(f / "report")),
         "--output='/proc/cal.json': cannot be written there"),
        (lambda f: mask_args(f, "/proc/m.csv", str(f / "m.npy")), "--output='/proc/m.csv': cannot be written there"),
    ],
)  # fmt: skip
def test_an_output_that_cannot_be_written_as_asked_is_refused_before_anything_is_written(files, capsys, args, refused):
    """Writing the result over the scores, taxonomy or category map it was computed from would lose them."""
    np.savetxt(files / "scores.csv", SCORES, delimiter=",")
    argv = args(files)
    before = _listing(files)
    assert main(argv) == 2
    assert refused.format(f=files) in capsys.readouterr().err
    assert _listing(files) == before
