"""The evaluation and review pages under 10 concurrent clients, against one client alone.

Builds the demo (or reuses ``--data-dir``), serves it with ``taxopost serve`` on loopback and
logs in as the demo user. Each round first invalidates the pages the way production does (a job
on the demo project finishes), then times:

- one client alone requesting the page (it computes it: the cold time);
- after invalidating again, ``--clients`` clients requesting it together, ``--requests`` times
  each (one computes it, the others wait for its result, then read the cache).

Prints the medians over the rounds and the ratio of the concurrent p95 to the single client's
time (target: under 2). Served twice: by ``taxopost serve`` (one process, its cache in memory),
then by gunicorn (3 processes x 4 threads) sharing the cache in Redis (``TAXOPOST_CACHE_URL``),
where the cross-process lock is what makes one process compute the page for all.

    .venv/bin/python benchmarks/page_cache.py [--clients 10] [--requests 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import redis  # noqa: E402
from tests.loadtools import free_port  # noqa: E402

TAXOPOST = str(Path(sys.executable).with_name("taxopost"))


class Session:
    """A logged-in browser session on the served app (session cookie and CSRF token)."""

    def __init__(self, port: int) -> None:
        self.port, self.cookies = port, {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection.request(method, path, body=body, headers={"Cookie": cookie, **(headers or {})})
        response = connection.getresponse()
        content = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        connection.close()
        return response.status, content

    def login(self, username: str, password: str) -> None:
        _, page = self.request("GET", "/admin/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"})
        status, _ = self.request(
            "POST", "/admin/login/", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 302:
            raise RuntimeError(f"login failed ({status})")

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Accept": "application/json", "X-CSRFToken": self.cookies.get("csrftoken", "")}
        payload = None
        if body is not None:
            payload, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        status, content = self.request(method, path, payload, headers)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {content[:300]!r}")
        return json.loads(content)


def invalidate(session: Session, occurrence: int) -> None:
    """What production does: a job on the project finishes (a rank roll-up of one occurrence)."""
    body = {"task": "rank_rollup", "scope": {"type": "occurrence", "id": occurrence}, "config": {}}
    job = session.api("POST", "/api/v1/jobs/", body)
    while job["status"] not in ("succeeded", "failed", "canceled"):
        time.sleep(0.1)
        job = session.api("GET", f"/api/v1/jobs/{job['id']}/")


def timed_get(session: Session, path: str) -> float:
    started = time.perf_counter()
    status, _ = session.request("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status}")
    return time.perf_counter() - started


def concurrent(sessions: list[Session], path: str, requests: int) -> list[float]:
    barrier, latencies, lock = threading.Barrier(len(sessions)), [], threading.Lock()

    def client(session: Session) -> None:
        barrier.wait()
        for _ in range(requests):
            seconds = timed_get(session, path)
            with lock:
                latencies.append(seconds)

    threads = [threading.Thread(target=client, args=(session,)) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[round(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=3, help="requests per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/8", help="the Redis the gunicorn run shares")
    parser.add_argument("--data-dir", help="a folder where `taxopost demo` ran (default: a new one, built now)")
    args = parser.parse_args()

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="taxopost-page-cache-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAXOPOST_", "DATABASE_URL"))}
    env["TAXOPOST_DATA_DIR"] = data_dir
    print(f"demo database in {data_dir} ...", flush=True)
    subprocess.run([TAXOPOST, "demo"], env=env, check=True, capture_output=True)
    ids = subprocess.run(
        [TAXOPOST, "manage", "shell", "-c",
         "from taxopost.observations.models import CaptureSet, Occurrence; from taxopost import demo; "
         "c = CaptureSet.objects.get(name=demo.CAPTURE_SETS[0]); "
         "print(c.pk, Occurrence.objects.filter(project=c.project).order_by('pk').first().pk)"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    capture_set, occurrence = int(ids[-2]), int(ids[-1])

    print(f"{args.clients} clients x {args.requests} requests, {args.rounds} rounds, on loopback")
    print(f"{'server':<22} {'page':<11} {'single (cold)':>14} {'single (cached)':>16} {'concurrent p50':>15} "
          f"{'concurrent p95':>15} {'p95 / single':>13}")  # fmt: skip
    port = free_port()
    serve = [TAXOPOST, "serve", "--port", str(port)]
    measure("taxopost serve", serve, env, port, args, capture_set, occurrence)
    redis.Redis.from_url(args.cache).flushdb()
    port = free_port()
    gunicorn = [str(Path(sys.executable).with_name("gunicorn")), "taxopost.wsgi:application", "--bind",
                f"127.0.0.1:{port}", "--workers", "3", "--threads", "4", "--worker-class", "gthread"]  # fmt: skip
    shared = {**env, "TAXOPOST_CACHE_URL": args.cache, "TAXOPOST_DEVELOPMENT": "1"}
    measure("gunicorn 3x4, Redis", gunicorn, shared, port, args, capture_set, occurrence)


def measure(label: str, command: list[str], env: dict, port: int, args, capture_set: int, occurrence: int) -> None:
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                Session(port).request("GET", "/admin/login/")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit("taxopost serve did not start")
                time.sleep(0.2)
        sessions = [Session(port) for _ in range(args.clients)]
        for session in sessions:
            session.login("demo", "demo")
        pages = {
            "evaluation": f"/evaluation/capture-sets/{capture_set}/",
            "review": f"/review/capture-sets/{capture_set}/",
        }
        for name, path in pages.items():
            cold, warm, p50s, p95s = [], [], [], []
            for _ in range(args.rounds):
                invalidate(sessions[0], occurrence)
                cold.append(timed_get(sessions[0], path))
                warm.append(timed_get(sessions[0], path))
                invalidate(sessions[0], occurrence)
                latencies = concurrent(sessions, path, args.requests)
                p50s.append(statistics.median(latencies))
                p95s.append(p95(latencies))
            single, cached, p50, top = (statistics.median(v) * 1000 for v in (cold, warm, p50s, p95s))
            print(f"{label:<22} {name:<11} {single:>11.0f} ms {cached:>13.0f} ms {p50:>12.0f} ms {top:>12.0f} ms "
                  f"{top / single:>12.2f}x")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
