"""Adding a task is a spec and an adapter (plus its core rule), and no other file.

A task defined here, in the test suite, is found by ``taxopost run --help``, the admin's run
action and form, the API's task list and OpenAPI schema, and an evaluation pipeline, and it runs
as a job. The contract is checked when a spec or an adapter class is defined.
"""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from pydantic import Field

from taxopost.cli import main
from taxopost.core.category_map import CategoryMap
from taxopost.evaluation.pipelines import parse_pipelines, run_pipelines
from taxopost.postprocessing import registry as adapters
from taxopost.postprocessing.base import ChunkResult, PostProcessingTask
from taxopost.tasks import OfflineStep, TaskConfig, TaskSpec, Transformed, registry
from tests.platform.conftest import LABELS, taxonomy

KEY = "toy_sharpen"


class SharpenConfig(TaskConfig):
    power: float = Field(default=2.0, gt=0, le=10, description="Exponent applied to every probability.")


def sharpen(probabilities: np.ndarray, power: float) -> np.ndarray:
    """The toy rule: raise to ``power``, keeping each row's total mass (missing mass stays missing)."""
    raised = probabilities.astype(np.float64) ** power
    mass, total = probabilities.sum(axis=1, keepdims=True), raised.sum(axis=1, keepdims=True)
    return (raised * np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)).astype(np.float32)


@pytest.fixture
def toy_task():
    """Define the spec and its adapter (which registers both), and forget them afterwards."""

    class SharpenSpec(TaskSpec):
        key = KEY
        name = "Toy sharpening"
        description = "Raise probabilities to a power: a toy task defined by the test suite."
        config_model = SharpenConfig
        offline = "transform"

        @classmethod
        def transform(
            cls, values, category_map: CategoryMap, config, step: OfflineStep, *, logits, normalized, progress=None
        ) -> Transformed:
            if logits:
                values = np.exp(values - values.max(axis=1, keepdims=True))
                values /= values.sum(axis=1, keepdims=True)
            scores = sharpen(values, config.power)
            return Transformed(scores, scores.argmax(axis=1), normalized=normalized or logits)

    from taxopost.observations.models import Classification
    from taxopost.observations.vectors import rows_to_bytes, stack

    class SharpenTask(PostProcessingTask):
        spec = SharpenSpec

        def prepare(self) -> None:
            config = self.config.model_dump(mode="json")
            self.algorithm = self.output_algorithm(name=f"Sharpened (power {self.config.power:g})", config=config)

        def select(self):
            return self.scope.terminal_classifications().exclude(scores=None)

        def process(self, ids: list[int]) -> ChunkResult:
            rows = list(
                Classification.objects.filter(id__in=ids)
                .order_by("id")
                .values_list("id", "detection_id", "detection__occurrence_id", "scores", "category_map_id", "taxon_id",
                             "taxon__name", "taxon__rank")
            )  # fmt: skip
            result = ChunkResult(examined=len(rows))
            for row in rows:
                values = stack([row[3]], len(LABELS))
                scores = sharpen(values, self.config.power)
                result.add_change(
                    row[0],
                    detection_id=row[1],
                    occurrence_id=row[2],
                    taxon_id=row[5],
                    score=float(scores.max()),
                    algorithm=self.algorithm,
                    details={"task": self.key, "power": self.config.power},
                    before=(row[6], row[7]),
                    after=(row[6], row[7]),
                    scores=rows_to_bytes(scores)[0],
                    category_map_id=row[4],
                )
            return result

    yield SharpenSpec
    registry.unregister(KEY)
    adapters.unregister(KEY)


