"""The review and evaluation pages: cached per state of their data, invalidated by jobs, computed once."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from taxopost.observations.identifications import save_identifications
from taxopost.observations.models import DataEdits, Identification, Occurrence
from taxopost.postprocessing.running.revert import revert_job
from taxopost.review.page_cache import cached, data_version
from taxopost.taxa.models import TaxaList, Taxon
from tests.admin.review_html import changed_count, selected_job
from tests.platform.helpers import run


def _identify(key: str, name: str) -> None:
    occurrence = Occurrence.objects.get(key=key)
    Identification.objects.create(occurrence=occurrence, taxon=Taxon.objects.get(name=name), who="e",
                                  created_at=timezone.now())  # fmt: skip


def _get(client, url: str, **params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200, response.content[:300]
    return response, len(queries)


def test_the_evaluation_page_is_computed_once_per_state_of_its_data(admin_client, platform):
    url = reverse("evaluation:capture-set", args=[platform.pk])
    _identify("occ-vanessa", "Vanessa cardui")
    first, computing = _get(admin_client, url)
    again, reading = _get(admin_client, url)
    assert _report(again) == _report(first)  # the header around it holds a fresh CSRF token
    assert reading < computing / 2  # the session, the capture set and the data version only

    run("rank_rollup", platform)  # a job finished: the page is computed again
    assert _get(admin_client, url)[1] >= computing
    _identify("occ-noctua", "Noctua pronuba")  # a new identification: computed again, and it shows
    changed, queries = _get(admin_client, url)
    assert queries >= computing and _report(changed) != _report(first)


def _report(response) -> str:
    """The embedded report of an evaluation page (the admin's header and breadcrumbs around it)."""
    html = response.content.decode()
    start = html.index('<div class="evaluation-report" id="evaluation-report">')
    assert "Home" in html[:start] and 'id="site-name"' in html[:start]
    return html[start : html.index("<!-- END Content -->", start)]


def test_the_review_summary_follows_a_revert(admin_client, platform):
    job = run("rank_rollup", platform)
    url = reverse("review:capture-set", args=[platform.pk])
    assert changed_count(_get(admin_client, url, job=job.pk)[0]) == 5
    assert changed_count(_get(admin_client, url, job=job.pk)[0]) == 5  # from the cache
    revert_job(job)
    assert changed_count(_get(admin_client, url, job=job.pk)[0]) == 0


def test_concurrent_requests_compute_a_page_once(db):
    calls = []

    def compute() -> str:
        calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for every thread to arrive while it runs
        return "page"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cached("k", compute))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["page"] * 10 and len(calls) == 1


def test_a_request_waits_for_the_process_computing_the_page_and_reads_its_result(db):
    assert cache.add("k:computing", "another process", 60)  # another process holds the page's lock
    results, calls = [], []
    waiting = threading.Thread(target=lambda: results.append(cached("k", lambda: calls.append(1) or "mine")))
    waiting.start()
    time.sleep(0.3)
    assert waiting.is_alive() and not results
    cache.set("k", "theirs")
    waiting.join(timeout=5)
    assert results == ["theirs"] and not calls


def test_a_failed_computation_stores_nothing_and_frees_the_lock(db):
    def failing() -> str:
        raise ValueError("nothing to evaluate")

    for _ in range(2):  # the second call computes again: no stale lock, no cached failure
        with pytest.raises(ValueError, match="nothing to evaluate"):
            cached("k", failing)
    assert cache.get("k") is None and cache.get("k:computing") is None
    assert cached("k", lambda: "page") == "page"


def test_the_review_body_is_shared_between_users_and_the_sidebar_is_each_users_own(
    admin_client, platform, django_user_model, client
):
    from taxopost.access.models import Membership

    url = reverse("review:capture-set", args=[platform.pk])
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    Membership.objects.create(user=viewer, project=platform.project, role="viewer")
    client.force_login(viewer)
    _get(client, url)  # the viewer's sidebar is now rendered
    job = run("rank_rollup", platform)
    first, computing = _get(admin_client, url)
    reading = _get(admin_client, url)[1]
    theirs, viewing = _get(client, url)
    assert computing > reading + 5  # the body: the jobs, the summary, a page of rows and their chains
    assert viewing <= reading + 2  # the body came from the superuser's request (+2: public project? role?)
    assert selected_job(theirs) == job.pk and changed_count(theirs) == 5
    mine, other = first.content.decode(), theirs.content.decode()
    assert _body(mine) == _body(other)
    # Each sees the sidebar their own permissions give: the superuser's lists the users, the viewer's not.
    assert 'id="nav-sidebar"' in mine and 'id="nav-sidebar"' in other
    assert "/admin/auth/user/" in _sidebar(mine) and "/admin/auth/user/" not in _sidebar(other)
    assert "viewer" in other[: other.index('id="nav-sidebar"')]  # the header names who is logged in


