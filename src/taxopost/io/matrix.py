"""Score and logit matrices (one row per detection, one column per class) and class-index vectors.

Supported files, chosen by extension:

- ``.npy``: one 2-D array.
- ``.npz``: one array, or, among several, the first present of: the ``field`` name (``scores``
  or ``logits``), ``predictions``, and (for scores) ``probabilities``. An array named for the
  *other* field (``logits`` when scores are asked for, ``scores``/``probabilities`` for logits)
  is never taken implicitly.
- ``.parquet``: one list (or fixed-size list) column of numbers, each row a vector (the column
  named ``field`` when there are several); or else one numeric column per class.
- ``.csv``: numbers only, comma-separated. The first row is a header when one of its cells is not
  a number, or when it reads exactly ``0,1,...,C-1`` with ``C >= 3`` (pandas' default header).

float32 and float64 are kept as stored; float16 becomes float32 and integers float64. Files are
read with NumPy or PyArrow, never value by value in Python. Pickled arrays are refused.
"""

from __future__ import annotations

import re
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from taxopost.errors import InputError
from taxopost.io._text import check_file, not_utf8

SUFFIXES = (".npy", ".npz", ".parquet", ".csv")
_NPY_MAGIC = b"\x93NUMPY"
# What NumPy raises on a damaged header or body (its header is parsed as a Python literal).
_NPY_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, MemoryError)
_ZIP_MAGIC = b"PK\x03\x04"
_OTHER_FIELD = {"scores": ("logits",), "logits": ("scores", "probabilities")}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)
_NPZ_ERRORS = (*_NPY_ERRORS, zipfile.BadZipFile, zlib.error)


def read_matrix(path: Path | str, *, field: str = "scores") -> np.ndarray:
    """Read a 2-D score or logit matrix.

    Parameters
    ----------
    path : path-like
        A ``.npy``, ``.npz``, ``.parquet`` or ``.csv`` file (see the module docstring).
    field : str, default "scores"
        What the matrix holds (``"scores"`` or ``"logits"``): picks the array of an ``.npz`` or
        the list column of a Parquet file, and names the matrix in error messages.

    Returns
    -------
    ndarray of shape (n_rows, n_classes), float32 or float64

    Raises
    ------
    InputError
        Naming the file (and the row, column or key where possible) for an unsupported
        extension, an unreadable or truncated file, a non-numeric value, ragged vectors, or an
        array that is not a non-empty matrix.
    """
    path = Path(path)
    check_file(path)
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[Path, str], np.ndarray]] = {
        ".npy": _npy,
        ".npz": _npz_matrix,
        ".parquet": _parquet,
        ".csv": _csv,
    }
    if suffix not in readers:
        raise InputError(
            "file", str(path), f"unsupported extension {suffix or '(none)'!r}; supported: {', '.join(SUFFIXES)}"
        )
    matrix = readers[suffix](path, field)
    if matrix.dtype.kind not in "fiu":
        raise InputError(field, str(matrix.dtype), "must hold real numbers", source=str(path))
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise InputError(
            field, matrix.shape, "expected a non-empty matrix of shape (n_rows, n_classes)", source=str(path)
        )
    if matrix.dtype not in (np.float32, np.float64):
        matrix = matrix.astype(np.float32 if matrix.dtype == np.float16 else np.float64)
    return matrix


#: The ``.npz`` arrays a vector of class indices may be named by, besides its field's name.
TRUTH_NAMES = ("ground_truth", "labels", "targets")


