"""Admin forms: a role on one project neither names nor links another project's rows."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from taxopost.access.models import Membership
from taxopost.observations.models import CaptureSet, Detection, Identification, Occurrence, Project, SourceImage
from taxopost.taxa.models import Taxon

pytestmark = pytest.mark.django_db

PASSWORD = "an-admin-forms-password-1"


def _member(django_user_model, username: str, *roles: tuple[Project, str]) -> Client:
    user = django_user_model.objects.create_user(username, password=PASSWORD, is_staff=True)
    for project, role in roles:
        Membership.objects.create(user=user, project=project, role=role)
    client = Client()
    client.force_login(user)
    return client


def _labels(html: str) -> list[str]:
    """The names Django's raw-id boxes show beside their values (in the form: the header names the user)."""
    form = html[html.index('id="content"') :]
    return [text.strip() for text in re.findall(r"<strong>\s*(?:<a [^>]*>)?([^<]+)(?:</a>)?\s*</strong>", form)]


def test_a_raw_id_box_names_no_row_of_another_project_nor_another_user(platform, django_user_model):
    boss = django_user_model.objects.create_superuser("secret-admin", "b@example.org", PASSWORD)
    mine = Project.objects.create(name="mine")
    own_image = SourceImage.objects.create(project=mine, path="mine/1.jpg")
    own = Occurrence.objects.create(project=mine, key="own-occurrence")
    client = _member(django_user_model, "pm", (mine, "project_manager"))
    theirs = Occurrence.objects.filter(project=platform.project).first()
    image = SourceImage.objects.filter(project=platform.project).first()

    page = client.get(f"/admin/observations/identification/add/?occurrence={theirs.pk}&user={boss.pk}")
    assert page.status_code == 200
    assert str(theirs) not in _labels(page.content.decode()) and "secret-admin" not in page.content.decode()
    page = client.get(f"/admin/observations/detection/add/?occurrence={theirs.pk}&source_image={image.pk}")
    assert page.status_code == 200 and _labels(page.content.decode()) == []
    page = client.get(f"/admin/observations/detection/add/?occurrence={own.pk}&source_image={own_image.pk}")
    assert _labels(page.content.decode()) == [str(own_image), str(own)]  # the user's own rows are named
    page = client.get("/admin/observations/detection/add/?occurrence=x&source_image=-1")
    assert page.status_code == 200 and _labels(page.content.decode()) == []


