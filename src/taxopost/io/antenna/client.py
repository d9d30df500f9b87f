"""An HTTP client for Antenna's REST API v2: token auth, retries, pagination, concurrent detail requests.

Antenna's map (auth, limit/offset pagination, quirks) is ``../shared/data/antenna/README.md``;
what the importer does with each quirk is in docs/formats.md. The token is sent in one header
and appears nowhere else: not in URLs, messages, logs or anything stored.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from queue import Full, Queue
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import urlsplit

import msgspec

from taxopost.errors import InputError
from taxopost.io._text import check_file

if TYPE_CHECKING:  # httpx is imported by the client, not by every command that imports this module
    import httpx

log = logging.getLogger("taxopost.antenna")
T = TypeVar("T")

#: The environment variable holding the token when no ``--token-file`` is given.
TOKEN_ENV = "TAXOPOST_ANTENNA_TOKEN"
#: Statuses worth another try: rate limiting and the server's own failures.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Antenna's largest page is its max_limit; 100 keeps one page of occurrence details modest.
DEFAULT_PAGE_SIZE = 100
#: Detail requests in flight at once: enough to hide latency, few enough not to load the server.
DEFAULT_CONCURRENCY = 8
#: A Retry-After longer than this is cut to it: an import waits, but not for hours.
MAX_RETRY_AFTER = 120.0


class ConnectorError(InputError):
    """Antenna refused or failed a request, or answered what the import cannot read; the message
    names the request (``source``, for a value in a response), never the token.

    ``status`` is the HTTP status of a refusal (None for a network failure).
    """

    def __init__(
        self, field: str, value: object, reason: str, *, status: int | None = None, source: str | None = None
    ) -> None:
        super().__init__(field, value, reason, source=source)
        self.status = status

    @property
    def message(self) -> str:
        """A failed request is named in full (``GET url?query``), not cut short like other values."""
        if self.field == "request":
            return f"{self.value}: {self.reason}"
        return super().message


@contextmanager
def reading(address: str) -> Iterator[None]:
    """Name ``address`` (the request, :meth:`AntennaClient.address`) in the errors raised while its
    response is read: which of thousands of responses held the bad value."""
    try:
        yield
    except ConnectorError as exc:
        if exc.source is not None or exc.field == "request":
            raise
        raise ConnectorError(exc.field, exc.value, exc.reason, status=exc.status, source=address) from None


def read_token(token_file: Path | None) -> str | None:
    """The API token from ``token_file``, else from :data:`TOKEN_ENV`, else None (anonymous reads).

    Never taken from the command line, where it would land in shell history and process lists.
    """
    if token_file is not None:
        check_file(token_file, "--token-file")
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError("--token-file", str(token_file), f"cannot be read ({exc.strerror})") from None
        source = ("--token-file", str(token_file))
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        source = (TOKEN_ENV, "<set>")
    if not token:
        if token_file is not None:
            raise InputError(source[0], source[1], "the file is empty")
        return None
    if any(c.isspace() for c in token) or not token.isprintable():
        raise InputError(source[0], source[1], "the token must be one word without spaces (value not shown)")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, allow_http: bool = False) -> str:
    """The API root (``https://host/api/v2``) without a trailing slash; https unless loopback or allowed."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("--url", url, "expected the API root, e.g. https://antenna.example.org/api/v2")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InputError("--url", url, "give the API root only: no query, fragment or credentials")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise InputError(
            "--url", url, "plain http would send the token in clear text; use https (or --allow-http if you must)"
        )
    return url.strip().rstrip("/")


