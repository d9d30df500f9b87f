"""The numerical core: numpy and numba only, never Django.

One implementation of each rule, shared by the CLI on files, the jobs on the database and
the evaluator.
"""

from taxopost.core.category_map import CategoryMap
from taxopost.core.ranks import RANKS, UNKNOWN
from taxopost.core.rollup import DEFAULT_THRESHOLDS, RollupResult, rank_rollup
from taxopost.core.sparse import SparseRows, sparse_rows
from taxopost.core.taxonomy import NO_TAXON, Taxonomy, TaxonRecord
from taxopost.core.vectors import Winners, softmax, winners

__all__ = [
    "DEFAULT_THRESHOLDS",
    "NO_TAXON",
    "RANKS",
    "UNKNOWN",
    "CategoryMap",
    "RollupResult",
    "SparseRows",
    "TaxonRecord",
    "Taxonomy",
    "Winners",
    "rank_rollup",
    "softmax",
    "sparse_rows",
    "winners",
]
