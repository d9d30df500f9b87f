"""Occurrence ids of score rows: which rows are detections of one individual.

Two file forms: a ``.npy`` vector of integer ids (one per score row; or an ``.npz`` with one
array, or one named ``groups``), or a CSV/TSV
with a column ``occurrence`` (or ``group``, or a single column) holding an id per row. CSV ids
may be any text (an occurrence key such as ``occ-00017``); distinct ids are numbered in the
order they first appear.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from taxopost.errors import InputError
from taxopost.io._text import open_table
from taxopost.io.matrix import read_class_indices

#: Columns a groups CSV may name its ids by, in order of preference.
GROUP_COLUMNS = ("occurrence", "group")


def read_groups(path: Path | str, *, n_rows: int | None = None) -> np.ndarray:
    """Read one occurrence id per score row.

    Parameters
    ----------
    path : path-like
        ``.npy``/``.npz`` integer ids (``>= 0``), or ``.csv``/``.tsv``/``.txt`` with an
        ``occurrence`` or ``group`` column (or only one column).
    n_rows : int, optional
        The number of score rows; another number of ids is an error.

    Returns
    -------
    ndarray of shape (n_rows,), int64
        Ids ``>= 0``; rows with equal ids belong to one occurrence.

    Raises
    ------
    InputError
        Naming the file: unreadable, no id column, a negative id, or a row count other than ``n_rows``.
    """
    path = Path(path)
    if path.suffix.lower() in (".npy", ".npz"):
        groups = read_class_indices(path, field="groups", npz_names=())  # never an archive's ground truth
        if groups.size and groups.min() < 0:
            row = int(np.flatnonzero(groups < 0)[0])
            raise InputError(f"groups[{row}]", int(groups[row]), "occurrence ids must be >= 0", source=str(path))
        header = None
    else:
        groups, header = _from_table(path)
    if n_rows is not None and groups.size != n_rows:
        hint = ""
        if header is not None and groups.size == n_rows - 1:
            hint = f" (its first line, {header!r}, is read as the column's name: add a header such as 'occurrence')"
        raise InputError(
            "rows", groups.size, f"the groups file has {groups.size} ids but the scores have {n_rows} rows{hint}",
            source=str(path),
        )  # fmt: skip
    return groups


def _from_table(path: Path) -> tuple[np.ndarray, str | None]:
    """The ids, and the header when it is a lone column of another name (perhaps a first id)."""
    with open_table(path, positional=True) as table:
        named = {name.strip().lower(): name for name in table.header}
        column = next((named[name] for name in GROUP_COLUMNS if name in named), None)  # any case
        guessed = None
        if column is None and len(table.header) == 1:
            column = guessed = table.header[0]
        if column is None:
            raise InputError(
                "column", "occurrence", f"the groups file needs an 'occurrence' or 'group' column; its columns are "
                f"{table.header}", source=str(path),
            )  # fmt: skip
        ids = []
        for row in table.rows:
            value = row[column].strip()
            if not value:
                raise InputError(column, value, "every row needs an occurrence id", source=table.where())
            ids.append(value)
    _, first, numbers = np.unique(np.array(ids, dtype=object), return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)  # numbered in order of first appearance
    return rank[numbers].astype(np.int64), guessed
