"""What a person sees on the terminal: Ctrl-C on a running job, a busy port, output through a pipe.

Each runs ``taxopost`` as its own process on an embedded database in a temporary directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import default_ctrl_c
from tests.platform.conftest import LABELS, vector

COMMAND = [sys.executable, "-c", "import sys; from taxopost.cli import run; sys.argv[0] = 'taxopost'; run()"]
LINEAGES = """order,family,genus,species
Lepidoptera,Nymphalidae,Vanessa,Vanessa atalanta
Lepidoptera,Nymphalidae,Vanessa,Vanessa cardui
Lepidoptera,Nymphalidae,Vanessa,Vanessa itea
Lepidoptera,Nymphalidae,Danaus,Danaus plexippus
Lepidoptera,Erebidae,Catocala,Catocala ilia
Lepidoptera,Erebidae,Catocala,Catocala relicta
Lepidoptera,Noctuidae,Noctua,Noctua pronuba
"""


def _env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "TAXOPOST_DATA_DIR": str(data_dir)}
    for name in ("DATABASE_URL", "TAXOPOST_BROKER_URL", "COLUMNS"):
        env.pop(name, None)  # the embedded database and executor
    return env


def _taxopost(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *args], env=_env(data_dir), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def survey(tmp_path) -> Path:
    """An embedded database with one capture set of 400 tiny detections (every one is filtered)."""
    (tmp_path / "taxonomy.csv").write_text(LINEAGES)
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    with open(tmp_path / "predictions.jsonl", "w") as handle:
        for i in range(400):
            record = {
                "capture_set": "Station 1 · July 2024",
                "image": {"path": f"img-{i}.jpg", "width": 1000, "height": 1000},
                "occurrence": f"occ-{i}",
                "algorithm": "moths-v1",
                "bbox": [0, 0, 10, 10],
                "scores": vector(Vanessa_cardui=0.6),
            }
            handle.write(json.dumps(record) + "\n")
    for args in (
        ("import", "taxonomy", str(tmp_path / "taxonomy.csv")),
        ("import", "category-map", str(tmp_path / "labels.json"), "--algorithm", "moths-v1"),
        ("import", "predictions", str(tmp_path / "predictions.jsonl")),
    ):
        done = _taxopost(tmp_path, *args)
        assert done.returncode == 0, done.stderr
    return tmp_path


def _job_progress(data_dir: Path) -> float:
    with sqlite3.connect(data_dir / "taxopost.sqlite3", timeout=10) as db:
        return db.execute("select progress from jobs_job order by id desc limit 1").fetchone()[0]


def _job_status(data_dir: Path) -> tuple[str, int] | None:
    with sqlite3.connect(data_dir / "taxopost.sqlite3", timeout=10) as db:
        row = db.execute("select status, id from jobs_job order by id desc limit 1").fetchone()
    return row


def test_ctrl_c_on_a_running_job_prints_how_to_resume_it(survey):
    run = subprocess.Popen(
        [*COMMAND, "run", "small_size_filter", "--capture-set", "station 1 july 2024", "--chunk-size", "1"],
        env=_env(survey),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_ctrl_c,
    )
    try:
        deadline = time.monotonic() + 120
        # Interrupted at its first chunk done, with most left, rather than after a fixed pause.
        while (found := _job_status(survey)) is None or found[0] != "running" or _job_progress(survey) == 0:
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.02)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    job_id = found[1]
    assert run.returncode == 130, err
    assert f"`taxopost jobs resume {job_id}` runs what is left" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _job_status(survey) == ("failed", job_id)
    resumed = _taxopost(survey, "jobs", "resume", str(job_id))
    assert resumed.returncode == 0, resumed.stderr
    assert _job_status(survey) == ("succeeded", job_id)
    shown = _taxopost(survey, "jobs", "show", str(job_id))
    assert "│ changed " in shown.stdout and "│ 400 " in shown.stdout.split("│ changed ")[1]


def test_reap_with_resume_puts_a_stale_job_back_in_the_queue_and_runs_it_here(survey):
    """A person's ``jobs reap --resume``: the job goes from running to queued in one step (never
    failed), whatever the workers' automatic resumes did before, and runs what is left here."""
    shell = (
        "from datetime import timedelta; from django.utils import timezone; from taxopost.jobs.models import Job; "
        "from taxopost.observations.models import CaptureSet; "
        "from taxopost.postprocessing.running.lifecycle import MAX_AUTOMATIC_RESUMES, claim; "
        "from taxopost.postprocessing.running.operations import create_job; "
        "j = create_job('small_size_filter', 'capture_set', CaptureSet.objects.get().pk, {}, chunk_size=100); "
        "claim(j.pk, 'dead-host:1'); "
        "[j.log(f'resumed automatically ({n + 1} of {MAX_AUTOMATIC_RESUMES}): its worker stopped') "
        " for n in range(MAX_AUTOMATIC_RESUMES)]; "
        "Job.objects.filter(pk=j.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1)); print(j.pk)"
    )
    made, reaped = _reap_resume(survey, shell)
    job_id = int(made.stdout.split()[-1])
    assert reaped.returncode == 0, reaped.stderr
    assert f"job {job_id}: stale, back in the queue" in reaped.stderr
    assert _job_status(survey) == ("succeeded", job_id)
    with sqlite3.connect(survey / "taxopost.sqlite3") as db:
        messages = [m for (m,) in db.execute("select message from jobs_joblog where job_id = ? order by id", [job_id])]
    assert "resumed (taxopost jobs reap --resume)" in messages
    assert not any("failed" in message for message in messages), messages


