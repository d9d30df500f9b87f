"""An admin's whole round trip in a real browser (Debian's Chromium driven by Playwright).

Log in, select a capture set, run rank roll-up with custom thresholds through the admin action,
preview it, run it, watch the job reach "succeeded" (the job runs on the embedded executor's
background thread of the live server, as with ``taxopost serve``), review what changed, open a
rolled-up occurrence and its provenance chain, then revert the job. Each step leaves a
screenshot in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import REPO, in_ci
from tests.platform.conftest import load_platform

CHROMIUM = os.environ.get("TAXOPOST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
PASSWORD = "a-browser-password-1"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A Chromium page; closed before the live server stops, so no request thread keeps a connection."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if in_ci():
            pytest.fail(f"{message}; CI=true: required")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are
    # still plain synchronous ones (the pages are served by the live server's thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            # While Playwright's loop runs, the test's ORM calls get a connection of their own
            # (Django keeps connections per async context); close it, or it outlives the test.
            connections.close_all()
            browser.close()


def shot(page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_run_preview_watch_review_and_revert_a_rollup(browser_page, live_server, tmp_path, django_user_model):
    from taxopost.jobs.models import Job
    from taxopost.observations.models import Classification, Occurrence

    page = browser_page
    capture_set = load_platform(tmp_path)
    django_user_model.objects.create_superuser("curator", "curator@example.org", PASSWORD)
    base = live_server.url

    # Log in.
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", PASSWORD)
    shot(page, "01-login")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    # Select the capture set and choose "Run rank roll-up".
    page.goto(f"{base}/admin/observations/captureset/")
    page.check(f"input[name=_selected_action][value='{capture_set.pk}']")
    page.select_option("select[name=action]", "run_rank_rollup")
    shot(page, "02-select-capture-set")
    page.click("button[name=index]")
    page.wait_for_selector("#run-task-form")

    # Custom thresholds: species 0.9, genus 0.7, family off.
    ranks = [text.strip() for text in page.locator(".rank-thresholds th").all_text_contents()]
    page.fill(f"#id_thresholds_{ranks.index('species')}", "0.9")
    page.fill(f"#id_thresholds_{ranks.index('genus')}", "0.7")
    page.fill(f"#id_thresholds_{ranks.index('family')}", "")
    shot(page, "03-config-form")

    # Preview: the dry-run summary, nothing written.
    page.click("input[name=_preview]")
    page.wait_for_selector("#preview")
    summary = page.inner_text(".preview-summary")
    assert "of 6 classifications would change" in summary
    shot(page, "04-preview")
    assert not Classification.objects.filter(job__isnull=False).exists()

    # Run: one job, started on the background thread; its page follows it to "succeeded".
    page.click("input[name=_run]")
    page.wait_for_url("**/admin/jobs/job/*/change/")
    page.wait_for_function(
        "document.querySelector('.job-status') && document.querySelector('.job-status').textContent === 'succeeded'",
        timeout=60_000,
    )
    shot(page, "05-job-succeeded")
    job = Job.objects.get(dry_run=False)
    assert job.status == Job.SUCCEEDED and job.config["thresholds"] == {"species": 0.9, "genus": 0.7}
    assert job.executor == "embedded" and job.progress == 1.0
    assert "100%" in page.inner_text(".field-progress_display")

    # Review what it changed.
    page.click("a.review-link")
    page.wait_for_selector("svg.rank-chart")
    changed = page.locator("#changes a.occurrence-link")
    assert changed.count() == job.metrics["changed"]
    review = shot(page, "06-review")

    # A rolled-up occurrence and its provenance chain.
    key = changed.first.inner_text()
    changed.first.click()
    page.wait_for_selector(".provenance-chain")
    chain = page.inner_text(".provenance-chain")
    assert "rank roll-up" in chain and "model output" in chain and "moths-v1" in chain
    assert f"job {job.pk} (rank_rollup)" in page.inner_text(".determination-history")
    shot(page, "07-occurrence-provenance")
    occurrence = Occurrence.objects.get(key=key)
    assert occurrence.determined_by.job_id == job.pk

    # Revert it: confirmation, then the job page says so and the model's outputs are current again.
    page.goto(f"{base}/admin/jobs/job/{job.pk}/change/")
    page.click("button.job-revert")
    page.wait_for_selector("text=Yes, revert")
    shot(page, "08-revert-confirm")
    page.click("text=Yes, revert")
    page.wait_for_selector(".messagelist .success")
    assert "reverted" in page.inner_text(".messagelist")
    shot(page, "09-reverted")
    job.refresh_from_db()
    assert job.reverted_at is not None and not Classification.objects.filter(job=job).exists()
    occurrence.refresh_from_db()
    assert occurrence.determined_by.algorithm.key == "moths-v1"
    assert review.exists()


def test_job_page_follows_progress_live(browser_page, live_server, tmp_path, django_user_model):
    """The bar, percentage and status move without a reload while the job runs; the page reloads at the end."""
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.operations import create_job

    page = browser_page
    capture_set = load_platform(tmp_path)
    django_user_model.objects.create_superuser("watcher", "watcher@example.org", PASSWORD)
    job = create_job("rank_rollup", Job.CAPTURE_SET, capture_set.pk, {})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/jobs/job/{job.pk}/change/")
    page.fill("#id_username", "watcher")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("progress.job-progress")
    assert page.inner_text(".job-status") == "created"

    # What a running job's reporter writes: the page shows it within a poll or two.
    stages = [{"name": "preparing", "progress": 1.0}, {"name": "processing", "progress": 0.5}]
    Job.objects.filter(pk=job.pk).update(status=Job.RUNNING, progress=0.5, stage="processing", stages=stages)
    page.wait_for_function("document.querySelector('progress.job-progress').value === 0.5")
    assert page.inner_text(".job-status") == "running" and page.inner_text(".job-percent") == "50%"
    assert "processing – 50%" in page.inner_text(".job-stages")
    shot(page, "10-job-running")

    Job.objects.filter(pk=job.pk).update(status=Job.SUCCEEDED, progress=1.0, finished_at=job.created_at)
    page.wait_for_function("document.querySelector('.job-status').textContent === 'succeeded'")
    page.wait_for_selector("button.job-revert")  # the reload brings the operations of a finished job
