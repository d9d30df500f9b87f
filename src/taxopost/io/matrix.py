"""Score and logit matrices: ``.npy``, ``.npz``, ``.parquet``, ``.csv``; one row per detection.

float32 and float64 are kept as stored. A Parquet file holds either one list column (each row
a vector) or one numeric column per class. A CSV holds numbers only, with an optional header.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from taxopost.errors import InputError
from taxopost.io._text import check_file

SUFFIXES = (".npy", ".npz", ".parquet", ".csv")
_NPZ_KEYS = ("predictions", "probabilities")


def read_matrix(path: Path | str, *, field: str = "scores") -> np.ndarray:
    """A 2-D float matrix from a file; InputError naming the file (and row/column) when unreadable."""
    path = Path(path)
    check_file(path)
    suffix = path.suffix.lower()
    readers = {".npy": _npy, ".npz": _npz, ".parquet": _parquet, ".csv": _csv}
    if suffix not in readers:
        raise InputError("file", str(path), f"unsupported extension {suffix!r}; use one of {', '.join(SUFFIXES)}")
    matrix = readers[suffix](path, field)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise InputError(
            field, matrix.shape, "expected a non-empty matrix of shape (n_rows, n_classes)", source=str(path)
        )
    if not (np.issubdtype(matrix.dtype, np.number) or matrix.dtype == np.bool_):
        raise InputError(field, str(matrix.dtype), "must hold numbers", source=str(path))
    if matrix.dtype not in (np.float32, np.float64):
        matrix = matrix.astype(np.float32 if matrix.dtype == np.float16 else np.float64)
    return matrix


def read_class_indices(path: Path | str, *, field: str = "ground_truth") -> np.ndarray:
    """A 1-D array of integer class indices from a ``.npy`` file (or a 1-D array in ``.npz``)."""
    path = Path(path)
    check_file(path)
    if path.suffix.lower() == ".npz":
        array = _npz(path, field, want_ndim=1)
    elif path.suffix.lower() == ".npy":
        array = _npy(path, field)
    else:
        raise InputError("file", str(path), "class indices must be a .npy (or .npz) file")
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise InputError(field, f"{array.dtype} {array.shape}", "expected a 1-D array of integers", source=str(path))
    return array.astype(np.int64)


def _npy(path: Path, field: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError("file", str(path), f"not a readable .npy array ({exc})") from None


def _npz(path: Path, field: str, want_ndim: int = 2) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            if len(keys) == 1:
                key = keys[0]
            else:
                preferred = (field, *_NPZ_KEYS) if want_ndim == 2 else (field, "ground_truth", "labels")
                key = next((k for k in preferred if k in keys), None)
                if key is None:
                    raise InputError(
                        "npz key", keys, f"several arrays and none named {list(preferred)}", source=str(path)
                    )
            return archive[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError("file", str(path), f"not a readable .npz archive ({exc})") from None


def _parquet(path: Path, field: str) -> np.ndarray:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError("file", str(path), f"not a readable Parquet file ({exc})") from None
    lists = [name for name in table.column_names if pa.types.is_list(table.schema.field(name).type)
             or pa.types.is_fixed_size_list(table.schema.field(name).type)
             or pa.types.is_large_list(table.schema.field(name).type)]  # fmt: skip
    if lists:
        name = field if field in lists else lists[0]
        if len(lists) > 1 and field not in lists:
            raise InputError("columns", lists, f"several list columns and none named {field!r}", source=str(path))
        column = table.column(name).combine_chunks()
        if column.null_count:
            row = int(pc.index(column.is_null(), True).as_py())
            raise InputError(f"{name}[{row}]", None, "a row has no vector", source=str(path))
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if lengths.size and (lengths != lengths[0]).any():
            row = int(np.flatnonzero(lengths != lengths[0])[0])
            raise InputError(
                f"{name}[{row}]",
                int(lengths[row]),
                f"has a different length than row 0 ({lengths[0]})",
                source=str(path),
            )
        values = column.flatten().to_numpy(zero_copy_only=False)
        return _numeric(values, path, name).reshape(len(column), int(lengths[0]) if lengths.size else 0)
    columns = []
    for name in table.column_names:
        column = table.column(name)
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            raise InputError("column", name, f"is {column.type}, not numeric", source=str(path))
        if column.null_count:
            row = int(pc.index(column.is_null(), True).as_py())
            raise InputError(f"{name}[{row}]", None, "empty value", source=str(path))
        columns.append(column.to_numpy())
    return np.column_stack(columns)


def _csv(path: Path, field: str) -> np.ndarray:
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace")
    has_header = any(not _is_number(cell) for cell in first.strip().split(",") if cell.strip())
    options = pacsv.ReadOptions(autogenerate_column_names=not has_header)
    try:
        table = pacsv.read_csv(path, read_options=options)
    except pa.ArrowInvalid as exc:
        raise InputError("file", str(path), f"malformed CSV ({str(exc).splitlines()[0]})") from None
    for index, name in enumerate(table.column_names):
        column = table.column(name)
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            bad = next((v for v in column.to_pylist() if v is not None and not _is_number(str(v))), None)
            raise InputError(f"column {index + 1} ({name})", bad, "not a number", source=str(path))
        if column.null_count:
            row = int(pc.index(column.is_null(), True).as_py()) + 1 + int(has_header)
            raise InputError(f"column {index + 1} ({name})", "", f"empty value on line {row}", source=str(path))
    return np.column_stack([table.column(name).to_numpy() for name in table.column_names])


def _numeric(values: np.ndarray, path: Path, name: str) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(name, str(values.dtype), "vectors must hold numbers", source=str(path))
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
