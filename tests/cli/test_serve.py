"""``taxopost serve``: the embedded web app answers, with the admin's static files and DEBUG off."""

from __future__ import annotations

import contextlib
import http.cookiejar
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
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


_TAXOPOST = [sys.executable, "-c", "from taxopost.cli import run; run()"]


def _embedded_env(data_dir) -> dict[str, str]:
    env = {**os.environ, "TAXOPOST_DATA_DIR": str(data_dir), "TAXOPOST_DEBUG": "0"}
    env.pop("DATABASE_URL", None)  # the embedded default
    env.pop("TAXOPOST_CACHE_URL", None)
    return env


@contextlib.contextmanager
def _serving(env: dict[str, str]):
    """``taxopost serve`` on a free port, answering: yields ``(its base URL, its process)``."""
    port = _free_port()
    server = subprocess.Popen(
        [*_TAXOPOST, "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=default_ctrl_c,
    )  # fmt: skip
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
        yield base, server
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


def test_serve_runs_the_admin_api_and_static_files(tmp_path):
    with _serving(_embedded_env(tmp_path)) as (base, server):
        status, css = _get(f"{base}/static/admin/css/base.css")
        assert status == 200 and b"body" in css  # served by WhiteNoise with DEBUG off
        assert _get(f"{base}/api/v1/taxa/")[0] == 401
        assert _get(f"{base}/api/v1/schema/")[0] == 200
        assert (tmp_path / "taxopost.sqlite3").exists()
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)):  # a browser's preconnect: sends nothing
            time.sleep(0.2)
            server.send_signal(signal.SIGINT)  # Ctrl-C stops it at once, whatever its threads wait for
            server.wait(timeout=10)


def _session_rows(database, delete: bool = False) -> list[tuple]:
    """The stored sessions (key, data, expiry), deleted from the database if ``delete``."""
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        rows = connection.execute("SELECT session_key, session_data, expire_date FROM django_session").fetchall()
        if delete:
            connection.execute("DELETE FROM django_session")
        return rows


def _restore_sessions(database, rows: list[tuple]) -> None:
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.executemany("INSERT INTO django_session VALUES (?, ?, ?)", rows)


def test_sessions_read_through_the_servers_cache_are_written_and_ended_in_the_database(tmp_path):
    """``taxopost serve`` reads sessions through its cache (one process): a login is still stored in
    the database, and a logout ends the session there and in the cache, so its cookie opens nothing."""
    env, database = _embedded_env(tmp_path), tmp_path / "taxopost.sqlite3"
    create = "from django.contrib.auth.models import User; User.objects.create_superuser('ann', '', 'a long pass 9')"
    subprocess.run([*_TAXOPOST, "manage", "shell", "-c", create], env=env, check=True, capture_output=True)
    with _serving(env) as (base, _):
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        def post(path: str, form: dict[str, str], page: str) -> str:
            """Submit the form of ``page`` (its CSRF token) to ``path``; the answer's text."""
            text = browser.open(f"{base}{page}", timeout=60).read().decode()
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text).group(1)
            body = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}).encode()
            with browser.open(urllib.request.Request(f"{base}{path}", body, {"Referer": base}), timeout=60) as answer:
                return answer.read().decode()

        def index() -> str:
            with browser.open(f"{base}/admin/", timeout=60) as answer:
                return answer.read().decode()

        post("/admin/login/?next=/admin/", {"username": "ann", "password": "a long pass 9"}, "/admin/login/")
        session = next(cookie.value for cookie in jar if cookie.name == "sessionid")
        stored = _session_rows(database, delete=True)
        assert [row[0] for row in stored] == [session]  # written through to the database
        assert "Log out" in index()  # read from the cache: the database's row is gone
        _restore_sessions(database, stored)

        assert "Logged out" in post("/admin/logout/", {}, "/admin/")
        assert _session_rows(database) == []
        replay = urllib.request.Request(f"{base}/admin/", headers={"Cookie": f"sessionid={session}"})
        with urllib.request.build_opener(_NoRedirect).open(replay, timeout=60) as answer:
            assert answer.status == 302 and "/admin/login/" in answer.headers["Location"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def http_error_302(self, req, fp, code, msg, headers):
        return fp


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
