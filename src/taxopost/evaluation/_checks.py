"""Checks at the door of the evaluation functions, and label-space facts computed once.

Public functions validate their arrays here, then call private functions that trust them.
"""

from __future__ import annotations

import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.ranks import RANKS
from taxopost.core.taxonomy import NO_TAXON, Taxonomy
from taxopost.errors import InputError

_SHOWN = 5  # how many offending rows a message quotes


def check_taxa(
    values: object, taxonomy: Taxonomy, *, field: str, n_rows: int | None = None, allow_missing: bool = False
) -> np.ndarray:
    """Return ``values`` as an int64 vector of taxon ids of ``taxonomy``.

    Raises :class:`InputError` naming ``field`` for a non-vector, a length other than ``n_rows``,
    or ids outside ``0 .. n_taxa - 1`` (``NO_TAXON`` included: every row needs a taxon, unless
    ``allow_missing``).
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(field, array.shape, "must be a vector of taxon ids, one per row")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise InputError(field, str(array.dtype), "must hold integer taxon ids")
    if n_rows is not None and array.size != n_rows:
        raise InputError(field, array.size, f"has {array.size} rows but the predictions have {n_rows}")
    array = array.astype(np.int64, copy=False)
    lowest = NO_TAXON if allow_missing else 0
    bad = np.flatnonzero((array < lowest) | (array >= taxonomy.n_taxa))
    if bad.size:
        shown = {int(row): int(array[row]) for row in bad[:_SHOWN]}
        raise InputError(
            field, shown, f"{bad.size} rows hold no taxon id of the taxonomy ({taxonomy.n_taxa} taxa; row: id shown)"
        )
    return array


def check_same_length(*arrays: np.ndarray, fields: tuple[str, ...]) -> None:
    """Raise naming the second field when two arrays differ in length."""
    first = arrays[0].shape[0]
    for array, field in zip(arrays[1:], fields[1:], strict=True):
        if array.shape[0] != first:
            raise InputError(field, array.shape[0], f"has {array.shape[0]} rows but {fields[0]} has {first}")


def label_space_ranks(category_map: CategoryMap) -> list[str]:
    """Ranks of every class's taxon and its ancestors, fine to coarse."""
    taxonomy = category_map.taxonomy
    taxa = category_map.class_taxa[category_map.resolved]
    present = []
    for code in taxonomy.present_rank_codes:  # fine to coarse
        if (taxonomy.ancestor_at(RANKS[code])[taxa] >= 0).any():
            present.append(RANKS[code])
    return present


def common_ancestors(category_map: CategoryMap) -> np.ndarray:
    """Taxa that are the ancestor-or-self of every class of the category map (a common root).

    Returns
    -------
    ndarray of shape (k,), int64
        Usually empty (several roots, as in a species/genus/family table) or one order or
        kingdom over everything; such taxa say nothing about a prediction.
    """
    taxonomy = category_map.taxonomy
    taxa = category_map.class_taxa[category_map.resolved]
    shared = []
    for code in taxonomy.present_rank_codes:
        ancestors = taxonomy.ancestor_at(RANKS[code])[taxa]
        if ancestors[0] != NO_TAXON and (ancestors == ancestors[0]).all():
            shared.append(int(ancestors[0]))
    return np.array(shared, dtype=np.int64)


def default_order(category_map: CategoryMap) -> list[str]:
    """Ranks worth rolling up to: the label space's ranks, fine to coarse, without a common root's rank."""
    taxonomy = category_map.taxonomy
    root_ranks = {taxonomy.rank_of(int(t)) for t in common_ancestors(category_map)}
    return [rank for rank in label_space_ranks(category_map) if rank not in root_ranks]