def read_class_indices(
    path: Path | str,
    *,
    field: str = "ground_truth",
    n_classes: int | None = None,
    npz_names: tuple[str, ...] = TRUTH_NAMES,
) -> np.ndarray:
    """Read a 1-D vector of integer class indices (e.g. ground truth).

    Parameters
    ----------
    path : path-like
        A ``.npy`` file, or an ``.npz`` with one array or an array named ``field`` or one of
        ``npz_names``.
    field : str, default "ground_truth"
        Names the vector in error messages and picks the ``.npz`` array.
    n_classes : int, optional
        When given, every index must lie in ``0 .. n_classes - 1``.
    npz_names : tuple of str
        Other names an ``.npz`` array may have (default: ``ground_truth``, ``labels``,
        ``targets``); a vector that is not class indices passes ``()``.

    Returns
    -------
    ndarray of shape (n_rows,), int64
    """
    path = Path(path)
    check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = _npy(path, field)
    elif suffix == ".npz":
        array = _npz(path, (field, *npz_names), field)
    else:
        raise InputError("file", str(path), f"unsupported extension {suffix or '(none)'!r} for class indices; use .npy")
    if array.ndim == 1 and array.dtype.kind == "f":  # name the first value that is no integer
        bad = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if bad.size:
            row = int(bad[0])
            raise InputError(f"{field}[{row}]", float(array[row]), "not an integer", source=str(path))
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise InputError(
            field, f"{array.dtype} array of shape {array.shape}", "expected a 1-D array of integers", source=str(path)
        )
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        row = int(np.argmax(array > np.iinfo(np.int64).max))
        raise InputError(f"{field}[{row}]", int(array[row]), "too large (at most 2**63 - 1)", source=str(path))
    indices = array.astype(np.int64)
    if n_classes is not None and indices.size:
        bad = np.flatnonzero((indices < 0) | (indices >= n_classes))
        if bad.size:
            row = int(bad[0])
            raise InputError(
                f"{field}[{row}]", int(indices[row]), f"not a class index in 0..{n_classes - 1}", source=str(path)
            )
    return indices


# -- NumPy ------------------------------------------------------------------------------------