def test_taxopost_run_help_lists_the_new_task_and_its_option(toy_task, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert KEY in help_text
    assert "--power" in help_text and "toy_sharpen: Exponent applied to every probability." in help_text


def test_the_admin_offers_the_new_task_with_its_config_form(toy_task, admin_client, platform):
    changelist = "/admin/observations/captureset/"
    choices = dict(admin_client.get(changelist).context["action_form"].fields["action"].choices)
    assert choices[f"run_{KEY}"] == "Run toy sharpening"
    page = admin_client.post(changelist, {"action": f"run_{KEY}", ACTION_CHECKBOX_NAME: [platform.pk], "index": 0})
    assert page.status_code == 200
    form = page.context["form"]
    assert list(form.fields) == ["power"] and form.fields["power"].initial == 2.0


def test_the_api_lists_the_new_task_and_documents_its_config(toy_task, admin_client):
    listed = admin_client.get(f"/api/v1/tasks/{KEY}/").json()
    assert listed["name"] == "Toy sharpening" and "power" in listed["config_schema"]["properties"]
    schema = admin_client.get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    assert components["ToySharpenConfig"]["properties"]["power"]["exclusiveMinimum"] == 0
    assert KEY in components["TaskEnum"]["enum"]
    config = components["JobCreateRequest"]["properties"]["config"]
    assert {"$ref": "#/components/schemas/ToySharpenConfig"} in config["oneOf"]


def test_an_evaluation_pipeline_runs_the_new_task_before_a_rollup(toy_task, tmp_path):
    category_map = CategoryMap(LABELS, taxonomy())
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.full(len(LABELS), 0.5), size=50).astype(np.float32)
    pipelines = parse_pipelines(
        [
            {"name": "roll-up", "steps": [{"task": "rank_rollup"}]},
            {"name": "sharpened roll-up", "steps": [{"task": KEY, "power": 3}, {"task": "rank_rollup"}]},
        ],
        category_map,
        base_dir=tmp_path,
    )
    _, (plain, sharpened) = run_pipelines(scores, category_map, pipelines)
    expected = sharpen(scores, 3.0).max(axis=1)
    species = plain.candidates.order.index("species")
    after = sharpened.candidates.evidence_score[:, species]
    at_species = ~np.isnan(after)  # rows whose best class is the genus-level "Catocala" have no species
    assert at_species.sum() > 30
    assert np.allclose(after[at_species], expected[at_species], atol=1e-5)
    assert (after[at_species] > plain.candidates.evidence_score[at_species, species]).all()


def test_the_new_task_runs_as_a_job_and_chains_to_its_source(toy_task, platform):
    from taxopost.jobs.models import Job
    from taxopost.observations.models import Classification
    from taxopost.observations.vectors import stack
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job, submit_job

    sources = {c.pk: c for c in Classification.objects.filter(terminal=True)}
    job = submit_job(create_job(KEY, Job.CAPTURE_SET, platform.pk, {"power": 3}), EmbeddedExecutor())
    assert job.status == Job.SUCCEEDED, job.error
    assert job.metrics["changed"] == len(sources)
    written = list(Classification.objects.filter(job=job))
    assert {c.applied_to_id for c in written} == set(sources) and all(c.terminal for c in written)
    assert written[0].algorithm.task_type == KEY and written[0].algorithm.task_label == "toy sharpening"
    for clf in written:
        source = stack([sources[clf.applied_to_id].scores], len(LABELS))
        assert np.allclose(stack([clf.scores], len(LABELS)), sharpen(source, 3.0))


# -- the contract, checked when a class is defined -------------------------------------------


def test_a_spec_without_key_name_or_config_is_a_type_error_when_defined():
    with pytest.raises(TypeError, match="must define key, name, config_model"):

        class Nameless(TaskSpec):
            pass

    with pytest.raises(TypeError, match="config_model must be a TaskConfig subclass"):

        class NotAConfig(TaskSpec):
            key, name, config_model = "not_a_config", "Not a config", dict


def test_a_spec_with_a_bad_key_or_unknown_hint_field_is_a_type_error():
    with pytest.raises(TypeError, match="must match"):

        class Spaced(TaskSpec):
            key, name, config_model = "has spaces", "Spaced", SharpenConfig

    with pytest.raises(TypeError, match=r"form_widgets names no config field \['strength'\]"):

        class Misnamed(TaskSpec):
            key, name, config_model = "misnamed", "Misnamed", SharpenConfig
            form_widgets = {"strength": "rank_list"}

    assert "misnamed" not in registry.task_keys()


def test_a_transforming_spec_without_transform_is_a_type_error():
    with pytest.raises(TypeError, match="does not implement transform"):

        class Lazy(TaskSpec):
            key, name, config_model, offline = "lazy", "Lazy", SharpenConfig, "transform"


def test_a_second_spec_with_a_known_key_is_refused():
    with pytest.raises(TypeError, match="two task specs share the key 'rank_rollup'"):

        class Impostor(TaskSpec):
            key, name, config_model = "rank_rollup", "Impostor", SharpenConfig


def test_an_adapter_without_spec_or_methods_is_a_type_error_when_defined(toy_task):
    with pytest.raises(TypeError, match="must name its spec"):

        class Orphan(PostProcessingTask):
            def select(self):
                return None

            def process(self, ids):
                return ChunkResult()

    with pytest.raises(TypeError, match="must implement process"):

        class Half(PostProcessingTask):
            spec = toy_task

            def select(self):
                return None


def test_a_task_key_is_the_only_kind_an_algorithm_may_have_besides_classification(db):
    from django.core.exceptions import ValidationError

    from taxopost.ml.models import Algorithm

    with pytest.raises(ValidationError, match="must be 'classification' or a task key"):
        Algorithm(key="x", name="x", task_type="not_a_task").full_clean()
    with pytest.raises(Exception, match="must be 'classification' or a task key"):
        Algorithm(key="x", name="x", task_type="not_a_task").save()
