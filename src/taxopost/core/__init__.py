"""The numerical core: numpy and numba only, never Django.

One implementation of each rule, shared by the CLI on files, the jobs on the database and
the evaluator.

The names are imported on first use, so that a light module (``taxopost.core.ranks`` for a
task's config, a command's ``--help``) does not load numba.
"""

from __future__ import annotations

from taxopost.lazy import lazy_exports

#: The modules behind the public names, imported on first use of one of their names.
__getattr__, __dir__, _NAMES = lazy_exports(
    __name__,
    {
        "taxopost.core.category_map": ("CategoryMap",),
        "taxopost.core.ranks": ("RANKS", "UNKNOWN"),
        "taxopost.core.rollup": ("DEFAULT_THRESHOLDS", "RollupResult", "rank_rollup"),
        "taxopost.core.sparse": ("SparseRows", "sparse_rows"),
        "taxopost.core.taxonomy": ("NO_TAXON", "Taxonomy", "TaxonRecord"),
        "taxopost.core.vectors": ("Winners", "softmax", "winners"),
    },
)
__all__ = _NAMES
