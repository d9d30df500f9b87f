"""``taxopost serve``: the embedded web app answers, with the admin's static files and DEBUG off."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from taxopost import web_server
from tests.conftest import default_ctrl_c


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    # A first request loads the admin and the API (1.5 s on an idle machine); a CI run on a shared
    # machine timed out reading a response after 5 s. The wait is long enough to tell a hang only.
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextlib.contextmanager
def _served(app, idle_threads: int = web_server.DEFAULT_IDLE_THREADS):
    """``app`` served by taxopost serve's server on a free port, its access log off, stopped after."""
    from django.core.servers.basehttp import WSGIRequestHandler

    kind = type("Kept", (web_server.PooledWSGIServer,), {"idle_threads": idle_threads})
    server = kind(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    access_log = logging.getLogger("django.server")  # one line per request: not what is tested here
    access_log.disabled = True
    try:
        yield server
    finally:
        access_log.disabled = False
        server.shutdown()
        server.server_close()


def _until_kept(server, n: int = 1, seconds: float = 10) -> None:
    """Wait until ``n`` threads are back waiting for a connection."""
    deadline = time.monotonic() + seconds
    while server._waiting < n and time.monotonic() < deadline:
        time.sleep(0.001)


def test_serve_runs_the_admin_api_and_static_files(tmp_path):
    port = _free_port()
    env = {**os.environ, "TAXOPOST_DATA_DIR": str(tmp_path), "TAXOPOST_DEBUG": "0"}
    env.pop("DATABASE_URL", None)  # the embedded default
    command = [sys.executable, "-c", "from taxopost.cli import run; run()", "serve", "--port", str(port)]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=default_ctrl_c
    )
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
        with socket.create_connection(("127.0.0.1", port)):  # a browser's preconnect: sends nothing
            time.sleep(0.2)
            server.send_signal(signal.SIGINT)  # Ctrl-C stops it at once, whatever its threads wait for
            server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


def test_the_server_keeps_its_request_threads_and_never_waits_for_one(capsys, monkeypatch):
    """``taxopost serve``'s server: a thread that served a request serves the next ones (keeping
    its database connection), a new one starts when every kept one is busy (a slow or silent
    client holds up nobody), every response closes its connection, and a client that sends
    nothing is dropped after the timeout without a traceback."""
    seen, running, most = [], [0], [0]
    lock = threading.Lock()

    def app(environ, start_response):
        with lock:
            seen.append(threading.get_ident())
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05 if environ["PATH_INFO"] == "/slow" else 0)
        with lock:
            running[0] -= 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    monkeypatch.setattr(web_server, "CLIENT_TIMEOUT", 0.5)
    with _served(app, idle_threads=2) as server:
        base = f"http://127.0.0.1:{server.server_port}"
        closes = []

        def fetch(path: str) -> None:
            with urllib.request.urlopen(base + path, timeout=10) as response:
                closes.append(response.headers.get("Connection"))

        for _ in range(10):  # one after the other, each once the thread is back waiting: one thread
            fetch("/")
            _until_kept(server)
        assert len(set(seen)) == 1
        silent = socket.create_connection(("127.0.0.1", server.server_port))  # connects, never sends
        clients = [threading.Thread(target=fetch, args=("/slow",)) for _ in range(8)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        assert most[0] >= 4  # more than the two kept threads ran at once, beside the silent client's
        assert closes == ["close"] * 18
        assert silent.recv(1) == b""  # dropped after the client timeout
        silent.close()
        time.sleep(0.2)
        assert threading.active_count() <= 8  # back to the kept threads (and this test's)
        assert "Traceback" not in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_a_kept_thread_idle_for_a_while_closes_its_database_connection(monkeypatch):
    """Many threads started by a burst stay kept: none may hold a database connection (one of
    PostgreSQL's few) for longer than ``CONNECTION_SECONDS`` without a request."""
    from django.db import connections

    wrappers = []

    def app(environ, start_response):
        wrapper = connections["default"]  # this thread's own
        wrapper.ensure_connection()  # as a view's first query opens it
        wrappers.append(wrapper)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    monkeypatch.setattr(web_server, "CONNECTION_SECONDS", 0.3)
    with _served(app) as server:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/", timeout=10) as response:
            assert response.read() == b"ok"
        _until_kept(server)
        (kept,) = wrappers
        assert kept is not connections["default"] and kept.connection is not None  # open, between requests
        deadline = time.monotonic() + 5
        while kept.connection is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert kept.connection is None  # closed by its idle thread
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/", timeout=10) as response:
            assert response.read() == b"ok"  # the same thread serves again, opening a new one
        assert wrappers[1] is kept and kept.connection is not None


def test_a_client_that_does_not_take_its_response_is_dropped_quietly(capfd, monkeypatch):
    """The write of a response waits at most ``CLIENT_TIMEOUT`` for a client that reads nothing,
    then the connection is dropped without a traceback, and the server serves the next client."""
    big = b"x" * (64 * 1024 * 1024)  # more than the sockets' buffers hold

    def app(environ, start_response):
        body = big if environ["PATH_INFO"] == "/big" else b"ok"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    monkeypatch.setattr(web_server, "CLIENT_TIMEOUT", 0.5)
    with _served(app) as server:
        reader = socket.create_connection(("127.0.0.1", server.server_port))
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  # asks, then reads nothing
        _until_kept(server)  # its thread gave up and is back
        assert server._waiting == 1
        reader.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/", timeout=10) as response:
            assert response.read() == b"ok"
        assert "Traceback" not in capfd.readouterr().err
