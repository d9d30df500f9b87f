"""A capture set's classifications as an Antenna processing-service response, for Antenna to ingest.

The document is a ``PipelineResultsResponse`` (the shape :mod:`taxopost.io.predictions.antenna`
reads): ``algorithms`` with each classifier's category map (``data: [{index, label, gbif_key,
taxon_rank}]`` and ``labels``), ``source_images`` and ``detections``, each detection with every
classification of its chain, oldest first: the model's output, then each post-processing step,
``terminal`` true only on the current answer, as Antenna marks its own derived classifications.
A classification with a vector carries its ``labels``, ``scores`` and ``logits``; a roll-up or
size-filter output carries only its taxon and score (``labels: [taxon]``, ``scores: [score]``).

Detections are read and written a chunk at a time, so memory stays flat whatever the capture
set's size; the file is written atomically (a failed export leaves no partial file).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import msgspec
import numpy as np

from taxopost.io.predictions.records import OWN_IMAGE_ID
from taxopost.io.results import check_output, write_atomically
from taxopost.io.taxonomy import gbif_key
from taxopost.ml.models import Algorithm, CategoryMap
from taxopost.observations.models import CaptureSet, Classification, Detection
from taxopost.observations.vectors import stack
from taxopost.taxa.models import Taxon

#: Detections read per query: with 2,500-class scores and logits, 500 detections are ~10 MB of vectors.
CHUNK = 500
#: The detector that made a detection is not recorded by taxopost; Antenna needs one per detection.
DETECTOR = {"name": "taxopost detections", "key": "taxopost-detections"}


@dataclass(frozen=True)
class AntennaExportSummary:
    images: int
    detections: int
    classifications: int
    skipped: dict[str, int]
    own_image_ids: bool = False

    def __str__(self) -> str:
        skipped = "".join(f"; {n} skipped ({why})" for why, n in self.skipped.items() if n)
        own = "; images under taxopost's ids (not each has its own id from its source)" if self.own_image_ids else ""
        return (
            f"{self.images} images, {self.detections} detections, {self.classifications} classifications{skipped}{own}"
        )


def export_antenna_results(capture_set: str, output: Path | str, *, pipeline: str = "taxopost") -> AntennaExportSummary:
    """Write ``capture_set``'s detections and classifications as a processing-service response."""
    check_output(output, suffixes=(".json",))
    found = CaptureSet.named(capture_set)
    images = list(found.images.order_by("id").values_list("id", "path", "width", "height", "timestamp", "external_id"))
    sizes = {pk: (width, height) for pk, _, width, height, _, _ in images}
    image_ids, own_ids = _image_ids(images)
    detection_ids = list(CaptureSet.detections_of(found).order_by("id").values_list("id", flat=True))
    encoder = msgspec.json.Encoder()
    counts = {"detections": 0, "classifications": 0}
    skipped = {"no box and no image size": 0}
    algorithms: dict[int, dict] = {}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(b'{"pipeline":' + encoder.encode(pipeline) + b',"total_time":0.0,"source_images":')
            handle.write(encoder.encode([_image(image_ids[row[0]], *row[1:5]) for row in images]))
            handle.write(b',"detections":[')
            first = True
            for start in range(0, len(detection_ids), CHUNK):
                chunk = detection_ids[start : start + CHUNK]
                for detection in _detections(chunk, sizes, image_ids, algorithms, skipped):
                    handle.write((b"" if first else b",") + encoder.encode(detection))
                    first = False
                    counts["detections"] += 1
                    counts["classifications"] += len(detection["classifications"])
            handle.write(b'],"algorithms":' + encoder.encode(_algorithms(algorithms)) + b"}")

    write_atomically(output, write)
    return AntennaExportSummary(len(images), counts["detections"], counts["classifications"], skipped, own_ids)


def _image_ids(images: list[tuple]) -> tuple[dict[int, str], bool]:
    """Each image's id in the response, and whether they are taxopost's own: its source's (Antenna's
    capture id, which Antenna looks its captures up by) when every image has a distinct one, else
    taxopost's own for all (``taxopost:12``, no capture's id: Antenna refuses it rather than attach a
    result to another capture, and an import of the file does not take it for a source's id)."""
    external = [row[5] for row in images]
    if all(external) and len(set(external)) == len(external):
        return {row[0]: row[5] for row in images}, False
    return {row[0]: f"{OWN_IMAGE_ID}{row[0]}" for row in images}, bool(images)


def _image(image_id: str, path: str, width: int | None, height: int | None, timestamp) -> dict:
    stamp = timestamp.astimezone(UTC).isoformat() if timestamp is not None else None
    return {"id": image_id, "url": path, "width": width, "height": height, "timestamp": stamp}


