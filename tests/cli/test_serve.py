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
