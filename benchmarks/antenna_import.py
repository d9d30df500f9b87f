"""``taxopost import antenna`` end to end against a generated Antenna project on loopback.

A server on 127.0.0.1 generates the API's pages in the shapes of the recorded responses
(``../shared/data/antenna/antenna_api/``) for a project of N classifications over the 2,497
classes of the real AMI label space (4 detections per image, 2 per occurrence, one occurrence in
ten identified), each classification detail carrying 2,497 scores and 2,497 logits. Prints
classifications/s and requests/s of the import (PostgreSQL, the whole import: fetch, parse,
taxa, category map, bulk writes, determinations), and in the same run the time to fetch exactly
the same URLs with the same concurrency and no processing: the server's own rate, the bound the
import is measured against (target: within 2x). Peak traced memory at N/4 and N (target: flat),
and what a re-run costs. Medians of ``--repeats`` runs; the database is emptied between them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taxopost .venv/bin/python benchmarks/antenna_import.py
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import statistics
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taxopost")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")

import django

django.setup()

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from _common import SHARED_DATA  # noqa: E402
from taxopost.io.antenna import DEFAULT_CONCURRENCY, AntennaClient, AntennaSource  # noqa: E402
from taxopost.observations.antenna import import_antenna  # noqa: E402

API = "/api/v2"
PER_IMAGE, PER_OCCURRENCE, PAGE = 4, 2, 100
#: Distinct score vectors the server cycles through: generating 2,497 floats per request would
#: measure the generator, not the import.
POOL = 64


class Project:
    """A generated Antenna project: ids, taxa and vectors, and the JSON of each endpoint."""

    def __init__(self, n: int) -> None:
        ami = SHARED_DATA / "ami"
        if not ami.exists():
            sys.exit(f"benchmark needs the AMI label space in {ami} (set TAXOPOST_SHARED_DATA)")
        index = json.loads((ami / "ne-america_category_map.json").read_text())
        keys = sorted(index, key=index.__getitem__)
        with open(ami / "taxonomy_map.csv", newline="") as handle:
            lineage = {row["speciesKey"]: row for row in csv.DictReader(handle)}
        self.taxa: dict[int, dict] = {1: {"id": 1, "name": "Lepidoptera", "rank": "ORDER", "parent_id": None}}
        by_name = {"Lepidoptera": 1}

        def taxon(name: str, rank: str, parent: int, gbif: int | None = None) -> int:
            if name not in by_name:
                pk = len(self.taxa) + 1
                self.taxa[pk] = {"id": pk, "name": name, "rank": rank, "parent_id": parent, "gbif": gbif}
                by_name[name] = pk
            return by_name[name]

        self.labels, self.label_taxa, self.gbif = [], [], []
        for key in keys:
            row = lineage[key]
            family = taxon(row["family"], "FAMILY", 1)
            genus = taxon(row["genus"], "GENUS", family)
            self.label_taxa.append(taxon(row["species"], "SPECIES", genus, int(key)))
            self.labels.append(row["species"])
            self.gbif.append(int(key))
        self.n = n
        self.n_images = -(-n // PER_IMAGE)
        self.n_occurrences = -(-n // PER_OCCURRENCE)
        rng = np.random.default_rng(0)
        self.vectors = []
        for _ in range(POOL):
            logits = rng.normal(0, 2, len(self.labels))
            logits[rng.integers(len(self.labels))] += 6
            scores = np.exp(logits - logits.max())
            scores /= scores.sum()
            best = int(np.argmax(scores))
            scores_text, logits_text = (",".join(map(repr, v.tolist())) for v in (scores, logits))
            text = f'"scores": [{scores_text}], "logits": [{logits_text}]'
            self.vectors.append((text, best, float(scores[best])))

    # -- endpoints: (path, params) -> body ---------------------------------------------------------

    def respond(self, origin: str, path: str, params: dict[str, str]) -> str | None:
        parts = path[len(API) :].strip("/").split("/")
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", PAGE))
        if parts == ["projects", "1"]:
            return json.dumps({"id": 1, "name": "Benchmark project", "draft": False})
        if parts == ["captures", "collections", "1"]:
            return json.dumps(
                {"id": 1, "name": "Benchmark capture set", "project": 1, "source_images_count": self.n_images}
            )
        if parts == ["captures"]:
            rows = [self._capture(pk) for pk in range(offset + 1, min(offset + limit, self.n_images) + 1)]
            return self._page(origin, path, params, rows, self.n_images)
        if parts == ["occurrences"]:
            last = min(offset + limit, self.n_occurrences)
            rows = [{"id": pk, "identifications": self._identifications(pk)} for pk in range(offset + 1, last + 1)]
            return self._page(origin, path, params, rows, self.n_occurrences)
        if len(parts) == 2 and parts[0] == "occurrences":
            return self._occurrence(int(parts[1]))
        if len(parts) == 2 and parts[0] == "classifications":
            return self._classification(int(parts[1]))
        if parts == ["ml", "labels", "1"]:
            data = [
                {"index": i, "label": label, "gbif_key": key, "taxon_rank": "SPECIES"}
                for i, (label, key) in enumerate(zip(self.labels, self.gbif, strict=True))
            ]
            return json.dumps({"id": 1, "labels": self.labels, "data": data})
        if parts == ["taxa"]:
            ids = sorted(self.taxa)[offset : offset + limit]
            rows = [{k: v for k, v in self.taxa[pk].items() if k != "gbif"} for pk in ids]
            return self._page(origin, path, params, rows, len(self.taxa))
        if len(parts) == 2 and parts[0] == "taxa":
            taxon = self.taxa[int(parts[1])]
            parent = self.taxa.get(taxon["parent_id"])
            return json.dumps(
                {
                    "id": taxon["id"],
                    "name": taxon["name"],
                    "rank": taxon["rank"],
                    "gbif_taxon_key": taxon.get("gbif"),
                    "parent": None if parent is None else {"id": parent["id"], "name": parent["name"]},
                }
            )
        return None

    def _page(self, origin: str, path: str, params: dict[str, str], rows: list, count: int) -> str:
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", PAGE))
        following = None
        if offset + limit < count:
            query = "&".join(f"{k}={v}" for k, v in sorted({**params, "offset": offset + limit}.items()))
            following = f"{origin}{path}?{query}"
        return json.dumps({"count": count, "next": following, "previous": None, "results": rows})

    def _capture(self, pk: int) -> dict:
        minute = pk % 600
        return {
            "id": pk,
            "path": f"station/{pk:07d}.jpg",
            "width": 4096,
            "height": 2160,
            "timestamp": f"2024-07-{1 + pk // 6000 % 28:02d}T{19 + minute // 120:02d}:{minute // 2 % 60:02d}:00",
            "detections_count": PER_IMAGE,
        }

    def _identifications(self, occurrence: int) -> list:
        if occurrence % 10:
            return []
        detection = (occurrence - 1) * PER_OCCURRENCE + 1
        _, best, _ = self.vectors[detection % POOL]
        taxon = self.label_taxa[best] if occurrence % 30 else self.taxa[self.label_taxa[best]]["parent_id"]
        return [
            {
                "id": occurrence,
                "taxon": {"id": taxon, "name": self.taxa[taxon]["name"]},
                "user": {"id": 3, "name": "Ida Identifier"},
                "withdrawn": False,
                "comment": "",
                "created_at": "2024-08-01T10:00:00",
            }
        ]

    def _occurrence(self, pk: int) -> str:
        detections = []
        for d in range((pk - 1) * PER_OCCURRENCE + 1, min(pk * PER_OCCURRENCE, self.n) + 1):
            image = (d - 1) // PER_IMAGE + 1
            x = 100 + 800 * ((d - 1) % PER_IMAGE)
            detections.append(
                {
                    "id": d,
                    "capture": {"id": image, "width": 4096, "height": 2160},
                    "bbox": [x, 500, x + 300, 800],
                    "classifications": [
                        {"id": d, "terminal": True, "algorithm": {"id": 1, "key": "ami-ne-america"}, "applied_to": None}
                    ],
                }
            )
        return json.dumps({"id": pk, "detections": detections})

    def _classification(self, pk: int) -> str:
        text, best, score = self.vectors[pk % POOL]
        algorithm = json.dumps(
            {"id": 1, "key": "ami-ne-america", "name": "AMI NE America", "version_name": "1", "category_map": {"id": 1}}
        )
        return (
            f'{{"id": {pk}, "taxon": {{"id": {self.label_taxa[best]}}}, "score": {score!r}, '
            f'"algorithm": {algorithm}, {text}, "applied_to": null, "created_at": "2024-07-02T03:00:00"}}'
        )


class Server:
    """The generated project served from a child process, so that the server's work does not share
    this process's interpreter lock with the import it serves (nor its traced memory)."""

    def __init__(self, n: int) -> None:
        ready: multiprocessing.Queue = multiprocessing.Queue()
        self.process = multiprocessing.Process(target=_serve, args=(n, ready), daemon=True)
        self.process.start()
        self.origin = ready.get(timeout=120)

    def urls(self) -> list[str]:
        """The URLs requested since the last call (the server keeps them)."""
        return httpx.get(self.origin + "/__urls__", timeout=60).json()

    def close(self) -> None:
        self.process.terminate()
        self.process.join()