def _magic(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(6)


def _npy(path: Path, field: str) -> np.ndarray:
    magic = _magic(path)
    if magic.startswith(_ZIP_MAGIC):
        raise InputError("file", str(path), "is an .npz archive, not a .npy array: name it .npz")
    if magic != _NPY_MAGIC:
        raise InputError("file", str(path), "is not a .npy file (no NumPy header)")
    try:
        return np.load(path, allow_pickle=False)
    except _NPY_ERRORS as exc:
        raise InputError("file", str(path), f"not a readable .npy array ({exc})") from None


def _npz_matrix(path: Path, field: str) -> np.ndarray:
    preferred = (field, "predictions", *(("probabilities",) if field == "scores" else ()))
    return _npz(path, preferred, field, refused=_OTHER_FIELD.get(field, ()))


def _npz(path: Path, preferred: tuple[str, ...], field: str, refused: tuple[str, ...] = ()) -> np.ndarray:
    if _magic(path)[:4] != _ZIP_MAGIC:
        raise InputError("file", str(path), "is not an .npz archive (not a zip file)")
    try:
        archive = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as exc:
        raise InputError("file", str(path), f"not a readable .npz archive ({exc})") from None
    with archive:
        keys = list(archive.files)
        if len(keys) == 1 and keys[0] not in refused:
            key = keys[0]
        else:
            key = next((k for k in dict.fromkeys(preferred) if k in keys), None)
        if key is None:
            expected = list(dict.fromkeys(preferred))
            raise InputError("npz keys", keys, f"no array for {field}: expected one named {expected}", source=str(path))
        try:
            return archive[key]
        except _NPZ_ERRORS as exc:
            raise InputError("npz key", key, f"this array cannot be read ({exc})", source=str(path)) from None


# -- Parquet ----------------------------------------------------------------------------------


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_floating(kind) or pa.types.is_integer(kind)


def _parquet(path: Path, field: str) -> np.ndarray:
    try:
        table = pq.read_table(path)
        names = table.schema.names  # decoded here: a corrupt file's column name may be no UTF-8
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise InputError("file", str(path), f"not a readable Parquet file ({exc})") from None
    if table.num_columns == 0:
        raise InputError("file", str(path), "the Parquet file has no columns")
    lists = [name for name, kind in zip(names, table.schema.types, strict=True) if _is_list(kind)]
    if not lists:
        return _numeric_columns(table, path)
    if field in lists:
        name = field
    elif len(lists) == 1:
        name = lists[0]
    else:
        raise InputError("list columns", lists, f"several vector columns and none named {field!r}", source=str(path))
    return _list_column(table.column(name).combine_chunks(), name, path)


def _list_column(column: pa.Array, name: str, path: Path) -> np.ndarray:
    source = str(path)
    if column.null_count:
        row = int(pc.index(column.is_null(), True).as_py())
        raise InputError(f"{name}[{row}]", None, "a row has no vector", source=source)
    if len(column) == 0:
        return np.empty((0, 0))
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    width = int(lengths[0])
    ragged = np.flatnonzero(lengths != width)
    if ragged.size:
        row = int(ragged[0])
        raise InputError(
            f"{name}[{row}]",
            f"{int(lengths[row])} values",
            f"vectors differ in length: row 0 has {width}",
            source=source,
        )
    values = column.flatten()
    if not _is_number(values.type):
        raise InputError(name, str(column.type), "vectors must hold numbers", source=source)
    if values.null_count:
        at = int(pc.index(values.is_null(), True).as_py())
        raise InputError(f"{name}[{at // width}][{at % width}]", None, "a missing value", source=source)
    return values.to_numpy(zero_copy_only=False).reshape(len(column), width)


def _numeric_columns(table: pa.Table, path: Path) -> np.ndarray:
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not _is_number(column.type):
            raise InputError(
                "column",
                name,
                f"is {column.type}: expected one numeric column per class or one list column",
                source=str(path),
            )
        if column.null_count:
            row = int(pc.index(column.is_null(), True).as_py())
            raise InputError(f"{name}[{row}]", None, "a missing value", source=str(path))
    return np.column_stack([column.to_numpy() for column in table.columns])


# -- CSV --------------------------------------------------------------------------------------


def _ending_with_a_newline(path: Path) -> Path | pa.BufferReader:
    """The file, or its bytes with a final newline: pyarrow cannot read one headerless row without."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return path
        handle.seek(-1, 2)
        if handle.read(1) in (b"\n", b"\r"):
            return path
    return pa.BufferReader(path.read_bytes() + b"\n")


def _csv(path: Path, field: str) -> np.ndarray:
    with open(path, "rb") as handle:
        first = handle.readline()
    if not first.strip():
        raise InputError("file", str(path), "is empty" if not first else "starts with a blank line")
    if b"\x00" in first:
        raise InputError("file", str(path), "contains a NUL byte (a binary file?)", source=f"{path}:1")
    try:
        has_header = _is_header(first.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    try:
        table = pacsv.read_csv(
            _ending_with_a_newline(path),
            read_options=pacsv.ReadOptions(autogenerate_column_names=not has_header),
            convert_options=pacsv.ConvertOptions(null_values=[""], quoted_strings_can_be_null=True),
        )
    except (pa.ArrowException, OSError) as exc:
        raise InputError("file", str(path), f"malformed CSV ({str(exc).splitlines()[0]})") from None
    if table.num_rows == 0:
        return np.empty((0, table.num_columns))
    offset = 1 + int(has_header)  # line of data row 0 (blank lines aside)
    for index, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        label = f"column {index + 1} ({name!r})" if has_header else f"column {index + 1}"
        if not _is_number(column.type):
            cells = column.to_pylist()  # error path only
            row = next((r for r, v in enumerate(cells) if v is not None and not _is_float(v)), None)
            if row is None:
                raise InputError(label, None, "has no values", source=str(path))
            raise InputError(label, cells[row], "not a number", source=f"{path}:{row + offset}")
        if column.null_count:
            row = int(pc.index(column.is_null(), True).as_py())
            raise InputError(label, "", "an empty cell", source=f"{path}:{row + offset}")
    return np.column_stack([column.to_numpy() for column in table.columns])


def _is_header(line: str) -> bool:
    cells = [cell.strip().strip('"') for cell in line.strip().split(",")]
    if not all(_is_float(cell) for cell in cells if cell):
        return True
    return len(cells) >= 3 and cells == [str(i) for i in range(len(cells))]


def _is_float(value: object) -> bool:
    """Whether a CSV cell is a number as PyArrow parses one (unlike ``float``, no ``1_000``)."""
    if isinstance(value, bytes):  # PyArrow reads a column with invalid UTF-8 as binary
        value = value.decode("utf-8", errors="replace")
    return isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None
