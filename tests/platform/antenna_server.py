"""A real HTTP server on 127.0.0.1 that replays recorded Antenna responses, with faults on demand.

Requests are matched by path and query parameters (in any order) against
``../shared/data/antenna/antenna_api/``; the recorded server's address in the bodies is rewritten
to this one's, so ``next`` links lead back here. A request that matches no recording gets
Antenna's 404 and is remembered in ``unmatched``.

The recording holds models' outputs only; :meth:`ReplayServer.add_classification` adds a
classification Antenna's post-processing derived (its detail, and its entry in every detection
that nests its source), in the recorded shapes: :func:`derived_detail` builds one from a
recorded detail, and :data:`RANK_ROLLUP` and :func:`masking_algorithm` are the algorithms
Antenna's tasks write under (``ami/ml/post_processing``).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

RECORDED_ORIGIN = "http://127.0.0.1:8765"
API = "/api/v2"
TOKEN = "f" * 40
CREATED = "2026-12-01T03:10:00.000000"  # naive, in the server's time zone, as Antenna writes times

#: The algorithm Antenna's rank roll-up writes under: ``BasePostProcessingTask`` creates it named
#: after the task, with this description and task type; ``Algorithm.save`` keys it ``slug-version``.
RANK_ROLLUP = {
    "id": 3, "details": f"{RECORDED_ORIGIN}{API}/ml/algorithms/3/", "name": "Rank rollup", "key": "rank-rollup-1",
    "description": "Post-processing task: rank_rollup", "uri": None, "version": 1, "version_name": "1",
    "task_type": "post_processing", "category_map": None, "category_count": None, "created_at": CREATED,
    "updated_at": CREATED, "user_permissions": [],
}  # fmt: skip


def masking_algorithm(source: dict, taxa_list: int = 1, taxa_list_name: str = "Rec list") -> dict:
    """The algorithm Antenna's class masking writes under: one per (source algorithm, taxa list),
    a classification algorithm with the source's category map."""
    return {
        **copy.deepcopy(source), "id": 4, "details": f"{RECORDED_ORIGIN}{API}/ml/algorithms/4/",
        "key": f"{source['key']}_filtered_by_taxa_list_{taxa_list}",
        "name": f"{source['name']} (filtered by taxa list {taxa_list_name})",
        "description": f"Classifications from {source['name']} re-scored against taxa list {taxa_list_name}",
        "task_type": "classification", "created_at": CREATED, "updated_at": CREATED,
    }  # fmt: skip


def derived_detail(
    source: dict, pk: int, algorithm: dict, taxon: dict, score: float, *, scores=None, logits=None
) -> dict:
    """A classification detail derived from the detail ``source``, as Antenna's serializer shapes it
    (``applied_to: {id, created_at, algorithm}``; ``top_n`` left as the source's)."""
    detail = copy.deepcopy(source)
    detail.update(
        id=pk, details=f"{RECORDED_ORIGIN}{API}/classifications/{pk}/", taxon=copy.deepcopy(taxon), score=score,
        algorithm=copy.deepcopy(algorithm), scores=scores, logits=logits, created_at=CREATED, updated_at=CREATED,
        applied_to={"id": source["id"], "created_at": source["created_at"], "algorithm": source["algorithm"]},
    )  # fmt: skip
    return detail


@dataclass
class Fault:
    """Break the next ``times`` requests whose path contains ``path`` (and whose params include ``params``).

    ``kind``: ``status`` (answer ``status`` with ``headers``), ``timeout`` (answer after ``delay``
    seconds), ``truncate`` (a 200 whose JSON body is cut in half), ``drop`` (close the connection
    in the middle of the body), ``edit`` (answer ``edit(body)``: the server's data changed),
    ``trickle`` (send the body one byte every ``delay`` seconds: no single read ever waits long),
    ``trickle_headers`` (the same for the status line and headers, then the body at once).
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

    def recorded(self, path: str, **params: str) -> dict:
        """The body recorded for ``path`` (under the API root) with these parameters."""
        return json.loads(self._recorded[(API + path, frozenset(params.items()))][1])

    def serve_detail(self, detail: dict) -> None:
        """Serve ``detail`` as its classification's detail, whatever the detections nest of it."""
        self._recorded[(f"{API}/classifications/{detail['id']}/", frozenset({"project_id": "1"}.items()))] = (
            200, json.dumps(detail),
        )  # fmt: skip

    def add_classification(
        self,
        detail: dict,
        *,
        detection: int,
        terminal: bool = True,
        source_terminal: bool | None = False,
        first: bool = False,
    ) -> None:
        """Serve ``detail`` and nest it in ``detection`` wherever the recordings nest that detection
        (its detail, its occurrence's, its capture's); ``source_terminal``: what becomes of the
        terminal state of the classification it is applied to (None: unchanged); ``first``: list it
        before the others."""
        applied = detail.get("applied_to") or {}
        entry = {
            key: copy.deepcopy(detail[key])
            for key in ("id", "details", "taxon", "score", "algorithm", "applied_to", "created_at", "user_permissions")
        }
        entry["terminal"] = terminal
        self.serve_detail(detail)
        nested = 0
        for key, (status, text) in list(self._recorded.items()):
            body = json.loads(text)
            changed = False
            for item in _detections_in(body, detection):
                item["classifications"].insert(0 if first else len(item["classifications"]), copy.deepcopy(entry))
                for other in item["classifications"]:
                    if source_terminal is not None and other["id"] == applied.get("id"):
                        other["terminal"] = source_terminal
                changed = True
            if changed:
                nested += 1
                self._recorded[key] = (status, json.dumps(body))
        if not nested:
            raise ValueError(f"no recording nests detection {detection}")

    def edit_recordings(self, edit: Callable[[object], None]) -> int:
        """Apply ``edit`` (in place) to every recorded body: the server's data changed everywhere
        it shows. Returns how many bodies changed."""
        changed = 0
        for key, (status, text) in list(self._recorded.items()):
            body = json.loads(text)
            edit(body)
            new = json.dumps(body)
            if new != text:
                self._recorded[key] = (status, new)
                changed += 1
        return changed

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
        """(status, headers, body, how): ``how`` is ``drop`` to cut the connection mid-body, or
        ``(kind, delay)`` of a ``trickle`` fault."""
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
        if fault.kind in ("trickle", "trickle_headers"):
            return 200, {}, body, (fault.kind, fault.delay)
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
                    if isinstance(how, tuple):
                        self.trickle(body, *how)
                        return
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

            def trickle(self, body: bytes, kind: str, delay: float) -> None:
                """A 200 of ``body`` whose headers (``trickle_headers``) or body (``trickle``) come
                one byte every ``delay`` seconds; the connection is closed after it."""
                self.close_connection = True
                head = (
                    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n"
                ).encode()
                slow, fast = (body, head) if kind == "trickle" else (head, body)
                if kind == "trickle":
                    self.wfile.write(fast)
                for i in range(len(slow)):
                    self.wfile.write(slow[i : i + 1])
                    self.wfile.flush()
                    time.sleep(delay)
                if kind == "trickle_headers":
                    self.wfile.write(fast)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        return Handler


def _detections_in(body: object, detection: int) -> Iterator[dict]:
    """The objects of a body that are detection ``detection`` with nested classifications."""
    if isinstance(body, dict):
        if body.get("id") == detection and "bbox" in body and isinstance(body.get("classifications"), list):
            yield body
        for value in body.values():
            yield from _detections_in(value, detection)
    elif isinstance(body, list):
        for value in body:
            yield from _detections_in(value, detection)