def test_reap_with_resume_that_fails_marks_the_jobs_it_did_not_reach_failed_and_resumable(survey):
    """Two stale jobs, of two projects, that fail whoever runs them (a config no longer valid):
    both go back to the queue at once (their projects free), the first run here fails (exit 2)
    and the command stops; the other is marked failed and resumable, not left queued for no one."""
    shell = (
        "from datetime import timedelta; from django.utils import timezone; from taxopost.jobs.models import Job; "
        "from taxopost.observations.models import CaptureSet, Project; "
        "from taxopost.postprocessing.running.operations import create_job; "
        "CaptureSet.objects.create(project=Project.objects.create(name='other'), name='other set'); "
        "[create_job('small_size_filter', 'capture_set', c.pk, {}) for c in CaptureSet.objects.all()]; "
        "Job.objects.update(status='running', config={'size_threshold': 5}, "
        "heartbeat_at=timezone.now() - timedelta(hours=1))"
    )
    _, reaped = _reap_resume(survey, shell)
    assert reaped.returncode == 2, reaped.stderr
    assert reaped.stderr.count("stale, back in the queue") == 1
    with sqlite3.connect(survey / "taxopost.sqlite3") as db:
        jobs = db.execute("select id, status, error from jobs_job order by started_at is null, id").fetchall()
    assert [status for _, status, _ in jobs] == ["failed", "failed"]
    left = [(pk, error) for pk, _, error in jobs if "stopped before running it" in error]
    assert len(left) == 1 and f"jobs resume {left[0][0]}` runs what is left" in left[0][1]


def _reap_resume(survey: Path, shell: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Set up stale jobs with ``shell`` (Python run by ``taxopost manage shell``), then ``jobs reap --resume``."""
    made = _taxopost(survey, "manage", "shell", "-c", shell)
    assert made.returncode == 0, made.stderr
    return made, _taxopost(survey, "jobs", "reap", "--resume")


def test_piped_tables_are_not_folded_at_80_columns(survey):
    assert _taxopost(survey, "run", "small_size_filter", "--capture-set", "Station 1 · July 2024").returncode == 0
    listed = _taxopost(survey, "jobs", "list")
    rows = [line for line in listed.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 1, listed.stdout  # one job, one line, however wide
    assert "Station 1 · July 2024" in rows[0] and len(rows[0]) > 80


def test_a_busy_port_is_reported_before_the_banner(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _taxopost(tmp_path, "serve", "--port", str(port), timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"taxopost: error: --port={port}: is in use: another server listens there; stop it or give another --port"
    )
    assert "web app on" not in done.stdout + done.stderr
