"""Shared fixtures: the real data in ../shared/data, found in place and never copied."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Nothing a test does may touch the user's own data folder (the embedded SQLite file lives there).
os.environ.setdefault("TAXOPOST_DATA_DIR", tempfile.mkdtemp(prefix="taxopost-tests-"))
if not os.environ.get("DATABASE_URL"):
    # A SQLite test database in a file, not Django's shared in-memory one: the browser tests' live
    # server and the embedded executor's background thread each open their own connection, and
    # SQLite fails concurrent writers of a shared-cache memory database ("table is locked")
    # instead of waiting for them.
    os.environ.setdefault("TAXOPOST_TEST_DATABASE", os.path.join(os.environ["TAXOPOST_DATA_DIR"], "test.sqlite3"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TAXOPOST_SHARED_DATA", REPO.parent / "shared" / "data"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(path: Path, what: str) -> Path:
    """Return ``path``; fail under CI=true when it is missing, skip otherwise (a user's machine)."""
    if not path.exists():
        message = f"{what} not found at {path}"
        if in_ci():
            pytest.fail(f"{message} (CI=true: required)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data (AMI moth label space, CIFAR-100 outputs, iNat sample)."""
    return require(SHARED_DATA, "the shared data folder")
