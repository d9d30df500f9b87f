"""Predictions as Parquet: the JSON Lines fields as flat columns (docs/formats.md)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from taxopost.errors import InputError
from taxopost.io.predictions.records import PredictionRecord, record_from_dict

#: Rows per Parquet batch: 1,000 vectors of 2,500 float32 classes are 10 MB in memory.
BATCH_ROWS = 1000


def read_parquet(path: Path) -> Iterator[PredictionRecord]:
    """Yield the records of a Parquet file in order, each located by its row (from 1)."""
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError("file", str(path), f"not a readable Parquet file ({exc})") from None
    line = 0
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            # Vectors go to numpy in one step per batch; the few scalar columns go through Python.
            vectors = {
                name: _vector_column(batch.column(name)) for name in ("scores", "logits") if name in batch.schema.names
            }
            scalars = batch.drop_columns(list(vectors)).to_pylist()
            for i, row in enumerate(scalars):
                line += 1
                image = {
                    "path": row.get("image_path"),
                    "width": row.get("image_width"),
                    "height": row.get("image_height"),
                    "timestamp": row.get("image_timestamp"),
                }
                data = {k: v for k, v in row.items() if not k.startswith("image_")} | {"image": image}
                for name, (matrix, valid) in vectors.items():
                    data[name] = matrix[i] if valid[i] else None
                yield record_from_dict(data, where=f"{path}:{line}")
    except InputError:
        raise
    except Exception as exc:
        raise InputError("file", str(path), f"could not be read past row {line} ({exc})") from None


def _vector_column(column: pa.Array) -> tuple[list[np.ndarray], np.ndarray]:
    """A list column as per-row float32 arrays (or None), and which rows have one.

    Rows are cut from the child values by the column's own offsets: ``flatten()`` leaves out
    the values of null rows (a fixed-size list's null row still holds ``list_size`` of them), so
    cutting its result would shift every later vector onto the wrong row.
    """
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    flat = np.asarray(column.values.to_numpy(zero_copy_only=False), dtype=np.float32)
    if isinstance(column, pa.FixedSizeListArray):
        width, start = column.type.list_size, column.offset * column.type.list_size
        return [flat[start + i * width : start + (i + 1) * width] for i in range(len(column))], valid
    offsets = np.asarray(column.offsets)  # into the child values, the column's slice offset included
    return [flat[a:b] for a, b in pairwise(offsets)], valid