def _serve(n: int, ready) -> None:
    project = Project(n)
    urls: list[str] = []
    origin = ""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs: 40 ms a request

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/__urls__":
                body = json.dumps(urls)
                urls.clear()
            else:
                body = project.respond(origin, parts.path, dict(parse_qsl(parts.query)))
                urls.append(origin + self.path)
            data = (body or '{"detail": "Not found."}').encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    class Quiet(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:  # a client closing its connections
            pass

    httpd = Quiet(("127.0.0.1", 0), Handler)
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    ready.put(origin)
    httpd.serve_forever()


def run_import(server: Server) -> tuple[float, int, object]:
    server.urls()  # forget the requests before this import
    start = time.perf_counter()
    with AntennaClient(server.origin + API, token="b" * 40, page_size=PAGE) as client:
        summary = import_antenna(AntennaSource(client, 1, 1, zone=ZoneInfo("America/New_York")))
    return time.perf_counter() - start, client.requests, summary


def fetch_only(urls: list[str]) -> float:
    """The same URLs, same concurrency and connection reuse, bodies read and dropped."""
    limits = httpx.Limits(max_connections=DEFAULT_CONCURRENCY, max_keepalive_connections=DEFAULT_CONCURRENCY)
    with httpx.Client(limits=limits, timeout=30) as http, ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
        start = time.perf_counter()
        for response in pool.map(http.get, urls):
            response.raise_for_status()
        return time.perf_counter() - start


def empty() -> None:
    call_command("flush", interactive=False, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifications", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        n = args.classifications
        project = Project(n)
        server = Server(n)
        print(f"{n:,} classifications of {len(project.labels):,} classes, {project.n_images:,} images, "
              f"{project.n_occurrences:,} occurrences, {len(project.taxa):,} taxa")  # fmt: skip
        imports, fetches, requests = [], [], 0
        for _ in range(args.repeats):
            empty()
            seconds, requests, summary = run_import(server)
            urls = server.urls()
            imports.append(seconds)
            fetches.append(fetch_only(urls))
            print(f"  import {seconds:.1f} s ({requests:,} requests), fetch only {fetches[-1]:.1f} s", flush=True)
        assert summary.created.created["classifications"] == n, summary.lines()
        t_import, t_fetch = statistics.median(imports), statistics.median(fetches)
        print(f"import: {n / t_import:,.0f} classifications/s, {requests / t_import:,.0f} requests/s "
              f"(median {t_import:.1f} s of {', '.join(f'{t:.1f}' for t in imports)})")  # fmt: skip
        print(f"fetch only, same URLs: {requests / t_fetch:,.0f} requests/s (median {t_fetch:.1f} s); "
              f"import / fetch = {t_import / t_fetch:.2f}x (target <= 2x)")  # fmt: skip
        started = time.perf_counter()
        _, again, summary = run_import(server)
        print(f"re-run on the imported set: {time.perf_counter() - started:.1f} s, {again:,} requests, "
              f"{summary.created.created.get('classifications', 0)} classifications added")  # fmt: skip
        server.close()
        peaks = {}
        for size in (n // 4, n):  # tracemalloc slows Python: memory runs are not timed
            empty()
            small = Server(size)
            tracemalloc.start()
            run_import(small)
            peaks[size] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            small.close()
        (a, pa), (b, pb) = peaks.items()
        print(
            f"peak traced memory: {pa:.0f} MiB at {a:,}, {pb:.0f} MiB at {b:,} "
            f"({pb / pa:.2f}x at {b / a:.0f}x the size)"
        )
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
