"""``taxopost import antenna`` against the 306 recorded responses of a real Antenna server.

A replay server on 127.0.0.1 (``antenna_server.py``) answers with the recordings; faults are
injected there, never in the project's code. Every failure must end with a clear message and an
unchanged database; every transient one with a retry that succeeds.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.errors import InputError
from taxopost.io.antenna import (
    CYCLE,
    MISSING_SOURCE,
    AntennaClient,
    AntennaSource,
    ConnectorError,
    check_base_url,
    read_token,
)
from taxopost.ml.models import Algorithm, CategoryMap
from taxopost.observations.antenna import (
    BAD_LOGITS,
    DUPLICATE_OUTPUT,
    OUTSIDE,
    SOURCE_DIFFERS,
    TAKEN_OVER,
    import_antenna,
)
from taxopost.observations.models import (
    CaptureSet,
    Classification,
    Detection,
    Identification,
    Occurrence,
    Project,
    SourceImage,
)
from taxopost.observations.vectors import stack
from taxopost.taxa.models import Taxon

from ..conftest import require
from .antenna_server import CREATED, RANK_ROLLUP, TOKEN, Fault, ReplayServer, derived_detail, masking_algorithm

pytestmark = [pytest.mark.django_db, pytest.mark.shared_data]

NEW_YORK = ZoneInfo("America/New_York")
CREATED_LATER = "2026-12-02T03:00:00"  # naive, in the server's time zone
TABLES = (Taxon, CategoryMap, Algorithm, Project, SourceImage, CaptureSet, Detection, Occurrence, Classification,
          Identification)  # fmt: skip


@pytest.fixture(scope="module")
def recordings(shared_data) -> Path:
    return require(shared_data / "antenna" / "antenna_api", "the recorded Antenna responses")


@pytest.fixture
def server(recordings):
    with ReplayServer(recordings) as replay:
        yield replay
    assert not replay.unmatched, f"requests no recording answers: {replay.unmatched[:5]}"


def recorded(recordings: Path, name: str) -> dict:
    return json.loads((recordings / name).read_text())["body"]


def run(server: ReplayServer, capture_set: int = 2, *, token: str | None = TOKEN, every_capture=False, **options):
    client_options = {"page_size": 10, "backoff": 0.01, "timeout": 5.0} | options
    with AntennaClient(server.url, token=token, **client_options) as client:
        return import_antenna(AntennaSource(client, 1, capture_set, zone=NEW_YORK), every_capture=every_capture)


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in TABLES)


def test_import_of_the_recording_field_by_field(server, recordings):
    summary = run(server)
    assert summary.capture_set == "Rec capture set (all 30)"
    capture_set = CaptureSet.objects.get(name=summary.capture_set)
    assert capture_set.images.count() == 30  # the 6 images without detections too
    assert Occurrence.objects.count() == 25 and Detection.objects.count() == 60
    assert Classification.objects.count() == 60 and Identification.objects.count() == 9

    # images: size, and naive New York times stored as the instants they are
    image = SourceImage.objects.get(path="rec_station_1/2024_07_01/20240701020000-snapshot.jpg")
    assert (image.width, image.height) == (4096, 2160)
    assert image.timestamp == datetime(2024, 7, 1, 2, 0, tzinfo=UTC)

    # detections: pixel boxes on their capture, in their occurrence (both keyed by Antenna's id)
    for n in range(1, 61):
        body = recorded(recordings, f"{122 + n:03d}_detection_{n}.json")
        detection = Detection.objects.select_related("source_image", "occurrence").get(key=str(n))
        image = int(body["source_image"].rstrip("/").rsplit("/", 1)[1])
        capture = recorded(recordings, f"{271 + image:03d}_capture_{image}.json")
        assert detection.bbox == body["bbox"]
        assert detection.source_image.path == capture["path"]
        assert detection.occurrence.key == body["occurrence"].rstrip("/").rsplit("/", 1)[1]

    # classifications: 40 scores and 40 logits each, the argmax taxon, terminal, model output
    algorithm = Algorithm.objects.get(key="rec-ne-america-species-40")
    labels = recorded(recordings, "104_category_map_detail.json")["labels"]
    assert algorithm.category_map.labels == labels and algorithm.version == "2024-rec"
    for n in range(1, 61):
        body = recorded(recordings, f"{29 + n:03d}_classification_{n}.json")
        detection = next(
            d for d in range(1, 61)
            if recorded(recordings, f"{122 + d:03d}_detection_{d}.json")["classifications"][0]["id"] == n
        )  # fmt: skip
        clf = Classification.objects.select_related("taxon").get(detection__key=str(detection))
        scores, logits = np.frombuffer(clf.scores, "<f4"), np.frombuffer(clf.logits, "<f4")
        assert scores.shape == logits.shape == (40,)
        np.testing.assert_array_equal(scores, np.asarray(body["scores"], np.float32))
        np.testing.assert_array_equal(logits, np.asarray(body["logits"], np.float32))
        assert clf.taxon.name == body["taxon"]["name"]
        assert clf.score == pytest.approx(body["score"], rel=1e-6)
        made = datetime.fromisoformat(body["created_at"]).replace(tzinfo=NEW_YORK)
        assert clf.created_at == made  # Antenna's time (its server's wall clock), not the import's
        assert (clf.terminal, clf.applied_to_id, clf.algorithm_id) == (True, None, algorithm.pk)
        assert clf.details == {"antenna": {"classification": n, "detection": detection}}

    # identifications: 9, one withdrawn, with who and when; determinations follow the latest
    withdrawn = Identification.objects.get(withdrawn=True)
    assert (withdrawn.occurrence.key, withdrawn.taxon.name) == ("2", "Halysidota")
    latest = Identification.objects.filter(occurrence__key="2", withdrawn=False).get()
    assert latest.taxon.name == "Halysidota tessellaris" and latest.comment == "changed my mind: species level"
    assert latest.who == "Ida Identifier (Antenna user 3)"
    assert latest.created_at == datetime(2026, 12, 1, 7, 59, 57, 597518, tzinfo=UTC)
    occurrence = Occurrence.objects.select_related("determination").get(key="2")
    assert occurrence.determination.name == "Halysidota tessellaris"
    assert occurrence.determined_by_identification_id == latest.pk
    assert Occurrence.objects.filter(determined_by_identification__isnull=False).count() == 8

    # taxa: every taxon with its rank and parent, GBIF keys from the taxon details
    assert Taxon.objects.count() == 54
    for n in range(1, 55):
        body = recorded(recordings, f"{207 + n:03d}_taxon_{n}.json")
        taxon = Taxon.objects.select_related("parent").get(name=body["name"])
        assert taxon.rank == body["rank"].lower()
        assert (taxon.parent.name if taxon.parent else None) == (body["parent"] or {}).get("name")
        gbif = body["gbif_taxon_key"]
        assert taxon.external_ids == ([str(gbif)] if gbif else [])
    assert summary.requests == len(server.requests) and not summary.skipped


def test_a_second_run_adds_nothing_and_reads_no_classification_detail(server):
    run(server)
    before = counts()
    server.requests.clear()
    summary = run(server)
    assert counts() == before
    assert summary.created.created.get("classifications", 0) == 0
    assert summary.unchanged["classifications"] == 60 and summary.unchanged["identifications"] == 9
    assert not [path for path in server.paths() if path.startswith("/api/v2/classifications/")]


def test_the_smaller_capture_set_skips_detections_on_images_outside_it(server):
    summary = run(server, 3)
    capture_set = CaptureSet.objects.get(name="Rec capture set (5 images)")
    assert capture_set.images.count() == 5
    assert Classification.objects.count() == 18 == Detection.objects.count()
    assert summary.skipped == {OUTSIDE: 3}  # 3 detections of its 7 occurrences lie on images of other sets
    assert Occurrence.objects.count() == 7
    # then the large set: the shared images, occurrences and detections are not duplicated
    run(server, 2)
    assert (Detection.objects.count(), Occurrence.objects.count(), SourceImage.objects.count()) == (60, 25, 30)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("/classifications/7/", status=500),
        Fault("/occurrences/", status=503, times=2, params={"offset": "10"}),
        Fault("/captures/", kind="truncate", params={"offset": "10"}),
        Fault("/taxa/", kind="drop", params={"offset": "20"}),
        Fault("/occurrences/4/", kind="timeout", delay=2.0),
        Fault("/occurrences/4/", kind="trickle", delay=0.25),
    ],
    ids=["500-then-success", "503-twice", "truncated-json", "connection-dropped", "timeout", "trickle"],
)
def test_a_transient_fault_is_retried_and_the_import_completes(server, fault):
    server.faults.append(fault)
    # a timeout well below the fault's delay, well above what a busy machine needs for the others
    summary = run(server, timeout=0.5 if fault.kind in ("timeout", "trickle") else 5.0)
    assert fault.hits == fault.times and summary.retried >= fault.times
    assert (Detection.objects.count(), Classification.objects.count(), Identification.objects.count()) == (60, 60, 9)


@pytest.mark.parametrize("kind", ["trickle", "trickle_headers"])
def test_the_timeout_bounds_the_whole_request_not_each_read(server, kind):
    """A server that sends a byte every 0.25 s never keeps one read waiting 0.5 s; the request
    (its headers or its body would take over 10 s) still ends as a timeout, on each attempt."""
    server.faults.append(Fault("/projects/1/", kind=kind, delay=0.25, times=2))
    timeout = 0.5
    with AntennaClient(server.url, token=TOKEN, timeout=timeout, retries=1, backoff=0.01) as client:
        started = time.monotonic()
        with pytest.raises(ConnectorError) as raised:
            client.get("projects/1/")
        elapsed = time.monotonic() - started
    assert elapsed < 10 * timeout  # two attempts, each cut off near its 0.5 s
    assert str(raised.value) == f"GET {server.url}/projects/1/: timed out; gave up after 2 attempts"
    assert server.faults[0].hits == 2 and client.retried == 1


def test_retry_after_is_honoured(server):
    server.faults.append(Fault("/ml/labels/1/", status=429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    summary = run(server, backoff=0.0)
    assert time.monotonic() - started >= 1.0 and summary.retried == 1
    assert Classification.objects.count() == 60


def test_a_fault_that_lasts_ends_with_a_message_and_nothing_written(server):
    server.faults.append(Fault("/classifications/33/", status=502, times=100))
    with pytest.raises(ConnectorError, match=r"classifications/33/.*HTTP 502; gave up after 4 attempts"):
        run(server, retries=3)
    assert counts() == (0,) * len(TABLES)


@pytest.mark.parametrize(
    "edit",
    [
        lambda body: {**body, "logits": [None, *body["logits"][1:]]},  # a null, read as nan
        lambda body: {**body, "logits": body["logits"][:-1]},  # 39 logits for 40 labels
    ],
)
def test_bad_logits_next_to_good_scores_are_left_out_and_counted(server, edit):
    server.faults.append(Fault("/classifications/33/", kind="edit", edit=edit))
    summary = run(server)
    assert summary.skipped == {BAD_LOGITS: 1}
    stored = [c for c in Classification.objects.all() if c.details["antenna"]["classification"] == 33]
    assert len(stored) == 1 and stored[0].logits is None and len(np.frombuffer(stored[0].scores, "<f4")) == 40
    assert Classification.objects.filter(logits__isnull=False).count() == 59


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda body: {**body, "scores": None, "logits": [None, *body["logits"][1:]]}, r"logits\[0\]=nan: .*finite"),
        (lambda body: {**body, "scores": None, "logits": body["logits"][:-1]}, r"logits='39 values': .*40 labels"),
    ],
)
def test_bad_logits_without_scores_are_refused_naming_the_classification(server, edit, message):
    server.faults.append(Fault("/classifications/33/", kind="edit", edit=edit))
    with pytest.raises(InputError, match=r"/api/v2/classifications/33/: " + message):
        run(server)
    assert counts() == (0,) * len(TABLES)


def test_a_body_that_cannot_be_decoded_is_retried_then_named(server):
    """A 200 whose body does not fit its Content-Encoding: httpx's DecodingError is not a transport
    error, and must not escape as a traceback."""
    garbled = {"Content-Encoding": "gzip"}
    server.faults.append(Fault("/ml/labels/1/", status=200, headers=garbled))
    summary = run(server)
    assert summary.retried == 1 and Classification.objects.count() == 60
    Classification.objects.all().delete()
    server.faults.append(Fault("/classifications/33/", status=200, headers=garbled, times=100))
    with pytest.raises(ConnectorError) as raised:
        run(server, retries=2)
    message = str(raised.value)
    assert "GET http://127.0.0.1:" in message and "/api/v2/classifications/33/" in message
    assert "could not be decoded; gave up after 3 attempts" in message and TOKEN not in message


def test_closing_the_client_ends_its_retry_waits_at_once(server):
    """Ctrl-C closes the client: a request waiting out a long Retry-After (here in a pool worker, as
    the classification details are) must end then, not minutes later."""
    server.faults.append(Fault("/classifications/1/", status=503, headers={"Retry-After": "100"}, times=100))
    client = AntennaClient(server.url, token=TOKEN)
    batch = client.submit_many([("classifications/1/", {"project_id": 1})])
    while not server.faults[0].hits:
        time.sleep(0.01)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 5.0
    with pytest.raises(ConnectorError, match=r"classifications/1/\?project_id=1: stopped: the client was closed"):
        batch.results()


def test_an_interrupted_wait_stops_the_retries_of_the_requests_in_flight(server, monkeypatch):
    server.faults.append(Fault("/classifications/1/", status=503, headers={"Retry-After": "100"}, times=100))
    with AntennaClient(server.url, token=TOKEN) as client:
        batch = client.submit_many([("classifications/1/", {"project_id": 1})])
        while not server.faults[0].hits:
            time.sleep(0.01)
        first = batch._futures[0]
        monkeypatch.setattr(first, "result", lambda: (_ for _ in ()).throw(KeyboardInterrupt))
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            batch.results()
        assert time.monotonic() - started < 5.0 and first.done()


def test_a_page_that_disappears_mid_import_writes_nothing_and_the_next_run_completes(server):
    server.faults.append(Fault("/occurrences/", status=404, params={"offset": "20"}))
    with pytest.raises(ConnectorError, match=r"occurrences/\?.*offset=20.*HTTP 404 not found \(Injected fault.\)"):
        run(server)
    assert counts() == (0,) * len(TABLES)
    run(server)
    assert (Detection.objects.count(), Classification.objects.count(), Identification.objects.count()) == (60, 60, 9)


def test_an_interrupted_import_writes_nothing(server):
    """Ctrl-C arrives as KeyboardInterrupt in the importer's thread: the transaction rolls back."""

    calls = []

    def interrupt(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with AntennaClient(server.url, token=TOKEN, page_size=10) as client, pytest.raises(KeyboardInterrupt):
        import_antenna(AntennaSource(client, 1, 2, zone=NEW_YORK), progress=interrupt)
    assert counts() == (0,) * len(TABLES)


def test_a_bad_token_is_refused_without_showing_it(server, caplog):
    caplog.set_level(logging.DEBUG)
    bad = "0123456789abcdef" * 2 + "01234567"
    with pytest.raises(ConnectorError) as raised:
        run(server, token=bad)
    assert "refused by Antenna (Invalid token.)" in str(raised.value)
    assert bad not in str(raised.value) and bad not in caplog.text
    assert counts() == (0,) * len(TABLES)


def test_an_unknown_capture_set_is_named(server):
    with pytest.raises(ConnectorError, match=r"--capture-set=999999: no capture set with this id in project 1"):
        run(server, 999999)
    server.unmatched.clear()  # the 404 is the point
    assert counts() == (0,) * len(TABLES)


def test_the_token_appears_in_no_log_message_or_row(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.faults.append(Fault("/classifications/3/", status=500))
    run(server)
    assert all(headers.get("authorization") == f"Token {TOKEN}" for _, _, headers in server.requests)
    assert TOKEN not in caplog.text
    for model in TABLES:
        for row in model.objects.values_list():
            assert TOKEN not in repr(row), model.__name__


def test_only_https_leaves_this_machine():
    assert check_base_url("https://antenna.example.org/api/v2/") == "https://antenna.example.org/api/v2"
    assert check_base_url("http://127.0.0.1:8000/api/v2") == "http://127.0.0.1:8000/api/v2"
    assert check_base_url("http://localhost/api/v2").startswith("http://localhost")
    with pytest.raises(InputError, match="plain http would send the token in clear text"):
        check_base_url("http://antenna.example.org/api/v2")
    assert check_base_url("http://antenna.example.org/api/v2", allow_http=True).startswith("http://")
    with pytest.raises(InputError, match="no query, fragment or credentials"):
        check_base_url("https://user:secret@antenna.example.org/api/v2")


def test_links_are_rebased_so_the_token_goes_only_to_the_named_host():
    with AntennaClient("https://antenna.example.org/api/v2", token=TOKEN) as client:
        assert client.url("http://10.0.0.5:8000/api/v2/captures/?offset=10") == (
            "https://antenna.example.org/api/v2/captures/?offset=10"
        )
        with pytest.raises(ConnectorError, match="outside the API root"):
            client.url("https://evil.example.org/elsewhere/")


def test_the_token_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TAXOPOST_ANTENNA_TOKEN", raising=False)
    assert read_token(None) is None
    monkeypatch.setenv("TAXOPOST_ANTENNA_TOKEN", " abc \n")
    assert read_token(None) == "abc"
    (tmp_path / "token").write_text("def\n")
    assert read_token(tmp_path / "token") == "def"
    (tmp_path / "bad").write_text("two words\n")
    with pytest.raises(InputError, match="value not shown") as raised:
        read_token(tmp_path / "bad")
    assert "two words" not in str(raised.value)


def test_the_command_imports_and_prints_a_summary(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TAXOPOST_ANTENNA_TOKEN", raising=False)
    (tmp_path / "token").write_text(TOKEN + "\n")
    args = ["import", "antenna", "--url", server.url, "--project", "1", "--capture-set", "2"]
    assert main([*args, "--token-file", str(tmp_path / "token"), "--page-size", "10"]) == 0
    printed = capsys.readouterr().err
    assert "capture set 'Rec capture set (all 30)'" in printed and "60 classifications" in printed
    assert TOKEN not in printed
    assert main([*args, "--token", TOKEN]) == 2  # there is no such option: never on the command line
    assert main([*args, "--capture-set", "999999", "--token-file", str(tmp_path / "token")]) == 2
    assert "--capture-set=999999: no capture set" in capsys.readouterr().err
    server.unmatched.clear()


def test_the_command_refuses_a_bad_time_zone_and_plain_http(capsys):
    args = ["import", "antenna", "--project", "1", "--capture-set", "2"]
    assert main([*args, "--url", "https://a.example.org/api/v2", "--timezone", "Mars/Olympus"]) == 2
    assert main([*args, "--url", "http://a.example.org/api/v2"]) == 2
    err = capsys.readouterr().err
    assert "--timezone='Mars/Olympus'" in err and "plain http" in err


def test_the_admin_loop_evaluates_calibrates_and_prints_antennas_form(server, tmp_path, capsys):
    """Import, evaluate against the identifications, calibrate, and paste the thresholds back."""
    run(server)
    name = "Rec capture set (all 30)"
    assert main(["evaluate-capture-set", "--capture-set", name, "--output-dir", str(tmp_path / "ev"),
                 "--csv", str(tmp_path / "pipelines.csv")]) == 0  # fmt: skip
    lines = (tmp_path / "pipelines.csv").read_text().splitlines()
    assert lines[0].startswith("pipeline,n,accuracy,baseline_accuracy,")
    assert [line.split(",")[0] for line in lines[1:]] == ["model output", "roll-up (lineage)", "roll-up (distribution)"]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {p["n"] for p in metrics["pipelines"]} == {26}  # the detections of the 8 identified occurrences
    capsys.readouterr()

    # 8 identified occurrences, one row of each calibrating (4 of them): a modest target is what they support.
    args = ["calibrate-capture-set", "--capture-set", name, "--output", str(tmp_path / "config.json"),
            "--target-precision", "0.6", "--delta", "0.3", "--mode", "distribution",
            "--csv", str(tmp_path / "ranks.csv"), "--antenna-config", str(tmp_path / "antenna.json")]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    form = json.loads((tmp_path / "antenna.json").read_text())
    assert json.loads(printed[printed.index("{") :]) == form
    config = json.loads((tmp_path / "config.json").read_text())
    assert form == {
        "source_image_collection_id": 2,
        "thresholds": {rank.upper(): value for rank, value in config["thresholds"].items()},
        "rollup_order": [rank.upper() for rank in config["order"]],
    }
    assert form["rollup_order"] and all(rank.isupper() for rank in form["thresholds"])
    ranks = (tmp_path / "ranks.csv").read_text().splitlines()
    assert ranks[0].startswith("rank,target,threshold,reached,") and len(ranks) == 4  # species, genus, family


def test_calibrating_in_lineage_mode_warns_that_antenna_rolls_up_by_distribution(server, tmp_path, capsys):
    run(server)
    args = ["calibrate-capture-set", "--capture-set", "Rec capture set (all 30)", "--output",
            str(tmp_path / "config.json"), "--target-precision", "0.6", "--delta", "0.3"]  # fmt: skip
    assert main(args) == 0
    assert "Antenna's roll-up picks the best taxon at each rank (--mode distribution)" in capsys.readouterr().err


def test_detections_in_no_listed_occurrence_are_found_through_their_captures(server):
    """Capture and detection details fill what the occurrences missed (here the occurrence list
    leaves out its last page's rows, its count agreeing). The recorded captures' detections_count
    is stale (it counts 48 of the 60 detections), so only reading every capture finds all of them."""

    def first_20(page: dict) -> dict:
        return {**page, "count": 20, "results": [row for row in page["results"] if row["id"] <= 20]}

    server.faults.append(Fault("/occurrences/", kind="edit", edit=first_20, params={"collection_id": "2"}, times=100))
    run(server, every_capture=True)
    assert (Detection.objects.count(), Classification.objects.count(), Occurrence.objects.count()) == (60, 60, 25)
    assert any(path.startswith("/api/v2/detections/") for path in server.paths())
    clf = Classification.objects.get(detection__key="60")
    assert np.frombuffer(clf.logits, "<f4").shape == (40,) and clf.detection.occurrence is not None


def test_results_go_back_as_a_processing_service_response_that_reads_again(server, recordings, tmp_path, capsys):
    """Import, roll up, export: every detection with its chain, the roll-up terminal, the model's
    output kept as non-terminal, on its capture by Antenna's id (Antenna looks captures up by it);
    the file reads back through the processing-service reader."""
    from taxopost.io.predictions.antenna import read_antenna
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job, submit_job

    other = Project.objects.create(name="another survey")  # taxopost's image ids are not Antenna's
    SourceImage.objects.bulk_create([SourceImage(project=other, path=f"elsewhere-{n}.jpg") for n in range(7)])
    summary = run(server)
    capture_set = CaptureSet.objects.get(name=summary.capture_set)
    job = submit_job(create_job("rank_rollup", Job.CAPTURE_SET, capture_set.pk, {}), EmbeddedExecutor())
    assert job.status == Job.SUCCEEDED and job.metrics["changed"] > 0
    output = tmp_path / "results.json"
    assert main(["export", "antenna", "--capture-set", capture_set.name, "--output", str(output)]) == 0
    assert "60 detections" in capsys.readouterr().err
    document = json.loads(output.read_text())
    assert len(document["source_images"]) == 30 and len(document["detections"]) == 60
    for image in document["source_images"]:
        assert recorded(recordings, f"{271 + int(image['id']):03d}_capture_{image['id']}.json")["path"] == image["url"]
    boxes: dict[str, list] = {}  # Antenna's capture id -> the boxes of its detections
    for n in range(1, 61):
        body = recorded(recordings, f"{122 + n:03d}_detection_{n}.json")
        boxes.setdefault(body["source_image"].rstrip("/").rsplit("/", 1)[1], []).append(body["bbox"])
    for detection in document["detections"]:
        box = detection["bbox"]
        assert [box["x1"], box["y1"], box["x2"], box["y2"]] in boxes[detection["source_image_id"]]
    model = document["algorithms"]["rec-ne-america-species-40"]
    assert len(model["category_map"]["data"]) == 40 and model["category_map"]["data"][0]["taxon_rank"] == "SPECIES"
    rolled = 0
    for detection in document["detections"]:
        chain = detection["classifications"]
        assert [c["terminal"] for c in chain] == [False] * (len(chain) - 1) + [True]
        assert len(chain[0]["scores"]) == len(chain[0]["logits"]) == 40
        if len(chain) == 2:
            rolled += 1
            assert chain[1]["algorithm"]["key"].startswith("rank_rollup-")
            assert chain[1]["labels"] == [chain[1]["classification"]] and len(chain[1]["scores"]) == 1
    assert rolled == job.metrics["changed"]
    read_back = read_antenna(output)  # each roll-up read as the model output beneath it
    assert len(read_back.detections) == 60 and read_back.extra["algorithm"] == "rec-ne-america-species-40"
    assert read_back.scores.shape == (60, 40)


# -- classifications Antenna's post-processing derived -------------------------------------------


def _taxon(recordings: Path, pk: int) -> dict:
    return recorded(recordings, f"{207 + pk:03d}_taxon_{pk}.json")


def _add_chains(server: ReplayServer, recordings: Path) -> dict:
    """Antenna's chains, added to the recording in its shapes:

    - detection 51 (occurrence 16, a singleton nobody identified): class masking (1001) of the
      model's output 51, then a rank roll-up (1002) of the masked output; both listed before
      their sources, the roll-up first;
    - detection 1 (occurrence 1, identified): a rank roll-up (1003) of the model's output.

    Returns what each was built from, for the checks.
    """
    labels = recorded(recordings, "104_category_map_detail.json")["labels"]
    taxa = {_taxon(recordings, n)["name"]: _taxon(recordings, n) for n in range(1, 55)}
    source = recorded(recordings, "080_classification_51.json")
    logits = np.asarray(source["logits"], dtype=np.float64)
    keep = np.ones(len(labels), dtype=bool)
    keep[int(np.argmax(source["scores"]))] = False  # the list leaves out the model's answer
    masked = np.where(keep, np.exp(logits - logits[keep].max()), 0.0)
    masked /= masked.sum()
    winner = taxa[labels[int(np.argmax(masked))]]
    masking = derived_detail(
        source, 1001, masking_algorithm(source["algorithm"]), winner, float(masked.max()),
        scores=masked.tolist(), logits=source["logits"],
    )  # fmt: skip
    genus = taxa[winner["parent"]["name"]]
    in_genus = [i for i, label in enumerate(labels) if taxa[label]["parent"]["id"] == genus["id"]]
    rollup = derived_detail(masking, 1002, RANK_ROLLUP, genus, float(masked[in_genus].sum()))
    server.add_classification(masking, detection=51, terminal=False, first=True)
    server.add_classification(rollup, detection=51, first=True)
    identified = recorded(recordings, "030_classification_1.json")
    parent = taxa[identified["taxon"]["parent"]["name"]]
    server.add_classification(derived_detail(identified, 1003, RANK_ROLLUP, parent, 0.9), detection=1)
    return {"masked": masked, "masked_taxon": winner["name"], "genus": genus["name"], "rollup": rollup,
            "identified_genus": parent["name"]}  # fmt: skip


def _imported(antenna_id: int) -> Classification:
    return next(
        c for c in Classification.objects.all() if c.details.get("antenna", {}).get("classification") == antenna_id
    )


def test_derived_classifications_are_imported_as_chains_field_by_field(server, recordings):
    built = _add_chains(server, recordings)
    summary = run(server)
    assert not summary.skipped and Classification.objects.count() == 63
    assert summary.created.created["derived classifications"] == 3

    model = Algorithm.objects.get(key="rec-ne-america-species-40")
    output, masked, rolled = _imported(51), _imported(1001), _imported(1002)
    # the chain: model output -> masking -> roll-up, the roll-up its current answer
    assert (output.applied_to_id, masked.applied_to_id, rolled.applied_to_id) == (None, output.pk, masked.pk)
    assert (output.terminal, masked.terminal, rolled.terminal) == (False, False, True)
    assert masked.detection_id == rolled.detection_id == output.detection_id == Detection.objects.get(key="51").pk
    # the masking: Antenna's masked scores and raw logits over the model's category map
    np.testing.assert_allclose(stack([masked.scores], 40)[0], built["masked"], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(np.frombuffer(masked.logits, "<f4"), np.frombuffer(output.logits, "<f4"))
    assert masked.category_map_id == model.category_map_id and masked.taxon.name == built["masked_taxon"]
    assert masked.score == pytest.approx(built["masked"].max(), rel=1e-6)
    assert masked.algorithm.task_type == "class_masking" and masked.algorithm.source_algorithm_id == model.pk
    assert masked.algorithm.key == "rec-ne-america-species-40_filtered_by_taxa_list_1@rec-ne-america-species-40"
    assert masked.algorithm.category_map_id == model.category_map_id
    # the roll-up: a taxon and a score, no vector (Antenna's roll-up writes none)
    assert (rolled.taxon.name, rolled.taxon.rank) == (built["genus"], "genus")
    assert rolled.score == pytest.approx(built["rollup"]["score"])
    assert (rolled.scores, rolled.logits, rolled.category_map_id) == (None, None, None)
    assert rolled.algorithm.task_type == "rank_rollup" and rolled.algorithm.source_algorithm_id == masked.algorithm_id
    assert rolled.algorithm.name == "Rank rollup" and rolled.algorithm.config["antenna"]["key"] == "rank-rollup-1"
    assert rolled.details == {"antenna": {"classification": 1002, "detection": 51, "algorithm": "rank-rollup-1"}}
    # determinations follow the terminal rows: the roll-up where nobody identified, the person where one did
    assert Occurrence.objects.get(key="16").determination.name == built["genus"]
    # each keeps Antenna's time, as a model output does: the determination's time is the roll-up's
    made = datetime.fromisoformat(CREATED).replace(tzinfo=NEW_YORK)
    assert masked.created_at == rolled.created_at == made
    assert _imported(1003).terminal and not _imported(1).terminal
    assert Occurrence.objects.get(key="1").determined_by_identification_id is not None
    assert Classification.objects.filter(terminal=True).count() == 60  # one current answer per detection


def test_a_second_run_adds_no_derived_classification_and_fetches_none(server, recordings):
    _add_chains(server, recordings)
    run(server)
    before = counts()
    server.requests.clear()
    summary = run(server)
    assert counts() == before and summary.unchanged["classifications"] == 63
    assert not [path for path in server.paths() if path.startswith("/api/v2/classifications/")]


def test_evaluation_and_calibration_read_the_models_outputs_not_antennas_derived_answers(server, recordings, tmp_path):
    from taxopost.observations.evaluation import capture_set_rows

    _add_chains(server, recordings)
    summary = run(server)
    rows = capture_set_rows(CaptureSet.objects.get(name=summary.capture_set))
    assert rows.algorithm.key == "rec-ne-america-species-40" and rows.scores.shape == (26, 40)
    roots = Classification.objects.filter(applied_to=None, detection__occurrence__key__in=[str(n) for n in range(1, 9)])
    np.testing.assert_array_equal(rows.scores, stack([c.scores for c in roots.order_by("id")], 40))
    assert main(["evaluate-capture-set", "--capture-set", summary.capture_set,
                 "--output-dir", str(tmp_path / "ev")]) == 0  # fmt: skip
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {p["n"] for p in metrics["pipelines"]} == {26}
    args = ["calibrate-capture-set", "--capture-set", summary.capture_set, "--output", str(tmp_path / "c.json"),
            "--target-precision", "0.6", "--delta", "0.3", "--mode", "distribution"]  # fmt: skip
    assert main(args) == 0


def test_a_taxopost_roll_up_replaces_antennas_and_its_revert_brings_it_back(server, recordings):
    """Antenna's roll-up is an earlier output of the same task: a taxopost roll-up starts from
    its source (the masked output) and replaces it, as a roll-up with another config would."""
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job, submit_job
    from taxopost.postprocessing.running.revert import revert_job

    _add_chains(server, recordings)
    summary = run(server)
    capture_set = CaptureSet.objects.get(name=summary.capture_set)
    config = {"thresholds": {"species": 0.99, "genus": 0.99, "family": 0.2}}
    job = submit_job(create_job("rank_rollup", Job.CAPTURE_SET, capture_set.pk, config), EmbeddedExecutor())
    assert job.status == Job.SUCCEEDED
    antennas = _imported(1002)
    assert antennas.replaced_by_id == job.pk and not antennas.terminal
    masked = _imported(1001)
    ours = Classification.objects.filter(applied_to=masked, replaced_by=None).get()  # from Antenna's source
    assert ours.job_id == job.pk and ours.terminal and ours.taxon.rank == "family"
    live = Classification.objects.filter(replaced_by=None)
    assert live.filter(terminal=True).count() == 60
    assert Occurrence.objects.get(key="16").determination_id == ours.taxon_id

    revert_job(job)
    antennas.refresh_from_db()
    assert antennas.terminal and antennas.replaced_by_id is None
    assert Occurrence.objects.get(key="16").determination_id == antennas.taxon_id


def test_derived_classifications_without_their_source_or_in_a_loop_are_skipped_and_counted(server, recordings):
    """A source outside the capture set's data, a loop, and a step taxopost has no task for:
    each skipped with its reason; a source whose successors are all left out stays terminal."""
    source = recorded(recordings, "081_classification_52.json")
    genus = _taxon(recordings, source["taxon"]["parent"]["id"])
    orphan = derived_detail(source, 2001, RANK_ROLLUP, genus, 0.7)
    orphan["applied_to"]["id"] = 9999
    server.add_classification(orphan, detection=52, source_terminal=None)
    loop_a = derived_detail(source, 2002, RANK_ROLLUP, genus, 0.7)
    loop_b = derived_detail(source, 2003, RANK_ROLLUP, genus, 0.7)
    loop_a["applied_to"]["id"], loop_b["applied_to"]["id"] = 2003, 2002
    server.add_classification(loop_a, detection=53, source_terminal=None)
    server.add_classification(loop_b, detection=53, source_terminal=None)
    tracking = {**RANK_ROLLUP, "id": 5, "name": "Tracking", "key": "tracking-1",
                "description": "Post-processing task: tracking"}  # fmt: skip
    server.add_classification(derived_detail(source, 2004, tracking, genus, 0.7), detection=52)
    summary = run(server)
    assert summary.skipped == {
        MISSING_SOURCE: 1,
        CYCLE: 2,
        "classifications derived by 'tracking-1', which is no taxopost task (tracking)": 1,
    }
    assert Classification.objects.count() == 60
    assert _imported(52).terminal  # Antenna demoted it for the tracking step left out
    assert not [p for p in server.paths() if p.rsplit("/", 2)[-2] in {"2001", "2002", "2003", "2004"}]


def test_a_derived_detail_that_names_another_source_than_its_detection_is_skipped_and_counted(server, recordings):
    """Antenna's detail and the detection's list disagree on what a roll-up was applied to:
    which chain it belongs to is unclear, so it is left out (and its source stays terminal)."""
    source = recorded(recordings, "081_classification_52.json")
    genus = _taxon(recordings, source["taxon"]["parent"]["id"])
    rollup = derived_detail(source, 2005, RANK_ROLLUP, genus, 0.7)
    server.add_classification(rollup, detection=52, source_terminal=None)
    server.serve_detail({**rollup, "applied_to": {**rollup["applied_to"], "id": 51}})  # the detail says 51
    summary = run(server)
    assert summary.skipped == {SOURCE_DIFFERS: 1}
    assert Classification.objects.count() == 60 and _imported(52).terminal and _imported(51).terminal


def test_an_interrupted_fetch_of_a_derived_detail_writes_nothing_and_the_next_run_completes(server, recordings):
    _add_chains(server, recordings)
    server.faults.append(Fault("/classifications/1002/", status=502, times=100))
    with pytest.raises(ConnectorError, match=r"classifications/1002/.*HTTP 502"):
        run(server, retries=1)
    assert counts() == (0,) * len(TABLES)
    server.faults.clear()
    run(server)
    assert Classification.objects.count() == 63 and _imported(1002).terminal


def test_a_derived_row_whose_source_taxopost_has_built_on_since_is_left_out(server, recordings):
    """Antenna rolls up after taxopost's own roll-up of the same output: the chain stays taxopost's."""
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job, submit_job

    other = Project.objects.create(name="another survey")  # taxopost's image ids are not Antenna's
    SourceImage.objects.bulk_create([SourceImage(project=other, path=f"elsewhere-{n}.jpg") for n in range(7)])
    summary = run(server)
    capture_set = CaptureSet.objects.get(name=summary.capture_set)
    job = submit_job(create_job("rank_rollup", Job.CAPTURE_SET, capture_set.pk, {}), EmbeddedExecutor())
    taken = Classification.objects.filter(job=job).values_list("applied_to__details", flat=True)
    antenna_id = next(iter(taken))["antenna"]["classification"]
    source = recorded(recordings, f"{29 + antenna_id:03d}_classification_{antenna_id}.json")
    genus = _taxon(recordings, source["taxon"]["parent"]["id"])
    server.add_classification(derived_detail(source, 3001, RANK_ROLLUP, genus, 0.7), detection=antenna_id)
    before = counts()
    for _ in range(2):  # decided from what is stored: its detail is never fetched
        server.requests.clear()
        assert run(server).skipped == {TAKEN_OVER: 1}
        assert counts() == before and "/classifications/3001/" not in "".join(server.paths())


def _masking_of_51(recordings: Path, scores: list, logits: list | None) -> dict:
    """A class masking of the model's output 51 with the given vectors, in Antenna's shape."""
    source = recorded(recordings, "080_classification_51.json")
    winner = _taxon(recordings, source["taxon"]["id"])
    return derived_detail(
        source, 1001, masking_algorithm(source["algorithm"]), winner, 0.5, scores=scores, logits=logits
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: [v * 1.5 for v in s],
            r"classifications/1001/: scores='sum=1\.5': probabilities must sum to at most 1 \(\+0\.001\)$",
        ),
        (lambda s: [-0.2, *s[1:]], r"classifications/1001/.*scores\[0\]=-0\.2.*must be >= 0"),
        (lambda s: s[:-1], r"classifications/1001/: scores='39 values': the category map has 40 labels"),
    ],
)
def test_derived_scores_that_are_no_distribution_are_refused_naming_the_classification(
    server, recordings, change, message
):
    source = recorded(recordings, "080_classification_51.json")
    server.add_classification(_masking_of_51(recordings, change(source["scores"]), None), detection=51)
    with pytest.raises(InputError, match=message):
        run(server)
    assert counts() == (0,) * len(TABLES)  # nothing half-written


def test_derived_logits_that_do_not_fit_are_dropped_when_the_scores_stand(server, recordings):
    source = recorded(recordings, "080_classification_51.json")
    server.add_classification(_masking_of_51(recordings, source["scores"], source["logits"][:-1]), detection=51)
    summary = run(server)
    assert summary.skipped == {BAD_LOGITS: 1}
    masked = _imported(1001)
    assert masked.logits is None and masked.scores is not None and masked.applied_to_id == _imported(51).pk


# -- identifications: keyed on Antenna's id, withdrawn when Antenna no longer lists them -----------


def _each_object(body: object, visit: Callable[[dict], None]) -> None:
    """Call ``visit`` on every JSON object nested in ``body``, outermost first."""
    if isinstance(body, dict):
        visit(body)
        for value in body.values():
            _each_object(value, visit)
    elif isinstance(body, list):
        for value in body:
            _each_object(value, visit)


def _rename_identifier(body: object) -> None:
    """Antenna user 3 changes her display name: every nested user object shows the new one."""

    def rename(found: dict) -> None:
        if found.get("name") == "Ida Identifier" and found.get("id") == 3:
            found["name"] = "Ida I. Identifier"

    _each_object(body, rename)


def _drop_identification(pk: int) -> Callable[[object], None]:
    """The identification ``pk`` deleted in Antenna: no occurrence lists it any more."""

    def drop(found: dict) -> None:
        if isinstance(found.get("identifications"), list):
            found["identifications"] = [i for i in found["identifications"] if i.get("id") != pk]

    return lambda body: _each_object(body, drop)


def test_a_renamed_identifier_keeps_one_row_per_identification_keyed_on_antennas_id(server):
    run(server)
    stored = dict(Identification.objects.values_list("antenna_id", "pk"))
    assert sorted(stored) == list(range(1, 10))
    assert server.edit_recordings(_rename_identifier)
    summary = run(server)
    assert Identification.objects.count() == 9 and not summary.created.created.get("identifications")
    assert summary.unchanged["identifications"] == 9
    assert dict(Identification.objects.values_list("antenna_id", "pk")) == stored  # the same rows, relabelled
    assert set(Identification.objects.values_list("who", flat=True)) == {"Ida I. Identifier (Antenna user 3)"}
    occurrence = Occurrence.objects.get(key="2")
    assert occurrence.determined_by_identification_id == stored[9]


@pytest.mark.parametrize("renamed", [False, True], ids=["same-name", "renamed-since"])
def test_identifications_stored_without_antennas_id_are_matched_not_duplicated(server, renamed):
    """Rows of an import made before Antenna's id was stored (``antenna_id`` null) are found by
    occurrence, taxon, time and person (the Antenna user id in the label) and given the id."""
    run(server)
    before = dict(Identification.objects.values_list("pk", "taxon_id"))
    Identification.objects.update(antenna_id=None)
    if renamed:
        server.edit_recordings(_rename_identifier)
    summary = run(server)
    assert dict(Identification.objects.values_list("pk", "taxon_id")) == before
    assert not summary.created.created.get("identifications") and summary.unchanged["identifications"] == 9
    assert sorted(Identification.objects.values_list("antenna_id", flat=True)) == list(range(1, 10))
    run(server)
    assert Identification.objects.count() == 9


def test_an_identification_deleted_in_antenna_is_withdrawn_and_the_determination_follows(server):
    run(server)
    occurrence = Occurrence.objects.get(key="3")
    assert occurrence.determined_by_identification.antenna_id == 3
    project = occurrence.project
    taxon = Taxon.objects.get(name="Zale intenta")
    own = Identification.objects.create(  # a person's, not from Antenna: never touched
        occurrence=Occurrence.objects.get(key="4"),
        taxon=taxon,
        who="a local expert",
        created_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    server.edit_recordings(_drop_identification(3))
    server.edit_recordings(_drop_identification(4))  # occurrence 4 keeps the local one
    summary = run(server)
    assert summary.withdrawn == 2
    assert "withdrawn: 2 identifications Antenna no longer lists" in summary.lines()
    assert list(Identification.objects.filter(antenna_id__in=[3, 4]).values_list("withdrawn", flat=True)) == [True] * 2
    own.refresh_from_db()
    assert not own.withdrawn
    occurrence.refresh_from_db()
    assert occurrence.determined_by_identification_id is None and occurrence.determined_by_id is not None
    assert Occurrence.objects.get(project=project, key="4").determined_by_identification_id == own.pk
    assert Identification.objects.filter(withdrawn=False).count() == 7  # 8 active, 2 withdrawn, 1 added
    assert run(server).withdrawn == 0  # counted once


# -- lists that change while they are read ---------------------------------------------------------


def _occurrence_rows(server: ReplayServer) -> list[dict]:
    """The recorded occurrence list of capture set 2, all three pages' rows in order."""
    pages = [
        server.recorded("/occurrences/", project_id="1", collection_id="2", apply_defaults="false", limit="10",
                        **({"offset": str(offset)} if offset else {}))
        for offset in (0, 10, 20)
    ]  # fmt: skip
    return [row for page in pages for row in page["results"]]


def test_rows_that_shift_between_pages_are_read_again_not_lost(server):
    """Occurrence 5 is deleted in Antenna once the first page is read: every later row moves up one,
    and occurrence 11 (identified) moves from the second page to the first, already read."""
    rows = _occurrence_rows(server)
    rows[10]["identifications"] = [{**rows[0]["identifications"][0], "id": 99, "comment": "on 11"}]
    after = [row for row in rows if row["id"] != 5]
    served = []

    def edit(page: dict) -> dict:
        offset = next(i for i, row in enumerate(rows) if row["id"] == page["results"][0]["id"])
        served.append(offset)
        if len(served) == 1:
            return page
        return {
            **page,
            "count": 24,
            "results": after[offset : offset + 10],
            "next": page["next"] if offset < 20 else None,
        }

    server.faults.append(Fault("/occurrences/", kind="edit", edit=edit, params={"collection_id": "2"}, times=100))
    summary = run(server)
    reads = [offset for offset, _ in itertools.groupby(served)]  # a retried page is the same read
    assert reads == [0, 10, 20, 0, 10, 20] and len(served) == 6 + summary.retried  # read again once the count moved
    assert summary.fetched["occurrences"] == 25 and Occurrence.objects.count() == 25
    assert Identification.objects.get(antenna_id=99).occurrence.key == "11"
    assert Detection.objects.filter(occurrence__key="11").exists()


def test_a_list_that_never_holds_its_count_stops_the_import_naming_the_request(server):
    def lose_one(page: dict) -> dict:
        return {**page, "results": page["results"][:-1]}  # 24 distinct rows for a count of 25

    server.faults.append(Fault("/occurrences/", kind="edit", edit=lose_one, params={"offset": "20"}, times=100))
    with pytest.raises(ConnectorError, match=r"GET http://127\.0\.0\.1:\d+/api/v2/occurrences/\?.*collection_id=2.*"
                                             r"24 distinct rows for a count of 25"):  # fmt: skip
        run(server)
    assert counts() == (0,) * len(TABLES)


def test_another_antenna_capture_set_of_the_same_name_is_refused_naming_both_ids(server):
    run(server, 3)
    before = counts()

    def same_name(body: dict) -> dict:
        return {**body, "name": "Rec capture set (5 images)"}  # Antenna set 2, named as set 3

    server.faults.append(Fault("/captures/collections/2/", kind="edit", edit=same_name, times=2))
    message = r"capture_set='Rec capture set \(5 images\)': .*Antenna capture set 3, not 2.*--capture-set-name"
    with pytest.raises(InputError, match=message):
        run(server, 2)
    assert counts() == before and CaptureSet.objects.get().images.count() == 5
    with AntennaClient(server.url, token=TOKEN, page_size=10) as client:  # another name: imported beside it
        import_antenna(AntennaSource(client, 1, 2, zone=NEW_YORK), capture_set_name="Rec set 2")
    assert set(CaptureSet.objects.values_list("name", flat=True)) == {"Rec capture set (5 images)", "Rec set 2"}
    assert CaptureSet.objects.get(name="Rec capture set (5 images)").images.count() == 5
    assert CaptureSet.objects.get(name="Rec set 2").images.count() == 30


# -- two outputs of one model on one detection -------------------------------------------------------


def _mark_terminal(pk: int, terminal: bool) -> Callable[[object], None]:
    """Classification ``pk``'s ``terminal`` wherever a detection nests it."""

    def mark(found: dict) -> None:
        if found.get("id") == pk and "terminal" in found and "algorithm" in found:
            found["terminal"] = terminal

    return lambda body: _each_object(body, mark)


@pytest.mark.parametrize(
    ("terminal", "kept"),
    [((False, True), 61), ((True, False), 1), ((True, True), 61)],
    ids=["the-rerun-terminal", "the-first-terminal", "both-terminal-latest"],
)
def test_a_second_output_of_the_same_model_on_a_detection_is_skipped_and_counted(server, terminal, kept):
    """Antenna re-ran the pipeline: detection 1 holds two outputs of one algorithm (the detection's
    natural key allows one). The one Antenna marks terminal is kept, else the latest; the other
    is counted, and its detail never fetched."""
    detection = server.recorded("/detections/1/", project_id="1")
    first = server.recorded(f"/classifications/{detection['classifications'][0]['id']}/", project_id="1")
    assert first["id"] == 1
    again = {**first, "id": 61, "details": first["details"].replace("/1/", "/61/"), "created_at": CREATED_LATER}
    again["scores"], again["logits"] = first["scores"][::-1], first["logits"][::-1]
    server.add_classification(again, detection=1, terminal=terminal[1], source_terminal=None)
    server.edit_recordings(_mark_terminal(1, terminal[0]))
    summary = run(server)
    assert summary.skipped[DUPLICATE_OUTPUT] == 1
    assert Classification.objects.count() == 60
    stored = Classification.objects.get(detection__key="1")
    assert stored.details["antenna"]["classification"] == kept and stored.terminal
    left_out = 1 if kept == 61 else 61
    assert f"/api/v2/classifications/{left_out}/" not in server.paths()
    assert run(server).skipped[DUPLICATE_OUTPUT] == 1  # counted on every run, never silently dropped


# -- what a message about a response names ----------------------------------------------------------


def _set(path: tuple, value: object) -> Callable[[dict], dict]:
    """An edit setting ``body[path[0]][path[1]]...`` to ``value``."""

    def edit(body: dict) -> dict:
        node = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return body

    return edit


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault("/captures/", kind="edit", edit=_set(("results", 3, "timestamp"), "30/06/2024 22:00"),
                  params={"offset": "10"}),
            r"/api/v2/captures/\?[^ ]*offset=10[^ ]*: timestamp='30/06/2024 22:00': not an ISO 8601",
        ),
        (
            Fault("/occurrences/3/", kind="edit", edit=_set(("detections", 0, "bbox"), [1, 2, "x", 4])),
            r"/api/v2/occurrences/3/\?project_id=1&apply_defaults=false: bbox=\[1, 2, 'x', 4\]: expected",
        ),
        (
            Fault("/occurrences/", kind="edit", edit=_set(("results",), None), params={"offset": "10"}),
            r"/api/v2/occurrences/\?[^ ]*offset=10[^ ]*: results='None': expected a page of occurrences",
        ),
        (
            Fault("/occurrences/", kind="edit", edit=_set(("results", 0, "identifications", 0, "taxon"), "Macaria"),
                  params={"collection_id": "2"}),
            r"/api/v2/occurrences/\?project_id=1&collection_id=2&apply_defaults=false&limit=10: taxon='Macaria'",
        ),
        (
            Fault("/classifications/7/", kind="edit", edit=_set(("created_at",), "yesterday")),
            r"/api/v2/classifications/7/\?project_id=1: timestamp='yesterday': not an ISO 8601",
        ),
        (
            Fault("/ml/labels/1/", kind="edit", edit=_set(("labels",), None)),
            r"/api/v2/ml/labels/1/: labels='None': expected the labels in index order",
        ),
    ],
    ids=["capture-page", "occurrence-detail", "occurrence-page", "nested-identification", "classification",
         "category-map"],
)  # fmt: skip
def test_a_bad_value_in_a_response_is_named_with_its_request(server, fault, message):
    server.faults.append(fault)
    with pytest.raises(ConnectorError, match=r"^http://127\.0\.0\.1:\d+" + message):
        run(server)
    assert counts() == (0,) * len(TABLES)