def _detections(
    ids: list[int], sizes: dict, image_ids: dict[int, str], algorithms: dict[int, dict], skipped: dict[str, int]
) -> list[dict]:
    """One chunk of detections with their classifications (a fixed number of queries)."""
    boxes = dict(Detection.objects.filter(id__any_of=ids).values_list("id", "bbox"))
    images = dict(Detection.objects.filter(id__any_of=ids).values_list("id", "source_image_id"))
    rows = list(
        Classification.objects.filter(detection_id__any_of=ids)
        .order_by("detection_id", "id")
        .values_list(
            "detection_id", "taxon__name", "score", "scores", "logits", "category_map_id", "category_map__n_classes",
            "algorithm_id", "terminal", "created_at",
        )
    )  # fmt: skip
    _known_algorithms({row[7] for row in rows}, algorithms)
    by_detection: dict[int, list[dict]] = {pk: [] for pk in ids}
    for detection_id, taxon, score, scores, logits, _, n_classes, algorithm_id, terminal, created in rows:
        algorithm = algorithms[algorithm_id]
        entry: dict = {
            "classification": taxon,
            "algorithm": {"name": algorithm["name"], "key": algorithm["key"]},
            "terminal": bool(terminal),
            "timestamp": created.astimezone(UTC).isoformat(),
            "inference_time": None,
        }
        if scores is not None or logits is not None:
            entry["labels"] = algorithm["labels"]
            entry["scores"] = _floats(scores, n_classes)
            entry["logits"] = _floats(logits, n_classes)
            if entry["scores"] is None:  # logits only: the service reports probabilities too
                values = np.asarray(entry["logits"], dtype=np.float64)
                exp = np.exp(values - values.max())
                entry["scores"] = (exp / exp.sum()).tolist()
        else:
            entry.update(labels=[taxon], scores=[float(score)], logits=None)
        by_detection[detection_id].append(entry)
    out = []
    for pk in ids:
        bbox = _bbox(boxes[pk], sizes.get(images[pk], (None, None)))
        if bbox is None:
            skipped["no box and no image size"] += 1
            continue
        out.append(
            {
                "source_image_id": image_ids[images[pk]],
                "bbox": bbox,
                "algorithm": DETECTOR,
                "inference_time": None,
                "crop_image_url": None,
                "timestamp": None,
                "classifications": by_detection[pk],
            }
        )
    return out


def _bbox(box: list | None, size: tuple[int | None, int | None]) -> dict | None:
    """Pixel corners; a detection without a box covers its whole image (if its size is known)."""
    if box:
        x1, y1, x2, y2 = (float(v) for v in box)
    elif size[0] and size[1]:
        x1, y1, x2, y2 = 0.0, 0.0, float(size[0]), float(size[1])
    else:
        return None
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2}


def _floats(blob: bytes | None, n_classes: int | None) -> list[float] | None:
    if blob is None:
        return None
    return stack([blob], n_classes)[0].astype(np.float64).tolist()


def _known_algorithms(ids: set[int], algorithms: dict[int, dict]) -> None:
    """Load the algorithms not seen yet, with their labels (one query each for algorithms and maps)."""
    new = ids - set(algorithms)
    if not new:
        return
    fields = ("id", "key", "name", "version", "task_type", "category_map_id")
    found = list(Algorithm.objects.filter(pk__in=new).values_list(*fields))
    maps = {m.pk: m for m in CategoryMap.objects.filter(pk__in={row[5] for row in found if row[5] is not None})}
    for pk, key, name, version, task_type, map_id in found:
        category_map = maps.get(map_id)
        algorithms[pk] = {
            "key": key,
            "name": name,
            "version": version,
            "task_type": task_type,
            "category_map": category_map,
            "labels": list(category_map.labels) if category_map is not None else None,
        }


def _algorithms(algorithms: dict[int, dict]) -> dict[str, dict]:
    """``algorithms`` of the response: each with its category map's entries (GBIF key and rank)."""
    taxa_ids = {t for a in algorithms.values() if a["category_map"] is not None for t in a["category_map"].taxa if t}
    found = Taxon.objects.filter(pk__in=taxa_ids).values_list("id", "rank", "external_ids")
    taxa = {pk: (rank, ids) for pk, rank, ids in found}
    out = {}
    for algorithm in sorted(algorithms.values(), key=lambda a: a["key"]):
        category_map = algorithm["category_map"]
        entry = {key: algorithm[key] for key in ("name", "key", "version", "task_type")}
        entry["category_map"] = None
        if category_map is not None:
            data = []
            for index, (label, taxon) in enumerate(zip(category_map.labels, category_map.taxa, strict=True)):
                rank, ids = taxa.get(taxon, (None, []))
                key = gbif_key(ids)
                gbif = int(key) if key is not None else None
                data.append(
                    {"index": index, "label": label, "gbif_key": gbif, "taxon_rank": rank.upper() if rank else None}
                )
            entry["category_map"] = {"data": data, "labels": list(category_map.labels)}
        out[algorithm["key"]] = entry
    return out
