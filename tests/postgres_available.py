"""Exit 0 when the PostgreSQL test server answers; otherwise 1 under CI=true, 3 elsewhere.

`make test` runs the database tests a second time on PostgreSQL; on a laptop without it the
second run is skipped with a message, in CI it is a failure.
"""

from __future__ import annotations

import os
import sys

import psycopg

url = os.environ.get("TAXOPOST_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
try:
    psycopg.connect(url, connect_timeout=5).close()
except psycopg.Error as exc:
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    print(f"PostgreSQL not reachable at {url}: {exc}".strip(), file=sys.stderr)
    sys.exit(1 if ci else 3)
sys.exit(0)