def test_a_job_that_starts_running_shows_in_the_review_picker_at_once(admin_client, platform):
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.operations import create_job

    url = reverse("review:capture-set", args=[platform.pk])
    done = run("rank_rollup", platform)
    later = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {"thresholds": {"species": 0.9}})
    page = _get(admin_client, url)[0].content.decode()
    assert f'value="{done.pk}"' in page and f'value="{later.pk}"' not in page  # not yet running
    Job.objects.filter(pk=later.pk).update(status=Job.RUNNING, started_at=timezone.now())  # a worker took it
    assert f'value="{later.pk}"' in _get(admin_client, url)[0].content.decode()


def test_a_reopened_job_leaves_the_review_picker_until_it_runs(admin_client, platform):
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.lifecycle import reopen_job

    url = reverse("review:capture-set", args=[platform.pk])
    job = run("rank_rollup", platform, config={"thresholds": {"species": 0.99}})
    Job.objects.filter(pk=job.pk).update(status=Job.FAILED)  # as a failed job
    run("rank_rollup", platform)  # a later job finished after it
    assert (
        f'value="{job.pk}">job {job.pk} &middot; rank_rollup &middot; failed'
        in _get(admin_client, url)[0].content.decode()
    )
    reopen_job(Job.objects.get(pk=job.pk))  # queued again: no time column moves, its status does
    assert f'value="{job.pk}"' not in _get(admin_client, url)[0].content.decode()


def test_one_review_page_under_several_spellings_is_computed_once(admin_client, platform):
    job = run("rank_rollup", platform)
    url = reverse("review:capture-set", args=[platform.pk])
    computing = _get(admin_client, url, job=job.pk, page=1)[1]
    for job_value, page in ((f"0{job.pk}", "01"), (f" {job.pk}", "1 ")):
        response, reading = _get(admin_client, url, job=job_value, page=page)
        assert reading < computing / 2 and selected_job(response) == job.pk
    assert selected_job(_get(admin_client, url, job="²", page="x")[0]) == job.pk  # not numbers: the defaults


def _body(html: str) -> str:
    start = html.index('<form method="get" class="job-picker">')
    return html[start : html.index("<!-- END Content -->", start)]


def _sidebar(html: str) -> str:
    start = html.index('id="nav-sidebar"')
    return html[start : html.index("</nav>", start)]


def test_the_frame_is_kept_per_user_with_each_requests_own_csrf_token(platform, django_user_model):
    from django.test import Client

    django_user_model.objects.create_superuser("root", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.get(username="root"))
    url = reverse("review:capture-set", args=[platform.pk])
    first, second = client.get(url), client.get(url)
    assert first.templates and not second.templates  # the second is the kept frame around the cached body
    tokens = [
        re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.content.decode()).group(1) for r in (first, second)
    ]
    assert tokens[0] != tokens[1]  # masked afresh for each request, as the template does
    logout = client.post(reverse("admin:logout"), {"csrfmiddlewaretoken": tokens[1]})
    assert logout.status_code == 200 and "Logged out" in logout.content.decode()


def test_a_message_waiting_is_shown_once_around_a_kept_frame(admin_client, platform):
    from django.contrib.messages import constants
    from django.contrib.messages.storage.base import Message
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.http import HttpRequest, HttpResponse

    url = reverse("review:capture-set", args=[platform.pk])
    admin_client.get(url)  # the frame is kept
    carrier = HttpResponse()
    CookieStorage(HttpRequest())._store([Message(constants.SUCCESS, "Job 7 queued")], carrier)
    admin_client.cookies["messages"] = carrier.cookies["messages"].value  # what an admin action leaves
    shown = admin_client.get(url).content.decode()
    assert 'class="messagelist"' in shown and "Job 7 queued" in shown
    assert "Job 7 queued" not in admin_client.get(url).content.decode()  # read once


def test_page_numbers_past_the_last_page_show_it_computed_once(admin_client, platform, monkeypatch):
    from taxopost.review import views

    monkeypatch.setattr(views, "ROWS_PER_PAGE", 2)
    job = run("rank_rollup", platform)  # 5 changes: pages 1 to 3
    url = reverse("review:capture-set", args=[platform.pk])
    last, computing = _get(admin_client, url, job=job.pk, page=3)
    for page in (4, 99, 10**17, 0):  # each shows the last page, from the cache
        response, reading = _get(admin_client, url, job=job.pk, page=page)
        assert reading < computing / 2, page
        assert _rows_of(response) == _rows_of(last) and _rows_of(last).count('class="occurrence-link"') == 1
    first = _get(admin_client, url, job=job.pk)[0]
    assert _rows_of(_get(admin_client, url, job=job.pk, page=1)[0]) == _rows_of(first) != _rows_of(last)


def _rows_of(response) -> str:
    html = response.content.decode()
    return html[html.index('<table class="changes" id="changes">') : html.index("</table>", html.index('id="changes"'))]


def test_an_anonymous_visitor_of_a_public_project_gets_the_kept_frame_without_a_csrf_cookie(client, platform):
    platform.project.public = True
    platform.project.save(update_fields=["public"])
    url = reverse("review:capture-set", args=[platform.pk])
    first, second = client.get(url), client.get(url)
    assert first.status_code == second.status_code == 200 and not second.templates
    assert "csrftoken" not in second.cookies and "csrfmiddlewaretoken" not in second.content.decode()
    assert _body(first.content.decode()) == _body(second.content.decode())


