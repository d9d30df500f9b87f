"""What the prediction importer refuses, beyond the bad input the core already checks."""

from __future__ import annotations

import json

import pytest

from taxopost.errors import InputError
from taxopost.observations.importers import import_predictions
from taxopost.observations.models import SourceImage

pytestmark = pytest.mark.django_db


def test_importing_a_capture_set_of_another_project_is_refused(platform, tmp_path):
    record = {
        "project": "elsewhere",
        "capture_set": "station-1",
        "image": {"path": "x.jpg", "width": 10, "height": 10},
        "algorithm": "moths-v1",
        "scores": [0.125] * 8,
    }
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match="capture_set='station-1': belongs to project 'default', not 'elsewhere'"):
        import_predictions(path)
    assert not SourceImage.objects.filter(path="x.jpg").exists()