class AntennaClient:
    """Reuses connections, retries transient failures with backoff, and fetches details concurrently.

    Parameters
    ----------
    base_url : str
        The API root, checked by :func:`check_base_url`.
    token : str, optional
        Sent as ``Authorization: Token ...``; None reads anonymously (Antenna allows it for public
        projects).
    retries : int
        Further attempts after a 429, a 5xx, a timeout, a dropped connection, a cut-off body or
        one that cannot be decoded.
    timeout : float
        Seconds one attempt may take in all (connecting, sending, the headers and the whole
        body; a wait for a free connection before it is httpx's), not per read: a server that
        sends a byte now and then cannot hold a request for longer.
    backoff : float
        First wait in seconds, doubled each attempt; a ``Retry-After`` header replaces it.
    sleep : callable, optional
        Waits between attempts (tests); by default a wait that :meth:`stop` ends at once.

    :meth:`stop` (and :meth:`close`, and Ctrl-C while waiting on a :class:`Batch`) ends every
    retry wait at once: the requests still to make fail with a :class:`ConnectorError` instead of
    sleeping for minutes behind the user's back.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        allow_http: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url, allow_http=allow_http)
        parts = urlsplit(self.base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self.page_size = page_size
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        headers = {"Accept": "application/json", "User-Agent": "taxopost"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.authenticated = bool(token)
        import httpx

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._http = httpx.Client(
            headers=headers, timeout=timeout, transport=_transport(limits), follow_redirects=False
        )
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="antenna")
        self._lock = threading.Lock()
        self.requests = 0
        self.retried = 0
        self.bytes = 0

    def __enter__(self) -> AntennaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        """End every retry wait now, in every thread; later requests fail at once."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def url(self, path: str) -> str:
        """An absolute URL of the API: ``path`` relative to the root, or an absolute link Antenna gave.

        Links are rebased on the configured origin, so the token only ever goes to the host the
        user named (a server behind a proxy may write its links with another scheme or host).
        """
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            root = urlsplit(self.base_url).path
            if not parts.path.startswith(root + "/"):
                raise ConnectorError("link", path, f"points outside the API root {self.base_url}")
            return f"{self._origin}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, params: dict[str, object] | None = None) -> dict:
        """One JSON object, retried on transient failures; anything else is a :class:`ConnectorError`."""
        url = self.url(path)
        shown = _shown(url, params)
        import httpx

        attempt = 0
        while True:
            if self._stop.is_set():
                raise ConnectorError("request", shown, "stopped: the client was closed or interrupted")
            wait = None
            with self._lock:  # every attempt: one that timed out was sent (and answered) all the same
                self.requests += 1
            try:
                status, headers, content = self._fetch(url, params)
                with self._lock:
                    self.bytes += len(content)
            except httpx.TimeoutException:
                reason = "timed out"
            except httpx.TransportError as exc:  # refused, reset, a body cut short
                reason = f"connection failed ({type(exc).__name__})"
            except httpx.DecodingError:  # a body its Content-Encoding does not fit (corrupted on the way?)
                reason = "the response body could not be decoded"
            else:
                if status == 200:
                    try:
                        # A classification detail carries ~100 kB of floats: msgspec parses them
                        # 6x faster than the standard parser (docs/antenna.md, Speed).
                        data = msgspec.json.decode(content)
                    except msgspec.DecodeError:
                        reason = "the response is not valid JSON (cut short?)"
                    else:
                        if isinstance(data, dict):
                            return data
                        raise ConnectorError("response", shown, f"expected a JSON object, got {type(data).__name__}")
                elif status in RETRY_STATUSES:
                    reason = f"HTTP {status}"
                    wait = _retry_after(headers.get("Retry-After"))
                else:
                    raise _refused(status, content, shown, self.authenticated)
            if attempt >= self.retries:
                raise ConnectorError("request", shown, f"{reason}; gave up after {attempt + 1} attempts")
            delay = wait if wait is not None else self.backoff * 2**attempt
            attempt += 1
            with self._lock:
                self.retried += 1
            log.info("GET %s: %s; retry %d in %.1f s", shown, reason, attempt, delay)
            self._sleep(delay)

    def _fetch(self, url: str, params: dict[str, object] | None) -> tuple[int, httpx.Headers, bytes]:
        """One attempt: the status, headers and (decoded) body, all within ``timeout`` seconds.

        httpx's timeouts bound each read, so a server that trickles its answer would hold the
        request as long as it likes. Here the request has one :class:`_Deadline`: every socket
        operation waits at most the time left of it (the backend of :func:`_transport`), and the body,
        read in chunks, is checked against it after each. Running out raises
        :class:`httpx.ReadTimeout` (or ``ConnectTimeout``, ``WriteTimeout``), retried like any timeout.
        """
        import httpx

        deadline = _Deadline(self.timeout)
        _current.deadline = deadline
        try:
            request = self._http.build_request("GET", url, params=params)
            response = self._http.send(request, stream=True)
            try:
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if deadline.left() <= 0:
                        raise httpx.ReadTimeout(deadline.reason(), request=request)
                return response.status_code, response.headers, b"".join(chunks)
            finally:
                response.close()
        finally:
            _current.deadline = None

    def pages(self, path: str, params: dict[str, object]) -> Iterator[dict]:
        """Each page of a list, following Antenna's absolute ``next`` links (limit/offset)."""
        for _, page in self.located_pages(path, params):
            yield page

    def located_pages(self, path: str, params: dict[str, object]) -> Iterator[tuple[str, dict]]:
        """Each page of a list with its request (:meth:`address`), for messages about its content."""
        params = {**params, "limit": self.page_size}
        page = self.get(path, params)
        address = self.address(path, params)
        while True:
            yield address, page
            link = page.get("next")
            if not link:
                return
            page = self.get(link)
            address = self.address(link)

    def address(self, path: str, params: dict[str, object] | None = None) -> str:
        """A request as messages name it: its URL and query (never the token, sent in a header)."""
        return _address(self.url(path), params)

    def shown(self, path: str, params: dict[str, object] | None = None) -> str:
        """A request as messages about the request name it: ``GET`` and its :meth:`address`."""
        return f"GET {self.address(path, params)}"

    def get_many(self, requests: Sequence[tuple[str, dict[str, object] | None]]) -> list[dict]:
        """The responses of many requests, in order, at most ``concurrency`` at a time."""
        return self.submit_many(requests).results()

    def submit_many(
        self, requests: Sequence[tuple[str, dict[str, object] | None]], parse: Callable[[dict], T] | None = None
    ) -> Batch[T]:
        """Start the requests (at most ``concurrency`` in flight) and return at once; ``parse`` runs
        on each response in the worker, so parsing one page overlaps with fetching the next (its
        errors name the request, as :func:`reading` does)."""

        def fetch(path: str, params: dict[str, object] | None):
            data = self.get(path, params)
            if parse is None:
                return data
            with reading(self.address(path, params)):
                return parse(data)

        return Batch([self._pool.submit(fetch, path, params) for path, params in requests], stop=self.stop)