def test_jobs_that_are_not_the_capture_sets_share_one_page(admin_client, platform, monkeypatch):
    from taxopost.review import views

    job = run("rank_rollup", platform)
    url = reverse("review:capture-set", args=[platform.pk])
    computed = []
    body = views._body
    monkeypatch.setattr(views, "_body", lambda *args: computed.append(args[1:]) or body(*args))
    first = _get(admin_client, url, job=999_999)[0]
    assert "not among its jobs" in first.content.decode()
    for other in (888_888, 777_777, 10**17):  # from the cache: not one computation per number asked
        response = _get(admin_client, url, job=other, page=3)[0]
        assert _body(response.content.decode()) == _body(first.content.decode())
    assert len(computed) == 1
    assert selected_job(_get(admin_client, url, job=job.pk)[0]) == job.pk and len(computed) == 2


def test_an_identification_withdrawn_by_importing_it_again_shows_at_once(admin_client, platform):
    """The documented way to withdraw (the same identification again, withdrawn) adds no row: the
    page used to be served as it was until its entry aged out, an hour later."""
    url = reverse("evaluation:capture-set", args=[platform.pk])
    _identify("occ-vanessa", "Vanessa cardui")  # stays: a page with no identification left says so
    given = dict(occurrence=Occurrence.objects.get(key="occ-noctua"), taxon=Taxon.objects.get(name="Noctua pronuba"),
                 who="e", created_at=timezone.now())  # fmt: skip
    save_identifications([Identification(**given)])
    identified = _report(_get(admin_client, url)[0])
    save_identifications([Identification(**given, withdrawn=True)])
    assert Identification.objects.get(occurrence__key="occ-noctua").withdrawn
    served = _report(_get(admin_client, url)[0])
    cache.clear()
    assert served == _report(_get(admin_client, url)[0]) != identified  # what a fresh computation shows


def _rename_taxon(platform) -> None:
    taxon = Taxon.objects.get(name="Vanessa cardui")
    taxon.name = "Vanessa cardui (L.)"
    taxon.save()


def _edit_identification(platform) -> None:
    identification = Identification.objects.get()
    identification.taxon = Taxon.objects.get(name="Vanessa atalanta")
    identification.save()


def _delete_identification(platform) -> None:
    Identification.objects.get().delete()


def _remove_an_image(platform) -> None:
    platform.images.remove(platform.images.order_by("pk").first())


def _change_a_taxa_list(platform) -> None:
    TaxaList.objects.get(name="regional").taxa.remove(Taxon.objects.get(name="Vanessa cardui"))


@pytest.mark.parametrize(
    "edit", [_rename_taxon, _edit_identification, _delete_identification, _remove_an_image, _change_a_taxa_list]
)
def test_an_edit_of_existing_rows_changes_the_data_version(platform, edit):
    _identify("occ-vanessa", "Vanessa cardui")
    before = data_version(platform)
    assert data_version(platform) == before
    edit(platform)
    assert data_version(platform) != before


def test_a_detection_moved_or_deleted_in_the_admin_changes_the_data_version(admin_client, platform):
    from taxopost.observations.models import Detection

    detection = Detection.objects.get(occurrence__key="occ-vanessa")
    before = data_version(platform)
    response = admin_client.post(reverse("admin:observations_detection_change", args=[detection.pk]), {
        "source_image": detection.source_image_id, "occurrence": Occurrence.objects.get(key="occ-noctua").pk,
        "bbox": json.dumps(detection.bbox), "relative_area": "", "key": detection.key, "confidence": "",
    })  # fmt: skip
    assert response.status_code == 302
    moved = data_version(platform)
    assert moved != before
    response = admin_client.post(reverse("admin:observations_detection_delete", args=[detection.pk]), {"post": "yes"})
    assert response.status_code == 302 and data_version(platform) != moved


def test_a_job_counts_no_edit(platform):
    """A job is in the data version already: its chunks never wait on the edit counter's row."""
    _identify("occ-vanessa", "Vanessa cardui")
    edits = list(DataEdits.objects.values_list("count", flat=True))
    revert_job(run("rank_rollup", platform))
    assert list(DataEdits.objects.values_list("count", flat=True)) == edits


def test_made_up_classifier_keys_of_the_evaluation_page_are_refused_without_filling_the_cache(admin_client, platform):
    url = reverse("evaluation:capture-set", args=[platform.pk])
    _identify("occ-vanessa", "Vanessa cardui")
    _get(admin_client, url)
    kept = cache.get(_cached_key(platform.pk))
    for i in range(120):  # more than the page cache holds (100 entries)
        response = admin_client.get(url, {"algorithm": f"made-up-{i}"})
        assert response.status_code == 400 and f"made-up-{i}" in response.content.decode()
    assert cache.get(_cached_key(platform.pk)) == kept is not None  # the real page is still cached


def _cached_key(capture_set_id: int) -> str:
    from taxopost.observations.models import CaptureSet
    from taxopost.review.page_cache import page_key

    return page_key("evaluation-body", CaptureSet.objects.get(pk=capture_set_id), None)
