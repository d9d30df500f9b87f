"""The probe catalogue: real requests to a served taxopost and real commands, each with the outcome it must have.

:func:`run_catalogue` builds a small platform in a folder of its own, serves it twice with
``taxopost serve`` on loopback (once with a working embedded executor, once with a broker
nothing listens on), runs every probe and returns one :class:`Result` each. A probe passes when
its outcome is the expected one *and* the database is as it must be afterwards: unchanged for a
probe that must not write. Rows that disappear from the data tables (taxa, observations,
classifiers, jobs) without a probe asking for it are counted as data lost.

:func:`table` turns the results into the figures docs/reliability.md shows.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from tests.loadtools import free_port

REPO = Path(__file__).resolve().parents[2]
TAXOPOST = str(Path(sys.executable).with_name("taxopost"))
NOWHERE = "redis://127.0.0.1:1/0"  # a broker URL nothing listens on
CATEGORIES = ("auth", "permissions", "input", "faults")
#: Tables whose rows are data (what a user would lose), as opposed to sessions and logs of logins.
DATA_TABLES = ("taxa_", "observations_", "ml_", "jobs_job", "jobs_jobchunk", "postprocessing_")
PASSWORD = "a-probe-password-1"

SETUP = """
import json, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from taxopost.django_setup import setup
setup()
from django.contrib.auth.models import Permission, User
from taxopost.access.tokens import create_token
from taxopost.jobs.models import Job
from taxopost.observations.models import Occurrence
from taxopost.postprocessing.running.embedded import EmbeddedExecutor
from taxopost.postprocessing.running.operations import create_job, submit_job
from tests.platform.conftest import load_platform

capture_set = load_platform(Path({folder!r}))
users = {{
    "root": User.objects.create_superuser("root", "root@example.org", {password!r}),
    "reader": User.objects.create_user("reader", "reader@example.org", {password!r}),
    "bare_staff": User.objects.create_user("bare", "bare@example.org", {password!r}, is_staff=True),
    "viewer": User.objects.create_user("viewer", "viewer@example.org", {password!r}, is_staff=True),
}}
users["viewer"].user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
job = create_job("rank_rollup", Job.CAPTURE_SET, capture_set.pk, {{}})
submit_job(job, EmbeddedExecutor())
print(json.dumps({{
    "capture_set": capture_set.pk,
    "job": job.pk,
    "occurrence": Occurrence.objects.order_by("pk").first().pk,
    "tokens": {{name: create_token(user)[1] for name, user in users.items()}},
}}))
"""


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    """A ``taxopost serve`` process on a folder's database."""

    folder: Path
    port: int
    process: subprocess.Popen
    log: Path

    def request(self, method: str, path: str, *, token: str | None = None, body: bytes | str | None = None,
                headers: dict | None = None) -> Reply:  # fmt: skip
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        sent = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Token {token}"
        if isinstance(body, str):
            body = body.encode()
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        headers: dict[str, str] = {}
        for name, value in response.getheaders():  # several Set-Cookie headers: one per line
            headers[name.lower()] = f"{headers[name.lower()]}\n{value}" if name.lower() in headers else value
        reply = Reply(response.status, response.read(), headers)
        connection.close()
        return reply

    def post_json(self, path: str, data, *, token: str | None = None, headers: dict | None = None) -> Reply:
        body = data if isinstance(data, str | bytes) else json.dumps(data)
        return self.request("POST", path, token=token, body=body, headers={"Content-Type": "application/json",
                                                                         **(headers or {})})  # fmt: skip

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def environment(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAXOPOST_", "DATABASE_URL", "DJANGO_"))}
    env.update(TAXOPOST_DATA_DIR=str(folder), PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]), **extra)
    return env


