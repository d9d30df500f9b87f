"""Django's development server, with its request threads kept between requests, for ``taxopost serve``.

Why: Django's server starts a thread per request, and a database connection is per thread, so
every request opened the database anew and closed it (on SQLite, reading its schema and
mapping its journal: a sixth of a cached page's time, and as much again to close it). Here a
thread that has served a request waits for the next one, keeping its connection
(``CONN_MAX_AGE``), up to :data:`DEFAULT_IDLE_THREADS` of them; one idle for
:data:`CONNECTION_SECONDS` closes its connection. When none is waiting, a new
thread starts, as in Django's server: a request waiting for another's computation of a page,
or a client slow to send, never holds up the others. Threads are daemons, so Ctrl-C stops the
server at once. Every response closes its TCP connection (Django's handler does so on a server
that is not thread-per-request); a client that sends nothing, or does not take its response,
is dropped after :data:`CLIENT_TIMEOUT`, quietly.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading

from django.core.management.commands.runserver import Command as RunServer
from django.core.servers.basehttp import ServerHandler, WSGIRequestHandler, WSGIServer
from django.db import connections

#: Threads kept waiting for the next request, each with its database connection.
DEFAULT_IDLE_THREADS = 32
#: Seconds a client may take to send its request or read the response before it is dropped.
CLIENT_TIMEOUT = 60.0
#: Seconds a thread keeps its database connection open between requests.
CONNECTION_SECONDS = 60


class _QuietServerHandler(ServerHandler):
    """Django's handler; a client too slow to take its response is dropped without a traceback."""

    def handle_error(self) -> None:
        if isinstance(sys.exception(), TimeoutError):  # the write waited CLIENT_TIMEOUT
            self.close()
            return
        super().handle_error()


class QuietRequestHandler(WSGIRequestHandler):
    """Django's request handler with :class:`_QuietServerHandler`."""

    def handle_one_request(self) -> None:
        # Django's WSGIRequestHandler.handle_one_request (5.2), with the handler class above.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # an error was sent
            return
        handler = _QuietServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ())
        handler.request_handler = self  # for logging and closing the connection
        handler.run(self.server.get_app())


class PooledWSGIServer(WSGIServer):
    """Hands each connection to a waiting thread, or to a new one when none waits."""

    idle_threads = DEFAULT_IDLE_THREADS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._handoff: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = 0  # threads committed to taking the next item of the handoff queue

    def process_request(self, request: socket.socket, client_address) -> None:
        request.settimeout(CLIENT_TIMEOUT)
        with self._lock:
            if self._waiting:
                self._waiting -= 1
                self._handoff.put((request, client_address))
                return
        threading.Thread(target=self._work, args=(request, client_address), daemon=True).start()

    def _work(self, request: socket.socket, client_address) -> None:
        """Serve, then wait for the next connection, unless enough threads wait already."""
        while True:
            self._serve(request, client_address)
            with self._lock:
                if self._waiting >= self.idle_threads:
                    break
                self._waiting += 1
            request, client_address = self._next_connection()
        connections.close_all()  # this thread's own, kept between its requests

    def _next_connection(self) -> tuple[socket.socket, object]:
        """The next connection handed to this thread. If none comes within
        :data:`CONNECTION_SECONDS`, the thread first closes its database connections: a burst
        that started many threads leaves none holding a connection while idle."""
        try:
            return self._handoff.get(timeout=CONNECTION_SECONDS)
        except queue.Empty:
            connections.close_all()
            return self._handoff.get()

    def finish_request(self, request: socket.socket, client_address) -> None:
        """Served by :class:`QuietRequestHandler`, whatever handler class Django's ``run`` passes."""
        QuietRequestHandler(request, client_address, self)

    def _serve(self, request: socket.socket, client_address) -> None:
        """What ``socketserver.ThreadingMixIn`` does in its thread: handle, then always close."""
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A client that went silent or away is dropped without a traceback; other errors are reported."""
        if isinstance(sys.exception(), TimeoutError | ConnectionError):
            return
        super().handle_error(request, client_address)


def pooled_runserver(idle_threads: int) -> RunServer:
    """Django's ``runserver`` command serving with :class:`PooledWSGIServer` (``idle_threads`` kept)."""
    server = type("PooledWSGIServer", (PooledWSGIServer,), {"idle_threads": idle_threads})
    return type("PooledRunServer", (RunServer,), {"server_cls": server})()
