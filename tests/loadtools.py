"""Readers and pollers against the API served by gunicorn while a roll-up job runs.

Shared by ``benchmarks/load_api.py`` (20 clients for 30 s, the reported figures) and
``tests/reliability/test_load.py`` (a shorter run: zero errors and an unchanged result).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(
    database_url: str, *, workers: int = 3, threads: int = 4, data_dir: str | None = None, env: dict | None = None
):
    """Serve taxopost.wsgi with gunicorn on loopback; yields the port; stops it on exit."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TAXOPOST_SECRET_KEY": "load-test-key",
        "TAXOPOST_ALLOWED_HOSTS": "127.0.0.1,localhost",
        **(env or {}),
    }
    if data_dir:
        env["TAXOPOST_DATA_DIR"] = data_dir
    command = [
        str(Path(sys.executable).with_name("gunicorn")), "taxopost.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread", "--timeout", "120", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited: {process.stderr.read()[-2000:]}") from None
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start within 60 s")
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def celery_worker(database_url: str, broker_url: str, *, concurrency: int = 1):
    """A `taxopost worker` process on the broker; stopped on exit."""
    env = {**os.environ, "DATABASE_URL": database_url, "TAXOPOST_BROKER_URL": broker_url}
    command = [str(Path(sys.executable).with_name("taxopost")), "worker", "--concurrency", str(concurrency)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str | None, kind: str = "request") -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.kinds.append(kind)
            if error:
                self.errors.append(error)

    def summary(self, duration: float) -> dict:
        by_kind = {
            kind: _percentiles([s for s, k in zip(self.latencies, self.kinds, strict=True) if k == kind])
            for kind in sorted(set(self.kinds))
        }
        return {
            **_percentiles(self.latencies),
            "requests_per_second": len(self.latencies) / duration,
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            "by_kind": by_kind,
        }


def _percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": 1000 * statistics.median(ordered) if ordered else float("nan"),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan"),
    }


def request(connection: http.client.HTTPConnection, method: str, path: str, token: str, body=None):
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def run_clients(port: int, token: str, *, clients: int, seconds: float, capture_set: int, job: int) -> dict:
    """``clients`` threads for ``seconds``: each reads occurrence pages or polls the job."""
    results = Results()
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            if index % 4 == 0:
                kind, path = "job poll", f"/api/v1/jobs/{job}/"
            else:
                query = f"capture_set={capture_set}&page={rng.randint(1, 20)}&page_size=50"
                kind, path = "occurrence page", f"/api/v1/occurrences/?{query}"
            started = time.perf_counter()
            try:
                status, _ = request(connection, "GET", path, token)
                error = None if status == 200 else f"{status} {path}"
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc} ({path})"
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            results.add(time.perf_counter() - started, error, kind)
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results.summary(time.monotonic() - started)


def start_job(port: int, token: str, capture_set: int, config: dict) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = {"task": "rank_rollup", "scope": {"type": "capture_set", "id": capture_set}, "config": config}
    status, content = request(connection, "POST", "/api/v1/jobs/", token, body)
    if status != 201:
        raise RuntimeError(f"job creation failed: {status} {content[:300]!r}")
    return json.loads(content)["id"]


def wait_for_job(port: int, token: str, job: int, timeout: float = 600) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, content = request(connection, "GET", f"/api/v1/jobs/{job}/", token)
        state = json.loads(content)
        if state["status"] in ("succeeded", "failed", "canceled"):
            return state
        time.sleep(0.5)
    raise RuntimeError(f"job {job} did not finish within {timeout} s")
