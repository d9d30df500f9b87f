"""Ground truth for an evaluation: one human-verified taxon per score row.

Two file forms: a CSV (or TSV) with a ``label`` column holding a taxon name or external id per
row, or a ``.npy``/``.npz`` vector of class indices into the category map (the form benchmark
datasets ship, e.g. CIFAR-100's ``ground_truth``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import InputError
from taxopost.io import open_table, read_class_indices

LABEL_COLUMN = "label"
_SHOWN = 5  # how many unresolved rows an error quotes


def read_ground_truth(path: Path | str, category_map: CategoryMap, *, n_rows: int | None = None) -> np.ndarray:
    """Read ground truth and resolve it to taxon ids.

    Parameters
    ----------
    path : path-like
        ``.csv``/``.tsv``/``.txt`` with a ``label`` column (taxon name or external id, resolved by
        :meth:`Taxonomy.find`), or ``.npy``/``.npz`` class indices into ``category_map``.
    category_map : CategoryMap
        Its taxonomy resolves labels; its classes give class indices their taxa.
    n_rows : int, optional
        The number of score rows; a different number of ground-truth rows is an error.

    Returns
    -------
    ndarray of shape (n_rows,), int64
        The true taxon of each row.

    Raises
    ------
    InputError
        For an unreadable file, no ``label`` column, an empty label, a row count other than ``n_rows``, class
        indices outside the category map, or rows whose label resolves to no taxon (the error
        gives their count and the first few, with their line numbers).
    """
    path = Path(path)
    if path.suffix.lower() in (".npy", ".npz"):
        taxa, shown = _from_indices(path, category_map)
    else:
        taxa, shown = _from_labels(path, category_map)
    if n_rows is not None and taxa.size != n_rows:
        raise InputError(
            "rows", taxa.size, f"the ground truth has {taxa.size} rows but the scores have {n_rows}", source=str(path)
        )
    missing = np.flatnonzero(taxa == NO_TAXON)
    if missing.size:
        raise InputError(
            "label",
            [shown(int(row)) for row in missing[:_SHOWN]],
            f"{missing.size} of {taxa.size} ground-truth rows resolve to no taxon "
            "(matched by external id, name, then synonym)",
            source=str(path),
        )
    return taxa


def _from_indices(path: Path, category_map: CategoryMap):
    indices = read_class_indices(path)
    n_classes = category_map.n_classes
    bad = np.flatnonzero((indices < 0) | (indices >= n_classes))
    if bad.size:
        shown = {int(row): int(indices[row]) for row in bad[:_SHOWN]}
        raise InputError(
            "ground_truth",
            shown,
            f"{bad.size} class indices outside 0..{n_classes - 1} (row: index shown)",
            source=str(path),
        )
    taxa = category_map.class_taxa[indices].astype(np.int64)
    return taxa, lambda row: f"row {row}: class {int(indices[row])} ({category_map.labels[indices[row]]!r})"


def _from_labels(path: Path, category_map: CategoryMap):
    taxonomy = category_map.taxonomy
    with open_table(path, positional=True) as table:
        if LABEL_COLUMN not in table.header:
            raise InputError(
                "column",
                LABEL_COLUMN,
                f"the ground truth needs a {LABEL_COLUMN!r} column (a taxon name or id per row); "
                f"its columns are {table.header}",
                source=str(path),
            )
        labels = []
        for row in table.rows:
            label = row[LABEL_COLUMN].strip()
            if not label:
                raise InputError(LABEL_COLUMN, label, "every row needs a taxon name or id", source=table.where())
            labels.append(label)
        lines = list(table.lines)
    resolved: dict[str, int] = {}
    for label in set(labels):  # one lookup per distinct label, not per row
        resolved[label] = taxonomy.find(label)
    taxa = np.fromiter((resolved[label] for label in labels), dtype=np.int64, count=len(labels))
    return taxa, lambda row: f"line {lines[row]}: {labels[row]!r}"
