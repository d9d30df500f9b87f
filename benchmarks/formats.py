"""Reading, rolling up and writing a MegaDetector batch file, against only parsing it.

A 200,000-detection MegaDetector file with top-5 classifications over the AMI 2,497-class
label space (plain-lineage descriptions family;genus;species from the AMI table). Prints
medians, in the same run, of:

- parsing alone (read the bytes, then ``json.loads``, ``orjson.loads``, ``msgspec.json.decode``);
- ``taxopost``'s whole path: read and check (:func:`read_detection_file`: one image parsed at a
  time), roll up (sparse rows, densified per chunk) and write the MegaDetector file back (streamed);

and the ratio to the fastest parser (target: within 3x). Peak memory is what each step allocates
at its peak (tracemalloc), against the file's size (target: within 3x of the file, or flat when
streaming).

    .venv/bin/python benchmarks/formats.py [--detections 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from _common import SHARED_DATA, ami_category_map, median_seconds

PARSERS = ("json", "orjson", "msgspec")
RANKS = ("family", "genus", "species")


def generate(path: Path, n_detections: int, seed: int = 0) -> None:
    """A MegaDetector file: 1-3 detections per image, each with a top-5 sorted by confidence."""
    category_map = ami_category_map()
    taxonomy = category_map.taxonomy
    descriptions = {}
    for c, taxon in enumerate(category_map.class_taxa):
        lineage = {taxonomy.rank_of(t): taxonomy.names[t] for t in taxonomy.lineage(int(taxon))}
        descriptions[str(c)] = ";".join(lineage.get(rank, "") for rank in RANKS)
    rng = np.random.default_rng(seed)
    n_classes = category_map.n_classes
    # a confident top-1 half the time, else mass spread over related classes (neighbours in the map)
    top = rng.integers(0, n_classes, n_detections)
    offsets = rng.integers(1, 40, (n_detections, 4))
    classes = np.concatenate([top[:, None], (top[:, None] + offsets) % n_classes], axis=1)
    weights = rng.dirichlet(np.full(6, 0.4), n_detections)[:, :5]
    weights[rng.random(n_detections) < 0.5, 0] += 3.0
    weights /= weights.sum(axis=1, keepdims=True) * rng.uniform(1.0, 1.05, (n_detections, 1))
    order = np.argsort(-weights, axis=1, kind="stable")
    scores = np.round(np.take_along_axis(weights, order, axis=1), 4)
    classes = np.take_along_axis(classes, order, axis=1)
    for row in np.flatnonzero((classes[:, :, None] == classes[:, None, :]).sum(axis=(1, 2)) > 5):
        classes[row] = (top[row] + np.arange(5)) % n_classes  # no class twice in one top-5
    boxes = np.round(rng.uniform(0, 0.5, (n_detections, 4)), 4)
    confs = np.round(rng.uniform(0.1, 1.0, n_detections), 3)
    images = []
    d = 0
    while d < n_detections:
        k = min(int(rng.integers(1, 4)), n_detections - d)
        detections = [
            {
                "category": "1",
                "conf": float(confs[i]),
                "bbox": boxes[i].tolist(),
                "classifications": [[str(c), float(s)] for c, s in zip(classes[i], scores[i], strict=True)],
            }
            for i in range(d, d + k)
        ]
        images.append({"file": f"station-{len(images) % 40}/{len(images):07d}.jpg", "detections": detections})
        d += k
    document = {
        "info": {"format_version": "1.5", "detector": "MDV5A", "classifier": "ami-ne-america"},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "classification_categories": {str(c): label for c, label in enumerate(category_map.labels)},
        "classification_category_descriptions": descriptions,
        "images": images,
    }
    path.write_text(json.dumps(document))


def parse(path: Path, parser: str) -> object:
    data = path.read_bytes()
    if parser == "json":
        return json.loads(data)
    if parser == "orjson":
        import orjson

        return orjson.loads(data)
    import msgspec

    return msgspec.json.decode(data)


def rollup_file(path: Path, out: Path) -> int:
    """What ``taxopost rollup --predictions FILE --lineage-ranks family,genus,species --output OUT.json`` does."""
    from taxopost.core.rollup import rank_rollup
    from taxopost.io.predictions.formats import read_detection_file, write_detection_file
    from taxopost.io.predictions.revision import Revision

    file = read_detection_file(path, lineage_ranks=RANKS)
    category_map = file.category_map()
    result = rank_rollup(file.scores, category_map)
    write_detection_file(out, file, Revision.of_rollup(result, category_map))
    return int(result.changed.sum())


def peak_mib(function) -> float:
    """Peak memory (MiB) allocated while ``function`` runs: Python objects and numpy buffers both
    report to tracemalloc (the timings above are taken without it)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detections", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (SHARED_DATA / "ami").exists():
        sys.exit(f"benchmark needs the AMI label space in {SHARED_DATA / 'ami'}")
    with tempfile.TemporaryDirectory(prefix="taxopost-formats-") as folder:
        path = Path(folder) / "md.json"
        start = time.perf_counter()
        generate(path, args.detections)
        size = path.stat().st_size / 2**20
        made = time.perf_counter() - start
        print(f"{args.detections:,} detections, top-5 over 2,497 classes: {size:.0f} MiB, made in {made:.0f} s")
        out = Path(folder) / "out.json"
        changed = rollup_file(path, out)  # warm up (numba kernels compiled) and check once
        print(f"rolled up: {changed:,} of {args.detections:,} detections changed")
        seconds = {name: median_seconds(lambda name=name: parse(path, name), args.repeats) for name in PARSERS}
        seconds["taxopost"] = median_seconds(lambda: rollup_file(path, out), args.repeats)
        fastest = min(PARSERS, key=seconds.__getitem__)
        print(f"{'step':<44}{'median s':>9}{'x ' + fastest:>12}{'peak MiB':>10}{'x file':>8}")
        for name in (*PARSERS, "taxopost"):
            label = f"parse only ({name})" if name in PARSERS else "read + check + roll up + write (taxopost)"
            step = (lambda name=name: parse(path, name)) if name in PARSERS else (lambda: rollup_file(path, out))
            extra = peak_mib(step)
            ratio = seconds[name] / seconds[fastest]
            print(f"{label:<44}{seconds[name]:>9.2f}{ratio:>12.2f}{extra:>10.0f}{extra / size:>8.1f}")
        print(f"medians of {args.repeats}; peak memory: allocated during the step (tracemalloc), file bytes included")


if __name__ == "__main__":
    main()
