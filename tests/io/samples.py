"""Inputs for the format tests, built from the real samples in ../shared/data (read in place, never copied).

- :func:`antenna_response`: an Antenna ``PipelineResultsResponse`` assembled from the recorded API:
  the real 40-class category map (``/ml/labels/1/``), the captures, and each detection with its
  real classification (40 softmax ``scores`` and ``logits``). The recorded processing-service
  responses carry no category map, so they cannot show a roll-up on their own.
- :func:`validate_megadetector`: MegaDetector's own validator on a written file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import in_ci


def _body(folder: Path, number: int) -> dict:
    (path,) = folder.glob(f"{number:03d}_*.json")
    return json.loads(path.read_text())["body"]


def antenna_response(shared_data: Path, n_detections: int = 60) -> dict:
    """A processing-service response for the recorded capture set's first ``n_detections`` detections."""
    api = shared_data / "antenna" / "antenna_api"
    category_map = _body(api, 104)
    captures = {}
    detections = []
    for number in range(123, 123 + n_detections):  # detection details 1..60
        detail = _body(api, number)
        image_id = int(detail["source_image"].rstrip("/").rsplit("/", 1)[-1])
        captures.setdefault(image_id, _body(api, 271 + image_id))  # capture details 1..30 are 272..301
        nested = detail["classifications"][0]
        clf = _body(api, 29 + nested["id"])  # classification details 1..60 are 030..089
        x1, y1, x2, y2 = detail["bbox"]
        detections.append(
            {
                "source_image_id": str(image_id),
                "bbox": {"x1": x1, "y1": y1, "x2": x2, "y2": y2},
                "algorithm": {
                    "name": detail["detection_algorithm"]["name"],
                    "key": detail["detection_algorithm"]["key"],
                },
                "classifications": [
                    {
                        "classification": clf["taxon"]["name"],
                        "labels": None,
                        "scores": clf["scores"],
                        "logits": clf["logits"],
                        "algorithm": {"name": clf["algorithm"]["name"], "key": clf["algorithm"]["key"]},
                        "terminal": True,
                        "timestamp": clf["created_at"],
                    }
                ],
            }
        )
    key = detections[0]["classifications"][0]["algorithm"]["key"]
    return {
        "pipeline": "recorded",
        "total_time": 0.0,
        "algorithms": {
            key: {
                "name": key,
                "key": key,
                "category_map": {"data": category_map["data"], "labels": category_map["labels"]},
            }
        },
        "source_images": [
            {
                "id": str(c["id"]),
                "url": c["path"],
                "width": c["width"],
                "height": c["height"],
                "timestamp": c["timestamp"],
            }
            for c in captures.values()
        ],
        "detections": detections,
    }


def validate_megadetector(path: Path) -> None:
    """MegaDetector's validator must find no error (fails under CI=true when it is not installed)."""
    try:
        from megadetector.postprocessing.validate_batch_results import (
            ValidateBatchResultsOptions,
            validate_batch_results,
        )
    except ImportError:
        message = "MegaDetector's validator is not installed (pip install --no-deps megadetector==10.0.28)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    options = ValidateBatchResultsOptions()
    options.check_image_existence = False
    result = validate_batch_results(str(path), options)
    assert result["validation_results"]["errors"] == [], result["validation_results"]["errors"]
