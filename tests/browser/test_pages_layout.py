"""The admin's pages as a user sees them at 1366×768, in a real browser (Debian's Chromium).

A superuser on a loaded platform (a masking job and a roll-up on top, so metrics exist, then
a re-run of the roll-up that changes nothing) visits the capture-set list, the roll-up's run
form, a dry-run preview, job pages, the job list, the review page, the evaluation page, the
list pages with rank filters and the Swagger UI page. Each page leaves a screenshot in
``artifacts/screenshots/`` and must fit the window's width, show no Python repr, and pass the
checks of its own: the taxonomy's own ranks, scores to three decimals, metrics as tables,
"Resume" only where it applies, messages naming "job 5", the evaluation inside the admin.
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from tests.browser.test_admin_flow import PASSWORD, browser_page, shot  # noqa: F401 (a fixture)
from tests.platform.conftest import load_platform
from tests.platform.helpers import run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 768
#: What a Python repr or a JSON dump looks like in a page's visible text.
REPRS = ("<Job", "Job=", "job=", "{'", "<Classification", "<Occurrence", "<CaptureSet")
THREE_DECIMALS = re.compile(r"^\d+\.\d{3}$")


def check_page(page, name: str, *, json_dumps: bool = True) -> str:
    """Screenshot, then the checks every page passes; returns its visible text."""
    shot(page, name)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name}: the page is {width[0]} px wide in a {width[1]} px window"
    # A changelist's table scrolls inside its box rather than widening the page: it must fit too.
    inner = page.evaluate("[...document.querySelectorAll('.results')].map(e => [e.scrollWidth, e.clientWidth])")
    assert all(scroll <= client for scroll, client in inner), f"{name}: the list scrolls sideways {inner}"
    text = page.inner_text("body")
    for marker in (*REPRS, '{"') if json_dumps else REPRS:
        assert marker not in text, f"{name}: {marker!r} in the visible text"
    return text


def scores(page, selector: str) -> list[str]:
    cells = [cell.strip() for cell in page.locator(selector).all_inner_texts()]
    assert cells, f"no cell matches {selector}"
    return cells


def assert_three_decimals(values: list[str]) -> None:
    assert all(THREE_DECIMALS.match(value) for value in values), values


def test_pages_fit_1366_and_read_as_tables_not_reprs(browser_page, live_server, tmp_path, django_user_model):  # noqa: F811
    from taxopost.jobs.models import Job
    from taxopost.observations.models import Identification, Occurrence
    from taxopost.postprocessing.running.operations import cancel_job, create_job
    from taxopost.taxa.models import Taxon

    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    capture_set = load_platform(tmp_path)
    occurrence = Occurrence.objects.get(key="occ-vanessa")
    vanessa = Taxon.objects.get(name="Vanessa cardui")
    Identification.objects.create(occurrence=occurrence, taxon=vanessa, who="expert", created_at=timezone.now())
    masking = run("class_masking", capture_set, {"taxa_list": "regional"})
    rollup = run("rank_rollup", capture_set)
    again = run("rank_rollup", capture_set)  # the same config once more: nothing to change
    assert rollup.metrics["changed"] > 0 and again.metrics["changed"] == 0
    canceled = create_job("small_size_filter", Job.CAPTURE_SET, capture_set.pk, {})
    cancel_job(canceled)
    waiting = create_job("small_size_filter", Job.CAPTURE_SET, capture_set.pk, {})
    django_user_model.objects.create_superuser("layout", "layout@example.org", PASSWORD)
    base = live_server.url

    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "layout")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    # The capture-set list.
    page.goto(f"{base}/admin/observations/captureset/")
    check_page(page, "20-capture-sets")

    # The roll-up's run form: one threshold per rank of this taxonomy, not every known rank.
    page.check(f"input[name=_selected_action][value='{capture_set.pk}']")
    page.select_option("select[name=action]", "run_rank_rollup")
    page.click("button[name=index]")
    page.wait_for_selector("#run-task-form")
    ranks = [text.strip() for text in page.locator(".rank-thresholds th").all_text_contents()]
    assert ranks == ["species", "genus", "subfamily", "family", "order"]
    assert set(ranks) == set(Taxon.objects.values_list("rank", flat=True))
    check_page(page, "21-rollup-form")

    # A dry-run preview: config as key/value, metrics as tables, sample scores to three decimals.
    page.fill(f"#id_thresholds_{ranks.index('species')}", "0.95")
    page.click("input[name=_preview]")
    page.wait_for_selector("#preview")
    check_page(page, "22-preview")
    assert page.locator(".preview-config .key-values").count() == 1
    assert "species 0.950" in page.inner_text(".preview-config")
    assert page.locator("#preview .metrics-transitions tbody tr").count() >= 1
    assert page.locator("#preview .metrics-top-taxa tbody tr").count() >= 1
    assert_three_decimals(scores(page, "#preview .change-sample td:last-child"))

    # The roll-up's job page: tables, a readable log, Revert but no Resume nor Cancel.
    page.goto(f"{base}/admin/jobs/job/{rollup.pk}/change/")
    text = check_page(page, "23-job")
    assert page.locator(".field-metrics_display .metrics-totals").count() == 1
    transitions = page.locator(".field-metrics_display .metrics-transitions tbody tr")
    assert transitions.count() == len(rollup.metrics["transitions"])
    assert page.locator(".field-metrics_display .metrics-top-taxa tbody tr").count() == len(rollup.metrics["to_taxa"])
    assert "species 0.800 · genus 0.600 · family 0.400" in page.inner_text(".field-config_display")
    assert "thresholds: species=0.8, genus=0.6, family=0.4" in text  # the log's first line, in words
    assert page.locator("button.job-revert").count() == 1
    assert page.locator("button.job-resume").count() == 0 and page.locator("button.job-cancel").count() == 0

    # Resume where it applies (a canceled job), Cancel but no Resume on a job still waiting.
    page.goto(f"{base}/admin/jobs/job/{canceled.pk}/change/")
    check_page(page, "24-job-canceled")
    assert page.locator("button.job-resume").count() == 1 and page.locator("button.job-cancel").count() == 0
    page.goto(f"{base}/admin/jobs/job/{waiting.pk}/change/")
    assert page.locator("button.job-cancel").count() == 1 and page.locator("button.job-resume").count() == 0

    # A refused revert says "Job 5: job 6 built on its output" (the admin capitalises messages), not "Job=5".
    page.goto(f"{base}/admin/jobs/job/{masking.pk}/change/")
    page.click("button.job-revert")
    page.click("text=Yes, revert")
    page.wait_for_selector(".messagelist .error")
    message = page.inner_text(".messagelist")
    assert f"Job {masking.pk}: job {rollup.pk} built on its output" in message, message
    check_page(page, "25-refused-revert")

    # The job list.
    page.goto(f"{base}/admin/jobs/job/")
    check_page(page, "26-jobs")

    # The review page: the latest job that changed something, not the no-op re-run after it.
    page.goto(f"{base}/review/capture-sets/{capture_set.pk}/")
    page.wait_for_selector("svg.rank-chart")
    assert page.eval_on_selector("#job-select", "select => select.value") == str(rollup.pk)
    check_page(page, "27-review")
    assert_three_decimals(scores(page, "#changes td:nth-child(5)"))

    # The evaluation page, inside the admin's header and breadcrumbs.
    page.click("text=Full evaluation of this capture set")
    page.wait_for_selector("#evaluation-report img")
    check_page(page, "28-evaluation")
    assert (
        page.locator("#site-name").count() == 1 and page.inner_text("#content h1") == f"Evaluation: {capture_set.name}"
    )
    breadcrumbs = page.inner_text(".breadcrumbs")
    assert "Capture sets" in breadcrumbs and capture_set.name in breadcrumbs and "Evaluation" in breadcrumbs

    # Lists with scores and rank filters: three decimals, only the ranks present.
    page.goto(f"{base}/admin/observations/classification/")
    check_page(page, "29-classifications")
    assert_three_decimals(scores(page, "#result_list td.field-score_display"))
    used = {c.strip() for c in page.locator("#result_list td.field-rank").all_inner_texts()}
    offered = _rank_choices(page)
    assert set(offered) <= set(ranks) and used <= set(offered)
    page.goto(f"{base}/admin/taxa/taxon/")
    check_page(page, "30-taxa")
    assert _rank_choices(page) == ["order", "family", "subfamily", "genus", "species"]
    page.goto(f"{base}/admin/observations/occurrence/")
    check_page(page, "31-occurrences")
    assert_three_decimals([s for s in scores(page, "#result_list td.field-score") if s != "–"])

    # The Swagger UI page of the OpenAPI schema (its own scripts and styles, no CDN).
    page.goto(f"{base}/api/v1/schema/swagger/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    check_page(page, "32-swagger", json_dumps=False)


def _rank_choices(page) -> list[str]:
    """The rank filter's choices, without "All"."""
    links = page.locator("#changelist-filter details[data-filter-title='rank'] li a").all_inner_texts()
    return [link.strip() for link in links if link.strip() != "All"]