def serve(folder: Path, **env: str) -> Server:
    port, log = free_port(), folder / "server.log"
    handle = open(log, "w")  # noqa: SIM115 - the server's stderr, read by the probes
    process = subprocess.Popen([TAXOPOST, "serve", "--port", str(port)], env=environment(folder, **env),
                               stdout=handle, stderr=subprocess.STDOUT)  # fmt: skip
    server = Server(folder, port, process, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.request("GET", "/admin/login/")
            return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"taxopost serve did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)


def taxopost(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([TAXOPOST, *args], env=environment(folder, **env), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip


def fingerprint(folder: Path) -> dict[str, tuple[int, str]]:
    """``{table: (rows, sha256 of its rows)}`` of the data tables of a folder's database."""
    result = {}
    with sqlite3.connect(folder / "taxopost.sqlite3", timeout=30) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in sorted(t for t in tables if t.startswith(DATA_TABLES)):
            rows = db.execute(f'SELECT * FROM "{name}" ORDER BY 1').fetchall()
            result[name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return result


def rows_lost(before: dict, after: dict) -> int:
    return sum(max(0, count - after.get(name, (0, ""))[0]) for name, (count, _) in before.items())


@dataclass
class World:
    """What the probes act on: two servers, the command, the ids and tokens of the platform."""

    main: Server
    broken: Server  # its broker is NOWHERE
    ids: dict
    tokens: dict
    folder: Path


@dataclass(frozen=True)
class Probe:
    category: str
    name: str
    act: Callable[[World], tuple[bool, str]]  # (outcome as expected, what happened)
    writes: bool = False  # may change the data tables
    on: str = "main"  # whose database it acts on: "main" or "broken"


@dataclass
class Result:
    probe: Probe
    passed: bool
    detail: str
    lost: int = 0
    notes: list[str] = field(default_factory=list)


# -- the probes --------------------------------------------------------------------------------------

API = "/api/v1"


def _job_body(world: World, **config) -> dict:
    return {"task": "rank_rollup", "scope": {"type": "capture_set", "id": world.ids["capture_set"]}, "config": config}


def _status(reply: Reply, *expected: int) -> tuple[bool, str]:
    return reply.status in expected, f"{reply.status} {reply.body[:160]!r}"


def _refusal(reply: Reply, status: int, *words: str, limit: int = 2000) -> tuple[bool, str]:
    """A refusal with a JSON message naming ``words``, and a bounded body."""
    text = reply.body.decode(errors="replace")
    ok = reply.status == status and reply.headers.get("content-type", "").startswith("application/json")
    ok = ok and all(word in text for word in words) and len(reply.body) <= limit
    return ok, f"{reply.status} ({len(reply.body)} bytes) {text[:160]!r}"


def _login(world: World, username: str, password: str) -> Reply:
    server = world.main
    page = server.request("GET", "/admin/login/", headers={"Accept": "text/html"})
    cookie = _cookies(page, "csrftoken")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"})
    return server.request("POST", "/admin/login/", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Accept": "text/html"})  # fmt: skip


def _settled(world: World, reply: Reply) -> Reply:
    """The reply, once the job it may have created has finished (it runs on a thread of the server)."""
    if reply.status == 201:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = world.main.request("GET", f"{API}/jobs/{reply.json()['id']}/", token=world.tokens["root"]).json()
            if job["status"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(0.1)
    return reply


def _cookies(reply: Reply, name: str) -> str:
    """The ``name=value`` of a cookie the reply sets ("" when it sets none)."""
    for line in reply.headers.get("set-cookie", "").split("\n"):
        if line.startswith(f"{name}="):
            return line.split(";", 1)[0]
    return ""


def _logged_in(reply: Reply) -> bool:
    return reply.status == 302 and "sessionid=" in reply.headers.get("set-cookie", "")


def _repeated_logins(world: World) -> tuple[bool, str]:
    for _ in range(30):
        _login(world, "root", "not-the-password")
    right = _login(world, "root", PASSWORD)
    return not _logged_in(right), f"after 30 wrong passwords the right one: {right.status}"


def _session_page(world: World, username: str, path: str) -> Reply:
    cookie = _cookies(_login(world, username, PASSWORD), "sessionid")
    return world.main.request("GET", path, headers={"Cookie": cookie, "Accept": "text/html"})


def _cli_one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> tuple[bool, str]:
    lines = result.stderr.strip().splitlines()
    ok = result.returncode == code and len(lines) == 1 and "Traceback" not in result.stderr
    ok = ok and all(word in result.stderr for word in words)
    return ok, f"exit {result.returncode}: {result.stderr.strip()[:160]!r}"


def _nested(levels: int):
    value = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def _fifo(world: World, suffix: str) -> str:
    path = world.folder / f"pipe{suffix}"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def _examples(name: str) -> str:
    return str(REPO / "src" / "taxopost" / "examples" / name)


def _broker_down_run(world: World) -> tuple[bool, str]:
    result = taxopost(world.broken.folder, "run", "rank_rollup", "--capture-set", "station-1",
                      TAXOPOST_BROKER_URL=NOWHERE)  # fmt: skip
    ok, detail = _cli_one_line(result, 2, "refused it", "jobs resume")
    with sqlite3.connect(world.broken.folder / "taxopost.sqlite3") as db:
        queued = db.execute("SELECT count(*) FROM jobs_job WHERE status IN ('created', 'queued')").fetchone()[0]
    return ok and queued == 0, f"{detail}; jobs left queued: {queued}"


def _broker_down_api(world: World) -> tuple[bool, str]:
    reply = world.broken.post_json(f"{API}/jobs/", _job_body(world), token=world.tokens["root"],
                                   headers={"Idempotency-Key": "probe-1"})  # fmt: skip
    if reply.status != 503:
        return False, f"{reply.status} {reply.body[:160]!r}"
    job = reply.json()["job"]
    again = world.broken.post_json(f"{API}/jobs/", _job_body(world), token=world.tokens["root"],
                                   headers={"Idempotency-Key": "probe-1"})  # fmt: skip
    same = again.status == 503 and again.json()["job"]["id"] == job["id"]
    resumed = world.broken.post_json(f"{API}/jobs/{job['id']}/resume/", {}, token=world.tokens["root"])
    again_failed = resumed.status == 503 and resumed.json()["job"]["status"] == "failed"
    ok = job["status"] == "failed" and "resume" in job["operations"] and same and again_failed
    return ok, (f"503 {reply.json()['detail'][:100]!r}; job {job['id']} {job['status']}; retry: same job {same}; "
                f"resume: {resumed.status}")  # fmt: skip


def _stale_job_resumes(world: World) -> tuple[bool, str]:
    shell = (
        "from datetime import timedelta; from django.utils import timezone; from taxopost.jobs.models import Job; "
        "from taxopost.postprocessing.running.operations import create_job; "
        f"j = create_job('small_size_filter', 'capture_set', {world.ids['capture_set']}, {{}}); "
        "Job.objects.filter(pk=j.pk).update(status='running', heartbeat_at=timezone.now() - timedelta(hours=1)); "
        "print(j.pk)"
    )
    made = taxopost(world.broken.folder, "manage", "shell", "-c", shell)
    job = made.stdout.strip().splitlines()[-1] if made.returncode == 0 else "?"
    reaped = taxopost(world.broken.folder, "jobs", "reap", "--resume")
    with sqlite3.connect(world.broken.folder / "taxopost.sqlite3") as db:
        status = db.execute("SELECT status FROM jobs_job WHERE id = ?", [job]).fetchone()
    ok = reaped.returncode == 0 and status == ("succeeded",)
    return ok, f"job {job}: {status[0] if status else None} after `jobs reap --resume`"


def _locked_database(world: World) -> tuple[bool, str]:
    lists = world.folder / "checklist.txt"
    lists.write_text("Vanessa\n")
    with sqlite3.connect(world.broken.folder / "taxopost.sqlite3", timeout=30, isolation_level=None) as db:
        db.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            result = taxopost(world.broken.folder, "import", "taxa-list", str(lists), "--name", "locked",
                              TAXOPOST_SQLITE_TIMEOUT="1")  # fmt: skip
        finally:
            db.execute("ROLLBACK")
    return _cli_one_line(result, 1, "database", "lock")


def _server_error_logged(world: World) -> tuple[bool, str]:
    with sqlite3.connect(world.broken.folder / "taxopost.sqlite3", timeout=30) as db:
        db.execute("ALTER TABLE taxa_taxalist RENAME TO taxa_taxalist_away")  # the fault: a table gone
    try:
        reply = world.broken.request("GET", f"{API}/taxa-lists/", token=world.tokens["root"])
        time.sleep(0.5)
        log = world.broken.log.read_text(errors="replace")
    finally:
        with sqlite3.connect(world.broken.folder / "taxopost.sqlite3", timeout=30) as db:
            db.execute("ALTER TABLE taxa_taxalist_away RENAME TO taxa_taxalist")
    logged = "Traceback (most recent call last)" in log and "no such table: taxa_taxalist" in log
    return reply.status == 500 and logged, f"{reply.status}; traceback in the server's log: {logged}"


def catalogue() -> list[Probe]:
    """Every probe, in the order they run (the ones that write last in each server's turn)."""
    jobs, job = f"{API}/jobs/", lambda w: f"{API}/jobs/{w.ids['job']}"
    review = lambda w: f"/review/capture-sets/{w.ids['capture_set']}/"  # noqa: E731
    evaluation = lambda w: f"/evaluation/capture-sets/{w.ids['capture_set']}/"  # noqa: E731
    t = lambda w, name: w.tokens[name]  # noqa: E731
    P = Probe
    return [
        # auth: who may get in at all
        P("auth", "anonymous API read is 401", lambda w: _status(w.main.request("GET", f"{API}/taxa/"), 401)),
        P("auth", "anonymous job creation is 401", lambda w: _status(w.main.post_json(jobs, _job_body(w)), 401)),
        P("auth", "a wrong token is 401", lambda w: _status(w.main.request("GET", jobs, token="0" * 40), 401)),
        P("auth", "a malformed Authorization header is 401", lambda w: _status(
            w.main.request("GET", f"{API}/jobs/", headers={"Authorization": "Token"}), 401)),
        P("auth", "the admin sends anonymous users to its login", lambda w: _status(
            w.main.request("GET", "/admin/", headers={"Accept": "text/html"}), 302)),
        P("auth", "the review page sends anonymous users to the login", lambda w: _status(
            w.main.request("GET", review(w), headers={"Accept": "text/html"}), 302)),
        P("auth", "the evaluation page sends anonymous users to the login", lambda w: _status(
            w.main.request("GET", evaluation(w), headers={"Accept": "text/html"}), 302)),
        P("auth", "a wrong password does not log in", lambda w: (
            not _logged_in(reply := _login(w, "root", "wrong")), str(reply.status))),
        P("auth", "the schema is public (it describes no data)", lambda w: _status(
            w.main.request("GET", f"{API}/schema/"), 200)),
        P("auth", "logins are throttled after 30 wrong passwords", _repeated_logins),
        # permissions: what a logged-in account may do
        P("permissions", "a reader cannot create a job", lambda w: _status(
            w.main.post_json(jobs, _job_body(w), token=t(w, "reader")), 403)),
        P("permissions", "a reader cannot revert a job", lambda w: _status(
            w.main.post_json(f"{job(w)}/revert/", {}, token=t(w, "reader")), 403)),
        P("permissions", "a reader cannot cancel a job", lambda w: _status(
            w.main.post_json(f"{job(w)}/cancel/", {}, token=t(w, "reader")), 403)),
        P("permissions", "a reader cannot open the review page", lambda w: _status(
            _session_page(w, "reader", review(w)), 302, 403)),
        P("permissions", "staff without permissions cannot create a job", lambda w: _status(_settled(
            w, w.main.post_json(jobs, {**_job_body(w), "dry_run": True}, token=t(w, "bare_staff"))), 403),
          writes=True),
        P("permissions", "view-only staff cannot revert a job", lambda w: _status(
            w.main.post_json(f"{job(w)}/revert/", {}, token=t(w, "viewer")), 403), writes=True),
        # without a role on the project its pages do not exist for them (docs/access.md)
        P("permissions", "staff without permissions cannot open the review page", lambda w: _status(
            _session_page(w, "bare", review(w)), 403, 404)),
        P("permissions", "staff without permissions cannot open the evaluation page", lambda w: _status(
            _session_page(w, "bare", evaluation(w)), 403, 404)),
        P("permissions", "view-only staff sees no API token in clear", lambda w: (
            t(w, "root") not in (page := _session_page(w, "viewer", "/admin/access/accesstoken/")).body.decode(
                errors="replace"), f"{page.status}")),
        P("permissions", "a superuser reads the jobs", lambda w: _status(
            w.main.request("GET", jobs, token=t(w, "root")), 200)),
        # input: nothing a client sends is a server error
        P("input", "JSON nested 5,000 levels is 400", lambda w: _refusal(
            w.main.post_json(jobs, "[" * 5000 + "]" * 5000, token=t(w, "root")), 400, "nested too deeply")),
        P("input", "JSON nested 100 levels inside the config is 400", lambda w: _refusal(w.main.post_json(
            jobs, _job_body(w, x=_nested(100)), token=t(w, "root")), 400, "nested too deeply")),
        P("input", "an integer of 5,000 digits is 400", lambda w: _refusal(w.main.post_json(
            jobs, '{"task": "rank_rollup", "scope": {"type": "capture_set", "id": ' + "9" * 5000 + "}}",
            token=t(w, "root")), 400, "5,000 digits")),
        P("input", "1e999 is 400", lambda w: _refusal(w.main.post_json(
            jobs, '{"task": "rank_rollup", "scope": {"type": "capture_set", "id": 1e999}}', token=t(w, "root")),
            400, "not a finite")),
        P("input", "NaN is 400", lambda w: _refusal(w.main.post_json(
            jobs, '{"task": "rank_rollup", "config": {"thresholds": {"genus": NaN}}}', token=t(w, "root")),
            400, "NaN")),
        P("input", "a scope id beyond 64 bits is 400 naming the scope", lambda w: _refusal(w.main.post_json(
            jobs, {**_job_body(w), "scope": {"type": "capture_set", "id": 10**30}}, token=t(w, "root")),
            400, "scope")),
        P("input", "a body over 10 MB is 400 with a message", lambda w: _refusal(w.main.post_json(
            jobs, {**_job_body(w), "config": {"x": "a" * 11_000_000}}, token=t(w, "root")), 400, "limit")),
        P("input", "20,000 form fields are 400", lambda w: _refusal(w.main.request(
            "POST", jobs, token=t(w, "root"), body=urlencode([("f", "1")] * 20_000),
            headers={"Content-Type": "application/x-www-form-urlencoded"}), 400, "form fields")),
        P("input", "malformed JSON is 400", lambda w: _refusal(
            w.main.post_json(jobs, '{"task": ', token=t(w, "root")), 400, "JSON parse error")),
        P("input", "a 100 kB task name is quoted by a prefix only", lambda w: _refusal(w.main.post_json(
            jobs, {**_job_body(w), "task": "x" * 100_000}, token=t(w, "root")), 400, "task", limit=1000)),
        P("input", "10,000 unknown config keys get a bounded answer", lambda w: _refusal(w.main.post_json(
            jobs, _job_body(w, **{f"k{i}": i for i in range(10_000)}), token=t(w, "root")), 400, "config",
            limit=20_000)),
        P("input", "a threshold of 1.5 is 400 naming thresholds.genus", lambda w: _refusal(w.main.post_json(
            jobs, _job_body(w, thresholds={"genus": 1.5}), token=t(w, "root")), 400, "thresholds.genus")),
        P("input", "SQL in a filter changes nothing", lambda w: _status(w.main.request(
            "GET", f"{API}/taxa/?name=%27%3B%20DROP%20TABLE%20taxa_taxon%3B%20--", token=t(w, "root")), 200)),
        P("input", "NUL in a config string is 400 naming its place", lambda w: _refusal(w.main.post_json(
            jobs, _job_body(w, x="a\x00b"), token=t(w, "root")), 400, "$.config.x")),
        P("input", "NUL in a query parameter is 400", lambda w: _status(w.main.request(
            "GET", f"{API}/capture-sets/?name=a%00b", token=t(w, "root")), 400)),
        P("input", "an admin capture-set filter that is no id is the admin's error page", lambda w: _status(
            _session_page(w, "root", "/admin/observations/occurrence/?capture_set=abc"), 302)),
        P("input", "a 300-character Idempotency-Key is 400", lambda w: _refusal(w.main.post_json(
            jobs, _job_body(w), token=t(w, "root"), headers={"Idempotency-Key": "k" * 300}), 400, "Idempotency-Key")),
        P("input", "/dev/zero as --scores: exit 2, one line", lambda w: _cli_one_line(taxopost(
            w.folder, "rollup", "--scores", "/dev/zero", "--taxonomy", _examples("taxonomy.csv"), "--category-map",
            _examples("category_map.json"), "--output", str(w.folder / "out.csv")), 2, "device")),
        P("input", "a named pipe as a prediction file: exit 2, one line", lambda w: _cli_one_line(taxopost(
            w.main.folder, "import", "predictions", _fifo(w, ".jsonl")), 2, "named pipe")),
        P("input", "a named pipe as a taxonomy: exit 2, one line", lambda w: _cli_one_line(taxopost(
            w.main.folder, "import", "taxonomy", _fifo(w, ".csv")), 2, "named pipe")),
        P("input", "/dev/zero as identifications: exit 2, one line", lambda w: _cli_one_line(taxopost(
            w.main.folder, "import", "identifications", "/dev/zero"), 2, "device")),
        # faults: a service or a process away
        P("faults", "taxopost run with the broker down: exit 2, one line, no job left queued", _broker_down_run,
          writes=True, on="broken"),
        P("faults", "the API with the broker down: 503, job failed and resumable; a retry, the same job; resume, 503",
          _broker_down_api, writes=True, on="broken"),
        P("faults", "a stale job is reaped and resumed to the end", _stale_job_resumes, writes=True, on="broken"),
        P("faults", "a locked database: exit 1, one line, nothing written", _locked_database, on="broken"),
        P("faults", "a server error is logged with its traceback", _server_error_logged, on="broken"),
    ]  # fmt: skip


def run_catalogue(folder: Path) -> list[Result]:
    """Build the platform in ``folder``, serve it and run every probe; the servers are stopped after."""
    main, broken = folder / "main", folder / "broken"
    main.mkdir()
    setup = taxopost(main, "manage", "migrate", "--verbosity=0")
    if setup.returncode != 0:
        raise RuntimeError(setup.stderr)
    made = subprocess.run([sys.executable, "-c", SETUP.format(repo=str(REPO), folder=str(main), password=PASSWORD)],
                          env=environment(main), capture_output=True, text=True, timeout=300)  # fmt: skip
    if made.returncode != 0:
        raise RuntimeError(made.stderr)
    ids = json.loads(made.stdout.strip().splitlines()[-1])
    shutil.copytree(main, broken)
    servers = {"main": serve(main), "broken": serve(broken, TAXOPOST_BROKER_URL=NOWHERE)}
    world = World(servers["main"], servers["broken"], ids, ids["tokens"], folder)
    results = []
    try:
        for probe in catalogue():
            target = servers[probe.on].folder
            before = fingerprint(target)
            try:
                passed, detail = probe.act(world)
            except Exception as exc:  # a probe that cannot even run is a failure, with why
                passed, detail = False, f"{type(exc).__name__}: {exc}"[:300]
            after = fingerprint(target)
            result = Result(probe, passed, detail, lost=0 if probe.writes else rows_lost(before, after))
            if not probe.writes and after != before:
                result.passed = False
                result.notes.append("changed the data tables")
            results.append(result)
    finally:
        for server in servers.values():
            server.stop()
    return results


def table(results: list[Result]) -> str:
    """The figures of docs/reliability.md: probes, failures and rows lost by category, then the failures."""
    lines = ["| category | probes | failures | data lost (rows) |", "| --- | ---: | ---: | ---: |"]
    for category in CATEGORIES:
        mine = [r for r in results if r.probe.category == category]
        lines.append(f"| {category} | {len(mine)} | {sum(not r.passed for r in mine)} | {sum(r.lost for r in mine)} |")
    lines.append(f"| **total** | **{len(results)}** | **{sum(not r.passed for r in results)}** | "
                 f"**{sum(r.lost for r in results)}** |")  # fmt: skip
    failing = [r for r in results if not r.passed]
    if failing:
        lines += ["", "Failing now:", ""]
        lines += [f"- {r.probe.category}: {r.probe.name}" for r in failing]
    return "\n".join(lines)
