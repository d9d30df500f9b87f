"""What the project roles cost an API read: a viewer's requests against a superuser's, on PostgreSQL.

A superuser's lists are not filtered (the baseline); a viewer's pay the role check (one EXISTS)
and the project filter (a subquery on the memberships) on every list, and a token client also
the digest lookup. In-process (Django's test client, no server), the demo project's 20,000
detections, 50 rows a page. Prints the median of each and its ratio to the superuser's.

    .venv/bin/python benchmarks/access_overhead.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATABASE = os.environ.get("TAXOPOST_BENCH_DATABASE", "postgres://postgres@127.0.0.1:5432/taxopost_access_bench")
os.environ["DATABASE_URL"] = DATABASE
os.environ["TAXOPOST_ALLOWED_HOSTS"] = "testserver"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")

from benchmarks._common import demo_on_fresh_postgres, median_seconds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    capture_set = demo_on_fresh_postgres(DATABASE, "taxopost-access-")
    from django.contrib.auth import get_user_model
    from django.test import Client

    from taxopost import demo
    from taxopost.access.models import Membership
    from taxopost.access.tokens import create_token
    from taxopost.observations.models import Project

    for i in range(20):  # other projects, so the viewer's filter has something to leave out
        Project.objects.create(name=f"other-{i}")
    users = get_user_model().objects
    boss = users.get(username=demo.DEMO_USER)
    viewer = users.create_user("bench-viewer", password="a-bench-password")
    Membership.objects.create(user=viewer, project=capture_set.project, role="viewer")

    clients = {}
    for name, user in (("superuser", boss), ("viewer", viewer)):
        clients[name] = Client()
        clients[name].force_login(user)
    clients["viewer, token"] = Client(HTTP_AUTHORIZATION=f"Token {create_token(viewer)[1]}")
    requests = {
        "occurrences": ("/api/v1/occurrences/", {"capture_set": capture_set.pk, "page_size": 50}),
        "classifications": (
            "/api/v1/classifications/",
            {"capture_set": capture_set.pk, "terminal": True, "page_size": 50},
        ),
        "capture set": (f"/api/v1/capture-sets/{capture_set.pk}/", {}),
    }
    print(f"{'request':<16} {'who':<14} {'median ms':>10} {'x superuser':>12}")
    for label, (url, params) in requests.items():
        baseline = None
        for who, client in clients.items():
            assert client.get(url, params).status_code == 200, (label, who)  # warm, and the token's last use
            seconds = median_seconds(lambda c=client, u=url, p=params: c.get(u, p), args.repeats)
            baseline = baseline or seconds
            print(f"{label:<16} {who:<14} {seconds * 1000:>10.1f} {seconds / baseline:>12.2f}")


if __name__ == "__main__":
    main()