class Batch(Generic[T]):
    """Requests in flight; :meth:`results` waits for them, in order.

    ``stop`` ends the client's retry waits: called when the wait is interrupted (Ctrl-C), so the
    requests in flight finish at once instead of sleeping out their retries.
    """

    def __init__(self, futures: list[Future], *, stop: Callable[[], None] | None = None) -> None:
        self._futures = futures
        self._stop = stop

    def results(self) -> list[T]:
        """Every result in order. The first failure is raised once every request in flight has
        finished: none is left running behind the caller's back."""
        try:
            return [future.result() for future in self._futures]
        except BaseException as exc:
            self.cancel(interrupted=not isinstance(exc, Exception))
            raise

    def cancel(self, *, interrupted: bool = False) -> None:
        """Cancel the requests not started and wait for the others; ``interrupted`` (Ctrl-C) stops
        the client's retries first, so that wait is short."""
        if interrupted and self._stop is not None:
            self._stop()
        for future in self._futures:
            future.cancel()
        for future in self._futures:
            if not future.cancelled():
                future.exception()  # wait for it; its error, if any, is not the one raised


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced ``depth`` ahead in a thread: the next page is fetched while this one is
    stored. Errors are raised where the item would have been; closing the iterator stops the thread.
    Use it with :func:`contextlib.closing`.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))

    thread = threading.Thread(target=produce, name="antenna-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = queue.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is done:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=1.0)


#: The :class:`_Deadline` of the request this thread is making (httpx's sync client does a
#: request's socket operations in the thread that makes it).
_current = threading.local()


class _Deadline:
    """One request's time budget; its clock starts at the first socket operation (once the
    request has a connection: waiting for one is bounded by httpx's pool timeout)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end: float | None = None

    def left(self) -> float:
        if self._end is None:
            self._end = time.monotonic() + self.seconds
        return self._end - time.monotonic()

    def reason(self) -> str:
        return f"no whole response in {self.seconds:g} s"


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """The timeout of one socket operation: httpx's, cut to what is left of this thread's request."""
    deadline = getattr(_current, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline.left()
    if left <= 0:
        raise error(deadline.reason())
    return left if timeout is None else min(timeout, left)


def _transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's transport, each socket operation of its connections bounded by :func:`_bounded`."""
    import httpcore
    import httpx

    class Backend(httpcore.NetworkBackend):
        """The socket backend, each operation bounded by the request's :class:`_Deadline`."""

        def __init__(self) -> None:
            self._backend = httpcore.SyncBackend()

        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            timeout = _bounded(timeout, httpcore.ConnectTimeout)
            return Stream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

        def connect_unix_socket(self, path, timeout=None, socket_options=None):
            timeout = _bounded(timeout, httpcore.ConnectTimeout)
            return Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

        def sleep(self, seconds: float) -> None:
            self._backend.sleep(seconds)

    class Stream(httpcore.NetworkStream):
        def __init__(self, stream: httpcore.NetworkStream) -> None:
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._stream.close()

        def start_tls(self, ssl_context, server_hostname=None, timeout=None):
            timeout = _bounded(timeout, httpcore.ConnectTimeout)
            return Stream(self._stream.start_tls(ssl_context, server_hostname, timeout))

        def get_extra_info(self, info: str):
            return self._stream.get_extra_info(info)

    transport = httpx.HTTPTransport(limits=limits)
    # The pool httpx builds for a direct connection, with the bounded backend (httpx's transport
    # takes no backend of its own). A proxy from the environment keeps httpx's own transport: its
    # body is still checked chunk by chunk (:meth:`AntennaClient._fetch`).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=Backend(),
    )
    return transport


def _shown(url: str, params: dict[str, object] | None) -> str:
    """The request as messages show it: method, path and query (the token is never part of it)."""
    return f"GET {_address(url, params)}"


def _address(url: str, params: dict[str, object] | None) -> str:
    query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
    return url + (("&" if "?" in url else "?") + query if query else "")


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _refused(status: int, content: bytes, shown: str, authenticated: bool) -> ConnectorError:
    try:
        detail = json.loads(content).get("detail") if content else None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        detail = None
    said = f" ({detail})" if isinstance(detail, str) else ""
    if status == 401:
        reason = f"refused by Antenna{said}: check --token-file or ${TOKEN_ENV}"
        return ConnectorError("token", "<not shown>", reason, status=status)
    if status == 403:
        hint = "the token's user may not read this project" if authenticated else "give a token (draft project?)"
        return ConnectorError("request", shown, f"HTTP 403 forbidden{said}: {hint}", status=status)
    if status == 404:
        return ConnectorError("request", shown, f"HTTP 404 not found{said}", status=status)
    return ConnectorError("request", shown, f"HTTP {status}{said}", status=status)
