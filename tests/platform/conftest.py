"""Fixtures of the platform tests: a small real-looking moth taxonomy and a capture set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taxopost.core.taxonomy import Taxonomy, TaxonRecord

TAXA = [
    ("Lepidoptera", "order", None),
    ("Nymphalidae", "family", "Lepidoptera"),
    ("Nymphalinae", "subfamily", "Nymphalidae"),
    ("Vanessa", "genus", "Nymphalinae"),
    ("Vanessa atalanta", "species", "Vanessa"),
    ("Vanessa cardui", "species", "Vanessa"),
    ("Vanessa itea", "species", "Vanessa"),
    ("Danaus", "genus", "Nymphalidae"),
    ("Danaus plexippus", "species", "Danaus"),
    ("Erebidae", "family", "Lepidoptera"),
    ("Catocala", "genus", "Erebidae"),
    ("Catocala ilia", "species", "Catocala"),
    ("Catocala relicta", "species", "Catocala"),
    ("Noctuidae", "family", "Lepidoptera"),
    ("Noctua", "genus", "Noctuidae"),
    ("Noctua pronuba", "species", "Noctua"),
]
LABELS = [
    "Vanessa atalanta",
    "Vanessa cardui",
    "Vanessa itea",
    "Danaus plexippus",
    "Catocala ilia",
    "Catocala relicta",
    "Catocala",  # a genus-level class
    "Noctua pronuba",
]


def vector(**scores: float) -> list[float]:
    """A probability vector over LABELS: the named classes, the rest spread evenly."""
    names = {label.replace(" ", "_"): i for i, label in enumerate(LABELS)}
    values = np.zeros(len(LABELS))
    for name, value in scores.items():
        values[names[name]] = value
    rest = [i for i in range(len(LABELS)) if values[i] == 0]
    values[rest] = (1.0 - values.sum()) / len(rest)
    return [float(v) for v in values]


# Each row: (occurrence, image, bbox, scores). Images are 1000 x 1000 pixels.
ROWS = [
    ("occ-confident", "img-1.jpg", [10, 10, 400, 400], vector(Danaus_plexippus=0.93)),
    (
        "occ-vanessa",
        "img-1.jpg",
        [500, 500, 900, 900],
        vector(Vanessa_atalanta=0.5, Vanessa_cardui=0.2, Vanessa_itea=0.1),
    ),
    ("occ-catocala", "img-2.jpg", [0, 0, 300, 300], vector(Catocala_ilia=0.4, Catocala_relicta=0.2, Catocala=0.1)),
    ("occ-noctua", "img-2.jpg", [300, 300, 900, 900], vector(Noctua_pronuba=0.7, Vanessa_atalanta=0.2)),
    ("occ-tiny", "img-3.jpg", [0, 0, 20, 20], vector(Vanessa_cardui=0.45, Vanessa_atalanta=0.35)),
    ("occ-nobox", "img-3.jpg", None, vector(Danaus_plexippus=0.5, Catocala_ilia=0.3)),
]


def taxonomy() -> Taxonomy:
    return Taxonomy(TaxonRecord(name, rank, parent) for name, rank, parent in TAXA)


def write_predictions(path: Path, rows=ROWS, *, capture_set: str = "station-1", algorithm: str = "moths-v1") -> Path:
    with open(path, "w") as handle:
        for occurrence, image, bbox, scores in rows:
            record = {
                "capture_set": capture_set,
                "image": {"path": image, "width": 1000, "height": 1000, "timestamp": "2024-07-01T22:00:00Z"},
                "occurrence": occurrence,
                "algorithm": algorithm,
                "scores": scores,
            }
            if bbox is not None:
                record["bbox"] = bbox
            else:
                record["detection"] = "whole"
            handle.write(json.dumps(record) + "\n")
    return path


@pytest.fixture
def platform(db, tmp_path):
    """Taxonomy, the classifier's category map, a capture set of six detections with predictions."""
    return load_platform(tmp_path)


def load_platform(tmp_path: Path):
    """What the ``platform`` fixture loads (also used by tests that need a transactional database)."""
    from taxopost.ml.operations import get_or_create_algorithm, import_category_map
    from taxopost.observations.models import CaptureSet
    from taxopost.observations.predictions import import_predictions
    from taxopost.taxa.models import Taxon
    from taxopost.taxa.operations import import_taxa_list, import_taxonomy

    import_taxonomy(taxonomy())
    category_map, _ = import_category_map(LABELS)
    get_or_create_algorithm("moths-v1", name="Moth classifier v1", category_map=category_map)
    import_predictions(write_predictions(tmp_path / "predictions.jsonl"))
    regional = Taxon.objects.filter(name__in=["Vanessa", "Danaus", "Catocala ilia"]).values_list("id", flat=True)
    import_taxa_list("regional", regional)
    return CaptureSet.objects.get(name="station-1")
