"""JSON nested past the parsers' recursion limit: exit 2 naming the file or option, never a traceback."""

from __future__ import annotations

import pytest

from taxopost.cli import main

DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"images": ' + DEEP + ', "info": {}, "detection_categories": {}}'


@pytest.mark.parametrize(
    ("name", "content", "args", "named"),
    [
        ("md.json", DEEP, ["rollup", "--predictions", "{f}", "--output", "{d}/out.json"], "{f}"),
        ("md.json", DEEP_OBJECT, ["rollup", "--predictions", "{f}", "--output", "{d}/out.json"], "{f}"),
        ("labels.json", DEEP, ["rollup", "--scores", "{d}/s.npy", "--category-map", "{f}", "--taxonomy", "{d}/t.csv",
                               "--output", "{d}/out.csv"], "{f}"),
        ("config.json", DEEP, ["rollup", "--scores", "{d}/s.npy", "--category-map", "{d}/labels.json", "--taxonomy",
                               "{d}/t.csv", "--config", "{f}", "--output", "{d}/out.csv"], "--config"),
        ("p.json", DEEP, ["evaluate", "--scores", "{d}/s.npy", "--category-map", "{d}/labels.json", "--taxonomy",
                          "{d}/t.csv", "--ground-truth", "{d}/g.npy", "--pipelines", "{f}", "--output-dir",
                          "{d}/report"], "{f}"),
    ],
)  # fmt: skip
def test_deep_json_is_refused_with_its_name(tmp_path, capsys, name, content, args, named):
    import numpy as np

    np.save(tmp_path / "s.npy", np.full((2, 2), 0.5, dtype=np.float32))
    np.save(tmp_path / "g.npy", np.zeros(2, dtype=np.int64))
    (tmp_path / "t.csv").write_text("genus,species\nA,A a\nA,A b\n")
    if name != "labels.json":
        (tmp_path / "labels.json").write_text('["A a", "A b"]')
    path = tmp_path / name
    path.write_text(content)
    before = sorted(tmp_path.iterdir())
    assert main([arg.format(f=path, d=tmp_path) for arg in args]) == 2
    error = capsys.readouterr().err
    assert "nested too deeply to read" in error and named.format(f=path) in error, error
    assert sorted(tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("option", [["--config", DEEP], ["--set", f"thresholds={DEEP}"]])
def test_a_deep_json_job_option_is_refused_before_the_database_is_read(capsys, option):
    assert main(["run", "rank_rollup", "--capture-set", "station-1", *option]) == 2
    error = capsys.readouterr().err
    assert "nested too deeply to read" in error and option[0] in error, error
