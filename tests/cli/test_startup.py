"""Start-up: ``taxopost --help`` imports none of the heavy libraries, and deferred commands stay true to their help.

How fast it starts is measured in benchmarks/startup.py, not here.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import click
import pytest

from taxopost.cli.app import DEFERRED, DeferredCommand, build

HEAVY = ("numpy", "scipy", "matplotlib", "pyarrow", "pydantic", "numba", "httpx", "msgspec", "django.db")


def _modules_after(*args: str) -> set[str]:
    code = (
        "import sys, json; from taxopost.cli import main\n"
        "try:\n    main(json.loads(sys.argv[1]))\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(args))], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["jobs", "--help"], ["export", "occurrences", "--help"]])
def test_help_imports_no_heavy_library(args):
    loaded = _modules_after(*args)
    assert not [name for name in HEAVY if name in loaded]
    assert not [name for name in loaded if name.startswith("taxopost.") and name.split(".")[1] in ("core", "io")]


def test_a_deferred_command_imports_what_it_uses_when_it_runs():
    loaded = _modules_after("rollup", "--help")
    assert {"numpy", "taxopost.cli.files"} <= loaded
    assert not {"scipy", "matplotlib", "taxopost.cli.evaluate", "taxopost.cli.runs"} & loaded


@pytest.mark.parametrize("name", list(DEFERRED))
def test_each_deferred_short_help_is_its_command_help(name):
    command = build().commands[name]
    assert isinstance(command, DeferredCommand)
    real = command.real()
    assert real.name == name or isinstance(real, click.Group)
    first = inspect.cleandoc(real.help or "").split("\n\n")[0].replace("\n", " ")
    assert DEFERRED[name][1] == first
    assert command.get_short_help_str(200) == real.get_short_help_str(200)
