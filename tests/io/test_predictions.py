"""read_predictions: records in plain types, the same from every format, and a Django-free io layer."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxopost.errors import InputError
from taxopost.io import PredictionRecord, read_predictions
from taxopost.io.predictions import record_from_dict
from taxopost.io.timestamps import parse_timestamp

RECORDS = [
    {
        "project": "survey",
        "capture_set": " station-1 ",
        "image": {"path": "a.jpg", "width": 100, "height": 80, "timestamp": "2024-07-01T22:10:00"},
        "bbox": [1, 2, 30, 40],
        "occurrence": "occ-1",
        "algorithm": "moths-v1",
        "scores": [0.25, 0.75],
    },
    {"capture_set": "station-1", "image": {"path": "b.jpg"}, "algorithm": "moths-v1", "logits": [2.0, -1.5]},
]


def _parquet(path, records):
    table = pa.table(
        {
            "project": [r.get("project") for r in records],
            "capture_set": [r["capture_set"] for r in records],
            "image_path": [r["image"]["path"] for r in records],
            "image_width": [r["image"].get("width") for r in records],
            "image_height": [r["image"].get("height") for r in records],
            "image_timestamp": [r["image"].get("timestamp") for r in records],
            "bbox": [r.get("bbox") for r in records],
            "occurrence": [r.get("occurrence") for r in records],
            "algorithm": [r["algorithm"] for r in records],
            "scores": pa.array([r.get("scores") for r in records], type=pa.list_(pa.float32())),
            "logits": pa.array([r.get("logits") for r in records], type=pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, path)
    return path


def test_read_predictions_yields_checked_records_in_plain_types(write):
    path = write("p.jsonl", "\n".join(json.dumps(r) for r in RECORDS) + "\n\n")
    first, second = read_predictions(path)
    assert isinstance(first, PredictionRecord)
    assert (first.where, first.project, first.capture_set, first.detection) == (
        f"{path}:1",
        "survey",
        "station-1",
        "1,2,30,40",
    )
    assert first.bbox == [1.0, 2.0, 30.0, 40.0] and (first.width, first.height) == (100, 80)
    assert first.timestamp == datetime(2024, 7, 1, 22, 10, tzinfo=UTC)  # no zone given: UTC
    assert first.values.dtype == np.float32 and first.values.tolist() == [0.25, 0.75] and not first.logits
    assert (second.project, second.detection, second.occurrence, second.bbox) == (None, "whole image", None, None)
    assert second.logits and second.values.dtype == np.float32


def test_jsonl_and_parquet_give_the_same_records(write, tmp_path):
    from_jsonl = list(read_predictions(write("p.jsonl", "\n".join(json.dumps(r) for r in RECORDS))))
    from_parquet = list(read_predictions(_parquet(tmp_path / "p.parquet", RECORDS)))
    assert len(from_jsonl) == len(from_parquet) == 2
    for a, b in zip(from_jsonl, from_parquet, strict=True):
        assert a.where.rsplit(":", 1)[1] == b.where.rsplit(":", 1)[1]
        assert {k: v for k, v in vars(a).items() if k not in ("where", "values")} == {
            k: v for k, v in vars(b).items() if k not in ("where", "values")
        }
        np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("kind", ["fixed-size list", "list whose null row spans values"])
def test_a_null_vector_row_in_parquet_leaves_the_later_rows_on_their_own_vectors(tmp_path, kind):
    """A detector-only row (null scores) between classified ones: every later row keeps its vector."""
    vectors = [[0.1, 0.9], None, [0.7, 0.3], [0.2, 0.8]]
    values = pa.array([0.1, 0.9, 0.5, 0.5, 0.7, 0.3, 0.2, 0.8], pa.float32())
    mask = pa.array([False, True, False, False])
    if kind == "fixed-size list":
        scores = pa.FixedSizeListArray.from_arrays(values, 2, mask=mask)
    else:
        scores = pa.ListArray.from_arrays(pa.array([0, 2, 4, 6, 8], pa.int32()), values, mask=mask)
    n = len(vectors)
    table = pa.table(
        {
            "capture_set": ["c"] * n,
            "image_path": [f"{i}.jpg" for i in range(n)],
            "algorithm": ["m", None, "m", "m"],
            "scores": scores,
        }
    )
    pq.write_table(table, tmp_path / "p.parquet")
    records = list(read_predictions(tmp_path / "p.parquet"))
    assert [None if r.values is None else r.values.tolist() for r in records] == [
        None if v is None else np.float32(v).tolist() for v in vectors
    ]


def test_a_jsonl_file_may_start_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(RECORDS[0]).encode() + b"\n")
    (record,) = read_predictions(path)
    assert record.capture_set == "station-1" and record.values.tolist() == [0.25, 0.75]


def test_a_record_fault_names_the_line_field_and_value(write):
    lines = [json.dumps(RECORDS[1]), json.dumps({**RECORDS[0], "bbox": [0, 0, 500, 10]})]
    path = write("p.jsonl", "\n".join(lines) + "\n")
    records = read_predictions(path)
    assert next(records).where == f"{path}:1"  # read lazily: the first record comes before the fault
    with pytest.raises(InputError, match=rf"{path}:2: bbox=\[0.0, 0.0, 500.0, 10.0\]: lies outside its image"):
        next(records)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"bbox": [0, 0, 10**400, 10]}, r":1: bbox=\[0, 0, 1000.*: expected \[x1, y1, x2, y2\], four numbers"),
        ({"image": {"path": "a.jpg", "width": 10**400, "height": 80}}, r"image.width=<an integer of 1329 bits>: must"),
        ({"image": {"path": "a.jpg", "width": True, "height": 80}}, r":1: image.width=True: must be a positive"),
    ],
    ids=["huge box", "huge width", "boolean width"],
)
def test_a_number_no_float_holds_is_a_record_fault_not_a_crash(write, edit, match):
    """A JSON integer has no limit: 1 followed by 400 zeros raised OverflowError from math.isfinite."""
    path = write("p.jsonl", json.dumps({**RECORDS[0], **edit}) + "\n")
    with pytest.raises(InputError, match=match):
        list(read_predictions(path))


def test_an_unknown_extension_or_missing_file_is_refused_before_reading(tmp_path):
    with pytest.raises(InputError, match="predictions must be .jsonl or .parquet"):
        read_predictions(tmp_path / "p.csv")
    with pytest.raises(InputError, match="no such file"):
        read_predictions(tmp_path / "p.jsonl")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-07-01T22:10:00Z", datetime(2024, 7, 1, 22, 10, tzinfo=UTC)),
        ("2024-07-01", datetime(2024, 7, 1, tzinfo=UTC)),
        ("2024-7-1 9:05", datetime(2024, 7, 1, 9, 5, tzinfo=UTC)),
        (
            "2024-07-01 22:10:00,5 -0130",
            datetime(2024, 7, 1, 22, 10, 0, 500000, tzinfo=timezone(-timedelta(minutes=90))),
        ),
    ],
)
def test_parse_timestamp_reads_iso_8601_leniently(text, expected):
    parsed = parse_timestamp(text, field="created_at", source="f.csv:2")
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-02-30T10:00", "f.csv:2: created_at='2024-02-30T10:00': not a valid date and time"),
        ("yesterday", "f.csv:2: created_at='yesterday': expected an ISO 8601 date and time"),
        (5, "f.csv:2: created_at=5: expected an ISO 8601 date and time"),
    ],
)
def test_parse_timestamp_refuses_naming_the_field_and_value(value, message):
    with pytest.raises(InputError) as error:
        parse_timestamp(value, field="created_at", source="f.csv:2")
    assert str(error.value) == message


def test_the_io_layer_never_loads_django():
    code = (
        "import sys, taxopost.io, taxopost.io.predictions; print(any(m.split('.')[0] == 'django' for m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"


@pytest.mark.parametrize("vector", [np.ones((2, 2), dtype=np.float32), np.array(["a", "b"])])
def test_a_record_from_a_columnar_reader_needs_one_numeric_vector(vector):
    data = {"capture_set": "s", "image": "a.jpg", "algorithm": "m", "scores": vector}
    with pytest.raises(InputError, match="p.parquet:3: scores=.*must be a list of numbers"):
        record_from_dict(data, where="p.parquet:3")
