"""A real HTTP server on 127.0.0.1 that replays recorded Antenna responses, with faults on demand.

Requests are matched by path and query parameters (in any order) against
``../shared/data/antenna/antenna_api/``; the recorded server's address in the bodies is rewritten
to this one's, so ``next`` links lead back here. A request that matches no recording gets
Antenna's 404 and is remembered in ``unmatched``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

RECORDED_ORIGIN = "http://127.0.0.1:8765"
API = "/api/v2"
TOKEN = "f" * 40


@dataclass
class Fault:
    """Break the next ``times`` requests whose path contains ``path`` (and whose params include ``params``).

    ``kind``: ``status`` (answer ``status`` with ``headers``), ``timeout`` (answer after ``delay``
    seconds), ``truncate`` (a 200 whose JSON body is cut in half), ``drop`` (close the connection
    in the middle of the body), ``edit`` (answer ``edit(body)``: the server's data changed).
    """

    path: str
    kind: str = "status"
    status: int = 500
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 1.0
    params: dict[str, str] = field(default_factory=dict)
    edit: Callable[[dict], dict] | None = None
    hits: int = 0


class ReplayServer:
    def __init__(self, folder: Path, *, token: str | None = TOKEN) -> None:
        self.token = token
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.unmatched: list[str] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._recorded: dict[tuple[str, frozenset], tuple[int, str]] = {}
        index = json.loads((folder / "index.json").read_text())
        self._bodies = []
        for entry in index["files"]:
            recording = json.loads((folder / entry["file"]).read_text())
            request = recording["request"]
            if request["method"] != "GET" or recording["status"] != 200:
                continue
            key = (request["path"], frozenset(request["params"].items()))
            self._recorded[key] = (recording["status"], json.dumps(recording["body"]))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        host, port = self.httpd.server_address[:2]
        self.origin = f"http://{host}:{port}"
        self.url = self.origin + API
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def _fault_for(self, path: str, params: dict[str, str]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.hits < fault.times and fault.path in path and fault.params.items() <= params.items():
                    fault.hits += 1
                    return fault
        return None

    def respond(self, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, dict, bytes, str]:
        """(status, headers, body, how): ``how`` is ``drop`` to cut the connection mid-body."""
        with self._lock:
            self.requests.append((path, params, headers))
        auth = headers.get("authorization")
        if auth is not None and auth != f"Token {self.token}":
            return 401, {"WWW-Authenticate": "Token"}, b'{"detail":"Invalid token."}', ""
        fault = self._fault_for(path, params)
        found = self._recorded.get((path, frozenset(params.items())))
        if found is None:
            self.unmatched.append(path + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items())))
            return 404, {}, b'{"detail":"Not found."}', ""
        body = found[1].replace(RECORDED_ORIGIN, self.origin).encode()
        if fault is None:
            return 200, {}, body, ""
        if fault.kind == "status":
            return fault.status, fault.headers, b'{"detail":"Injected fault."}', ""
        if fault.kind == "timeout":
            time.sleep(fault.delay)
            return 200, {}, body, ""
        if fault.kind == "truncate":
            return 200, {}, body[: len(body) // 2], ""
        if fault.kind == "drop":
            return 200, {}, body, "drop"
        if fault.kind == "edit":
            return 200, {}, json.dumps(fault.edit(json.loads(body))).encode(), ""
        raise ValueError(fault.kind)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs: 40 ms a request

            def do_GET(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    parts = urlsplit(self.path)
                    params = dict(parse_qsl(parts.query, keep_blank_values=True))
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, extra, body, how = server.respond(parts.path, params, headers)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.end_headers()
                    if how == "drop":
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                    self.close_connection = True
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        return Handler
