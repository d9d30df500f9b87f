"""A capture set large enough to compare page sizes, with chains two steps deep."""

from __future__ import annotations

from tests.platform.conftest import ROWS, write_predictions
from tests.platform.helpers import run

N_OCCURRENCES = 60


def load_many(tmp_path):
    """60 occurrences on 30 images, masked then rolled up (so chains have up to three steps)."""
    from taxopost.observations.models import CaptureSet
    from taxopost.observations.predictions import import_predictions

    rows = [
        (f"many-{i:03d}", f"many-{i // 2:03d}.jpg", ROWS[i % len(ROWS)][2], ROWS[i % len(ROWS)][3])
        for i in range(N_OCCURRENCES)
    ]
    import_predictions(write_predictions(tmp_path / "many.jsonl", rows, capture_set="station-many"))
    capture_set = CaptureSet.objects.get(name="station-many")
    run("class_masking", capture_set, {"taxa_list": "regional"})
    run("rank_rollup", capture_set)
    return capture_set
