"""``taxopost serve``: the embedded web app answers, with the admin's static files and DEBUG off."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_serve_runs_the_admin_api_and_static_files(tmp_path):
    port = _free_port()
    env = {**os.environ, "TAXOPOST_DATA_DIR": str(tmp_path), "TAXOPOST_DEBUG": "0"}
    env.pop("DATABASE_URL", None)  # the embedded default
    command = [sys.executable, "-c", "from taxopost.cli import run; run()", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = _get(f"{base}/admin/login/")
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"taxopost serve did not start: {server.stdout.read() if server.stdout else ''}")
                time.sleep(0.3)
        assert status == 200
        status, css = _get(f"{base}/static/admin/css/base.css")
        assert status == 200 and b"body" in css  # served by WhiteNoise with DEBUG off
        assert _get(f"{base}/api/v1/taxa/")[0] == 401
        assert _get(f"{base}/api/v1/schema/")[0] == 200
        assert (tmp_path / "taxopost.sqlite3").exists()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_pooled_server_serves_on_a_fixed_pool_and_closes_every_connection():
    """``taxopost serve``'s server: at most ``threads`` requests at once, each on a thread of the
    pool (which keeps its database connection), every response closing its connection, and a
    client that stops sending dropped instead of holding a thread for good."""
    import threading

    from django.core.servers.basehttp import WSGIRequestHandler

    from taxopost import web_server

    seen, running, most = set(), [0], [0]
    lock = threading.Lock()

    def app(environ, start_response):
        with lock:
            seen.add(threading.get_ident())
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server_cls = type("Pool", (web_server.PooledWSGIServer,), {"threads": 3})
    server = server_cls(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}/"
    old_timeout, web_server.CLIENT_TIMEOUT = web_server.CLIENT_TIMEOUT, 0.5
    try:
        silent = socket.create_connection(("127.0.0.1", server.server_port))  # connects, never sends
        closes = []

        def fetch():
            with urllib.request.urlopen(base, timeout=10) as response:
                closes.append(response.headers.get("Connection"))

        clients = [threading.Thread(target=fetch) for _ in range(12)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        assert closes == ["close"] * 12
        assert len(seen) <= 3 and most[0] <= 3
        assert silent.recv(1) == b""  # dropped after the client timeout
        silent.close()
    finally:
        web_server.CLIENT_TIMEOUT = old_timeout
        server.shutdown()
        server.server_close()
