"""Settings read from the environment: a bad value names the variable and the value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from taxopost.settings import _positive


@pytest.mark.parametrize(("raw", "kind", "expected"), [("", float, 300.0), ("2.5", float, 2.5), (" 8 ", int, 8)])
def test_positive_settings_accept_positive_numbers(monkeypatch, raw, kind, expected):
    monkeypatch.setenv("TAXOPOST_X", raw)
    assert _positive("TAXOPOST_X", 300.0, kind) == expected


@pytest.mark.parametrize(
    ("raw", "kind", "word"),
    [("0", float, "number"), ("-1", float, "number"), ("abc", float, "number"), ("1.5", int, "integer")],
)
def test_positive_settings_name_the_variable_and_the_value(monkeypatch, raw, kind, word):
    monkeypatch.setenv("TAXOPOST_X", raw)
    with pytest.raises(ImproperlyConfigured, match=f"TAXOPOST_X='{raw}': must be a positive {word}"):
        _positive("TAXOPOST_X", 1.0, kind)


def test_the_command_reports_a_bad_setting_in_one_line(tmp_path):
    taxopost = Path(sys.executable).parent / "taxopost"
    env = {"PATH": "/usr/bin:/bin", "TAXOPOST_DATA_DIR": str(tmp_path), "TAXOPOST_JOB_STALE_SECONDS": "soon"}
    done = subprocess.run([str(taxopost), "jobs", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "taxopost: error: TAXOPOST_JOB_STALE_SECONDS='soon': must be a positive number"
