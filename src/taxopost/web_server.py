"""Django's development server with a fixed pool of threads, for ``taxopost serve``.

Why: Django's server starts a thread per request, and a database connection is per thread, so
every request opened the database anew and closed it (on SQLite, reading its schema and
mapping its journal: a sixth of a cached page's time, and as much again to close it). Here a
fixed pool of threads serves the requests, each keeping its connection between them
(``CONN_MAX_AGE``), and at most :data:`DEFAULT_THREADS` requests run at once, where the
thread-per-request server had no bound. Every response closes its TCP connection (Django's
handler does so on a server that is not thread-per-request), so an idle browser connection
never holds a thread; a client that stops sending is dropped after :data:`CLIENT_TIMEOUT`.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

from django.core.management.commands.runserver import Command as RunServer
from django.core.servers.basehttp import WSGIServer

#: Requests served at once: a request waiting for another's computation of a cached page holds a
#: thread, so the pool is larger than the machine's cores.
DEFAULT_THREADS = 32
#: Seconds a client may take to send its request or read the response before it is dropped.
CLIENT_TIMEOUT = 60.0
#: Seconds a thread keeps its database connection open between requests.
CONNECTION_SECONDS = 60


class PooledWSGIServer(WSGIServer):
    """Hands each accepted connection to a thread of a fixed pool (``threads`` wide)."""

    threads = DEFAULT_THREADS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="taxopost-web")

    def process_request(self, request: socket.socket, client_address) -> None:
        request.settimeout(CLIENT_TIMEOUT)
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request: socket.socket, client_address) -> None:
        """What ``socketserver.ThreadingMixIn`` does in its thread: handle, then always close."""
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def pooled_runserver(threads: int) -> RunServer:
    """Django's ``runserver`` command serving with a pool of ``threads`` threads."""
    server = type("PooledWSGIServer", (PooledWSGIServer,), {"threads": threads})
    return type("PooledRunServer", (RunServer,), {"server_cls": server})()
