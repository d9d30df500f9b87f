"""One project with one row of every kind, a second project, and a user for each row of the matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from django.utils import timezone

PASSWORD = "a-matrix-password-1"
ALL = frozenset({"view", "identify", "run", "manage"})


@dataclass(frozen=True)
class Row:
    """Who is asking: what they may do on the fixture's project (``here``) and on some project."""

    name: str
    logged_in: bool
    here: frozenset = field(default_factory=frozenset)
    anywhere: frozenset = field(default_factory=frozenset)
    superuser: bool = False

    def on_public(self) -> Row:
        """The same user once the project is public: anyone may view it."""
        return Row(self.name, self.logged_in, self.here | {"view"}, self.anywhere | {"view"}, self.superuser)


# Written out by hand, not derived from the code under test: the matrix is what the roles promise.
ROWS = [
    Row("anonymous", logged_in=False),
    Row("other_member", logged_in=True, anywhere=ALL),  # project manager of another project
    Row("viewer", True, frozenset({"view"}), frozenset({"view"})),
    Row("identifier", True, frozenset({"view", "identify"}), frozenset({"view", "identify"})),
    Row("data_manager", True, frozenset({"view", "identify", "run"}), frozenset({"view", "identify", "run"})),
    Row("project_manager", True, ALL, ALL),
    Row("staff", True),  # is_staff, no permission, no role
    Row("superuser", True, ALL, ALL, superuser=True),
]
ROLE_OF = {"viewer": "viewer", "identifier": "identifier", "data_manager": "data_manager",
           "project_manager": "project_manager"}  # fmt: skip


def build_world(capture_set, django_user_model, *, public: bool) -> SimpleNamespace:
    """The rows of every resource in the capture set's project, jobs in three states, and the users."""
    from django.contrib.auth.models import Group

    from taxopost.access.models import AccessToken, Membership
    from taxopost.access.tokens import create_token
    from taxopost.jobs.models import Job, JobLog
    from taxopost.ml.models import Algorithm, CategoryMap
    from taxopost.observations.models import (
        CaptureSet,
        Classification,
        Detection,
        DeterminationChange,
        Identification,
        Occurrence,
        Project,
        SourceImage,
    )
    from taxopost.postprocessing.running.lifecycle import fail
    from taxopost.postprocessing.running.operations import create_job
    from taxopost.taxa.models import TaxaList, Taxon
    from tests.platform.helpers import run

    project = capture_set.project
    project.public = public
    project.save()
    elsewhere = Project.objects.create(name="elsewhere")
    CaptureSet.objects.create(project=elsewhere, name="elsewhere-1")

    job_done = run("rank_rollup", capture_set)
    job_created = create_job("rank_rollup", Job.CAPTURE_SET, capture_set.pk, {"thresholds": {"genus": 0.5}})
    # Resumed by the columns: a task whose run writes nothing, so it neither replaces job_done's
    # outputs (a re-run of the roll-up would, and job_done could no longer be reverted) nor builds on them.
    nothing = {"size_threshold": 1e-9}
    job_failed = create_job("small_size_filter", Job.CAPTURE_SET, capture_set.pk, nothing)
    fail(job_failed.pk, "the broker refused it")  # failed before it started: resuming makes its plan then
    # The admin's actions get jobs of their own: the API's columns have canceled and resumed those above.
    admin_job_created = create_job("rank_rollup", Job.CAPTURE_SET, capture_set.pk, {"thresholds": {"genus": 0.4}})
    admin_job_failed = create_job("small_size_filter", Job.CAPTURE_SET, capture_set.pk, nothing)
    fail(admin_job_failed.pk, "the broker refused it")
    # Identified, but in no capture set: the evaluation page answers at once that there is nothing to evaluate.
    loose = Occurrence.objects.create(project=project, key="loose")
    identification = Identification.objects.create(
        occurrence=loose, taxon=Taxon.objects.get(name="Vanessa"), who="expert", created_at=timezone.now()
    )

    users, tokens = {}, {}
    for row in ROWS:
        if not row.logged_in:
            continue
        make = django_user_model.objects.create_superuser if row.superuser else django_user_model.objects.create_user
        users[row.name] = make(
            row.name, f"{row.name}@example.org", PASSWORD, **({} if row.superuser else {"is_staff": True})
        )
        tokens[row.name] = create_token(users[row.name])[0]
        if row.name in ROLE_OF:
            Membership.objects.create(user=users[row.name], project=project, role=ROLE_OF[row.name])
    Membership.objects.create(user=users["other_member"], project=elsewhere, role="project_manager")

    occurrence = Occurrence.objects.get(key="occ-vanessa")
    objects = {
        Project: project,
        SourceImage: SourceImage.objects.filter(project=project).first(),
        CaptureSet: capture_set,
        Occurrence: occurrence,
        Detection: Detection.objects.filter(occurrence=occurrence).first(),
        Classification: Classification.objects.filter(detection__occurrence=occurrence, applied_to=None).first(),
        Identification: identification,
        DeterminationChange: DeterminationChange.objects.filter(occurrence=occurrence).first(),
        Job: job_done,
        JobLog: JobLog.objects.filter(job=job_done).first(),
        Membership: Membership.objects.get(user=users["viewer"]),
        AccessToken: tokens["superuser"],
        Taxon: Taxon.objects.get(name="Vanessa"),
        TaxaList: TaxaList.objects.get(name="regional"),
        Algorithm: Algorithm.objects.get(key="moths-v1"),
        CategoryMap: CategoryMap.objects.first(),
        django_user_model: users["superuser"],
        Group: Group.objects.create(name="curators"),
    }
    return SimpleNamespace(
        project=project, capture_set=capture_set, occurrence=occurrence, objects=objects, users=users,
        tokens=tokens, job_done=job_done, job_created=job_created, job_failed=job_failed,
        admin_job_created=admin_job_created, admin_job_failed=admin_job_failed,
    )  # fmt: skip