def test_an_identification_is_the_account_that_adds_it_but_for_a_superuser(platform, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", PASSWORD)
    client = _member(django_user_model, "identifier", (platform.project, "identifier"))
    occurrence = Occurrence.objects.filter(project=platform.project).first()
    data = {"occurrence": occurrence.pk, "taxon": Taxon.objects.get(name="Vanessa").pk, "who": "", "comment": "",
            "created_at_0": "2024-07-01", "created_at_1": "10:00:00", "user": boss.pk}  # fmt: skip
    assert client.post("/admin/observations/identification/add/", data).status_code == 302
    assert list(Identification.objects.values_list("user__username", flat=True)) == ["identifier"]
    superuser = Client()
    superuser.force_login(boss)
    data["created_at_1"] = "11:00:00"
    assert superuser.post("/admin/observations/identification/add/", data).status_code == 302
    assert sorted(Identification.objects.values_list("user__username", flat=True)) == ["boss", "identifier"]


def test_a_capture_set_holds_images_of_its_own_project_only(platform, django_user_model):
    other = Project.objects.create(name="A")
    client = _member(django_user_model, "both", (other, "project_manager"), (platform.project, "project_manager"))
    images = list(SourceImage.objects.filter(project=platform.project).order_by("pk"))
    form = {"project": other.pk, "name": "A-set", "description": "", "images": ",".join(str(i.pk) for i in images)}
    refused = client.post("/admin/observations/captureset/add/", form)
    assert refused.status_code == 200 and not CaptureSet.objects.filter(name="A-set").exists()
    assert f"{len(images)} of these images belong to another project (image {images[0].pk}" in (
        refused.content.decode().replace("&#x27;", "'")
    )
    # Moving a capture set to another project is the same: its images would be another project's.
    moved = {"project": other.pk, "name": platform.name, "description": "",
             "images": ",".join(str(i.pk) for i in images)}  # fmt: skip
    assert client.post(f"/admin/observations/captureset/{platform.pk}/change/", moved).status_code == 200
    assert CaptureSet.objects.get(pk=platform.pk).project == platform.project
    form["project"] = platform.project.pk
    assert client.post("/admin/observations/captureset/add/", form).status_code == 302


def test_a_detection_is_in_an_occurrence_of_its_images_project(platform, django_user_model):
    other = Project.objects.create(name="A")
    elsewhere = Occurrence.objects.create(project=other, key="elsewhere")
    client = _member(django_user_model, "both", (other, "project_manager"), (platform.project, "project_manager"))
    detection = Detection.objects.filter(source_image__project=platform.project).first()
    form = {"source_image": detection.source_image_id, "occurrence": elsewhere.pk, "key": detection.key,
            "bbox": "", "area": "", "confidence": ""}  # fmt: skip
    refused = client.post(f"/admin/observations/detection/{detection.pk}/change/", form)
    assert refused.status_code == 200 and "a detection&#x27;s occurrence is of its image&#x27;s project" in (
        refused.content.decode()
    )
    assert Detection.objects.get(pk=detection.pk).occurrence_id != elsewhere.pk


def test_an_image_with_detections_or_capture_sets_stays_in_its_project(platform, django_user_model):
    other = Project.objects.create(name="A")
    client = _member(django_user_model, "both", (other, "project_manager"), (platform.project, "project_manager"))
    image = SourceImage.objects.filter(project=platform.project).first()
    form = {"project": other.pk, "path": image.path, "width": image.width or "", "height": image.height or "",
            "timestamp_0": "", "timestamp_1": ""}  # fmt: skip
    refused = client.post(f"/admin/observations/sourceimage/{image.pk}/change/", form)
    assert refused.status_code == 200 and "cannot move to another project" in refused.content.decode()
    assert SourceImage.objects.get(pk=image.pk).project == platform.project
    alone = SourceImage.objects.create(project=platform.project, path="alone.jpg")
    form["path"] = alone.path
    assert client.post(f"/admin/observations/sourceimage/{alone.pk}/change/", form).status_code == 302
    assert SourceImage.objects.get(pk=alone.pk).project == other


def test_the_rank_filter_offers_the_ranks_of_the_users_own_rows(platform, django_user_model):
    mine = Project.objects.create(name="mine")
    Occurrence.objects.create(project=mine, key="own", determination=Taxon.objects.get(name="Lepidoptera"))
    client = _member(django_user_model, "viewer", (mine, "viewer"))
    offered = {}
    for url in ("/admin/observations/occurrence/", "/admin/observations/classification/",
                "/admin/observations/determinationchange/"):  # fmt: skip
        page = client.get(url)
        assert page.status_code == 200
        offered[url] = sorted(set(re.findall(r"\?(?:[a-z_]+__)?rank=([a-z]+)", page.content.decode())))
    assert offered == {
        "/admin/observations/occurrence/": ["order"],
        "/admin/observations/classification/": [],
        "/admin/observations/determinationchange/": [],
    }


def test_a_missing_capture_set_looks_like_a_private_one_to_an_anonymous_visitor(client, platform):
    for page in ("review", "evaluation"):
        private = client.get(f"/{page}/capture-sets/{platform.pk}/")
        missing = client.get(f"/{page}/capture-sets/999999/")
        assert (private.status_code, missing.status_code) == (302, 302)
        assert missing["Location"] == f"/login/?next=/{page}/capture-sets/999999/"


def test_a_project_manager_adds_a_member_by_username_without_seeing_the_list_of_accounts(platform, django_user_model):
    django_user_model.objects.create_user("someone-elsewhere", password=PASSWORD)
    newcomer = django_user_model.objects.create_user("newcomer", password=PASSWORD)
    client = _member(django_user_model, "pm", (platform.project, "project_manager"))

    page = client.get("/admin/access/membership/add/").content.decode()
    assert "someone-elsewhere" not in page and "newcomer" not in page
    form = {"project": platform.project.pk, "role": "viewer"}
    refused = client.post("/admin/access/membership/add/", {**form, "user": "nobody-by-this-name"})
    assert refused.status_code == 200 and "No active account has this username." in refused.content.decode()
    assert client.post("/admin/access/membership/add/", {**form, "user": "newcomer"}).status_code == 302
    membership = Membership.objects.get(user=newcomer)
    assert (membership.project, membership.role) == (platform.project, "viewer")

    # Its role changes; its account does not (a username posted with the change is ignored).
    change = f"/admin/access/membership/{membership.pk}/change/"
    assert "someone-elsewhere" not in client.get(change).content.decode()
    response = client.post(change, {**form, "role": "identifier", "user": "someone-elsewhere"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.user, membership.role) == (newcomer, "identifier")


def test_memberships_are_seen_by_the_project_managers_only_even_on_a_public_project(platform, django_user_model):
    platform.project.public = True
    platform.project.save(update_fields=["public"])
    member = django_user_model.objects.create_user("a-member", password=PASSWORD)
    Membership.objects.create(user=member, project=platform.project, role="viewer")
    memberships = "/admin/access/membership/"
    for client in (
        _member(django_user_model, "roleless"),
        _member(django_user_model, "viewer", (platform.project, "viewer")),
    ):
        response = client.get(memberships)
        assert response.status_code == 403 and "a-member" not in response.content.decode()
    manager = _member(django_user_model, "pm", (platform.project, "project_manager"))
    assert "a-member" in manager.get(memberships).content.decode()


def test_a_value_no_id_column_holds_is_a_form_error_not_a_server_error(platform, django_user_model):
    """A taxon ``zz`` or an id of 30 digits went to the database as it was (a ValueError, an
    OverflowError on SQLite, a DataError on PostgreSQL); a box of NaN broke the JSON check."""
    client = _member(django_user_model, "pm", (platform.project, "project_manager"))
    occurrence = Occurrence.objects.filter(project=platform.project).first()
    huge = "9" * 30
    for value in ("zz", huge, "-1"):
        assert client.get(f"/admin/observations/identification/add/?taxon={value}").status_code == 200
        data = {"occurrence": occurrence.pk, "taxon": value, "who": "", "comment": "",
                "created_at_0": "2024-07-01", "created_at_1": "10:00:00"}  # fmt: skip
        refused = client.post("/admin/observations/identification/add/", data)
        assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert not Identification.objects.filter(occurrence=occurrence, who="").exists()

    images = ",".join(str(pk) for pk in platform.images.values_list("pk", flat=True))
    form = {"project": platform.project.pk, "name": platform.name, "description": "", "images": f"{images},{huge}"}
    refused = client.post(f"/admin/observations/captureset/{platform.pk}/change/", form)
    assert refused.status_code == 200 and "is not a valid value" in refused.content.decode()

    detection = Detection.objects.filter(source_image__project=platform.project).first()
    before = Detection.objects.get(pk=detection.pk).bbox
    base = {"source_image": detection.source_image_id, "occurrence": detection.occurrence_id or "",
            "key": detection.key, "relative_area": "", "confidence": ""}  # fmt: skip
    for box, reason in [
        ("NaN", "four finite numbers"), ("[1e999, 0, 1, 1]", "four finite numbers"), ('{"a": "b"}', "four finite"),
        ("[10, 10, 5, 20]", "needs x1 &lt;= x2 and y1 &lt;= y2"),
    ]:  # fmt: skip
        refused = client.post(f"/admin/observations/detection/{detection.pk}/change/", {**base, "bbox": box})
        assert refused.status_code == 200 and reason in refused.content.decode(), box
    refused = client.post(f"/admin/observations/detection/{detection.pk}/change/", {**base, "relative_area": "-5"})
    assert refused.status_code == 200 and "between 0 and 1" in refused.content.decode()
    assert Detection.objects.get(pk=detection.pk).bbox == before


def test_who_created_a_job_is_seen_by_them_and_the_project_managers_only(platform, django_user_model):
    """A job names someone who may run jobs there: a role, which only the managers see."""
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.operations import create_job

    platform.project.public = True
    platform.project.save(update_fields=["public"])
    runner = _member(django_user_model, "the-runner", (platform.project, "data_manager"))
    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {}, dry_run=True)
    Job.objects.filter(pk=job.pk).update(created_by=django_user_model.objects.get(username="the-runner"))
    assert Client().get(f"/api/v1/jobs/{job.pk}/").json()["created_by"] is None  # anonymous, on a public project
    viewer = _member(django_user_model, "a-viewer", (platform.project, "viewer"))
    manager = _member(django_user_model, "the-manager", (platform.project, "project_manager"))
    for client, sees in ((viewer, False), (runner, True), (manager, True)):
        assert client.get(f"/api/v1/jobs/{job.pk}/").json()["created_by"] == ("the-runner" if sees else None)
        listed = client.get("/admin/jobs/job/")
        assert listed.status_code == 200 and f">{job.pk}<" in listed.content.decode()
        assert ("by the-runner" in listed.content.decode()) is sees
        page = client.get(f"/admin/jobs/job/{job.pk}/change/")
        assert page.status_code == 200 and ("the-runner" in page.content.decode()) is sees


def test_an_anonymous_visitor_with_a_very_long_query_is_sent_to_the_login(platform, client):
    """The login's ``next`` carried the whole query: past Django's redirect limit, a bare 400."""
    page = f"/review/capture-sets/{platform.pk}/"
    response = client.get(page, {"algorithm": "é" * 2000})
    assert response.status_code == 302 and response["Location"].endswith("?next=" + page)
    response = client.get(page, {"job": "7"})
    assert response.status_code == 302 and "job%3D7" in response["Location"]