def test_a_models_scores_that_are_no_distribution_name_no_option_the_import_lacks(server):
    def more(body: dict) -> dict:
        return {**body, "scores": [v * 1.1 for v in body["scores"]]}

    server.faults.append(Fault("/classifications/7/", kind="edit", edit=more))
    with pytest.raises(InputError, match=r"classifications/7/: scores='sum=1\.1\d*': .*at most 1 \(\+0\.001\)$"):
        run(server)
    assert counts() == (0,) * len(TABLES)


def _strings(body: dict) -> dict:
    return {**body, "scores": [str(v) for v in body["scores"]]}


def _one_string_logit(body: dict) -> dict:
    return {**body, "logits": [*body["logits"][:5], "1.5", *body["logits"][6:]]}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_strings, r"scores\[0\]='[0-9.e-]+': expected a number, not a string"),
        (_one_string_logit, r"logits\[5\]='1\.5': expected a number, not a string"),
        (lambda body: {**body, "scores": [True, *body["scores"][1:]]}, r"scores\[0\]=True: .*not true or false"),
        (lambda body: {**body, "score": str(body["score"])}, r"score='[0-9.e-]+': expected a number, not a string"),
    ],
    ids=["scores-as-strings", "one-logit-as-a-string", "a-boolean", "the-score-as-a-string"],
)
def test_vectors_of_anything_but_json_numbers_are_refused_naming_the_value(server, edit, message):
    server.faults.append(Fault("/classifications/7/", kind="edit", edit=edit))
    with pytest.raises(ConnectorError, match=r"/api/v2/classifications/7/\?project_id=1: " + message):
        run(server)
    assert counts() == (0,) * len(TABLES)
