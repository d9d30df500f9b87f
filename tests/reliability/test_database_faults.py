"""The embedded database under faults: a read-only file and a held lock give a clear error
and leave the data unchanged. These run the real `taxopost` command in a subprocess."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import in_ci

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "taxopost" / "examples"
TAXOPOST = str(Path(sys.executable).with_name("taxopost"))


def taxopost(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    command = [TAXOPOST, *args]
    environment = {**os.environ, "TAXOPOST_DATA_DIR": str(data_dir), **env}
    environment.pop("DATABASE_URL", None)
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)


@pytest.fixture
def database(tmp_path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = taxopost(data_dir, "import", "taxonomy", str(EXAMPLES / "taxonomy.csv"))
    assert result.returncode == 0, result.stderr
    return data_dir


def taxa_lists(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "taxopost.sqlite3") as connection:
        return connection.execute("SELECT COUNT(*) FROM taxa_taxalist").fetchone()[0]


def _immutable(paths: list[Path], on: bool) -> bool:
    """chattr +i / -i: a read-only file even for root (who ignores permission bits)."""
    if shutil.which("chattr") is None:
        return False
    flag = "+i" if on else "-i"
    return subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True).returncode == 0


def test_a_read_only_database_gives_a_clear_error_and_changes_nothing(database):
    paths = [*database.iterdir(), database]
    if not _immutable(paths, True):
        message = "needs chattr to make the database file read-only (root ignores permission bits)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        result = taxopost(database, "import", "taxa-list", str(EXAMPLES / "taxa_list.txt"), "--name", "regional")
    finally:
        _immutable(paths, False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("taxopost: error: database ") and "taxopost.sqlite3" in error, error
    assert "read-only" in error or "cannot be opened" in error, error
    assert taxa_lists(database) == 0


def test_a_locked_database_gives_a_clear_error_after_the_timeout(database):
    holder = sqlite3.connect(database / "taxopost.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = taxopost(
            database, "import", "taxa-list", str(EXAMPLES / "taxa_list.txt"), "--name", "regional",
            TAXOPOST_SQLITE_TIMEOUT="1",
        )  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1, result.stderr
    assert "database is locked" in result.stderr and "another process holds a write lock" in result.stderr
    assert "Traceback" not in result.stderr
    assert taxa_lists(database) == 0
    again = taxopost(database, "import", "taxa-list", str(EXAMPLES / "taxa_list.txt"), "--name", "regional")
    assert again.returncode == 0, again.stderr
    assert taxa_lists(database) == 1
