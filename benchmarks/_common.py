"""Helpers shared by the benchmark scripts: timing medians and the real AMI label space."""

from __future__ import annotations

import csv
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from taxopost.core import CategoryMap, Taxonomy

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TAXOPOST_SHARED_DATA", REPO.parent / "shared" / "data"))


def median_seconds(function: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of ``repeats`` calls (the machine is shared: medians, not minima or means)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ami_category_map() -> CategoryMap:
    """The AMI North-East America moth classifier's 2,497 classes, resolved through GBIF keys."""
    ami = SHARED_DATA / "ami"
    if not ami.exists():
        sys.exit(f"benchmark needs the AMI label space in {ami} (set TAXOPOST_SHARED_DATA)")
    with open(ami / "taxonomy_map.csv", newline="") as handle:
        rows = csv.DictReader(handle)
        taxonomy = Taxonomy.from_lineages(rows, ["species", "genus", "family"], id_column="speciesKey")
    index = json.loads((ami / "ne-america_category_map.json").read_text())
    labels = sorted(index, key=index.__getitem__)
    return CategoryMap(labels, taxonomy)
