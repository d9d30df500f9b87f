"""The numerical core: numpy and numba only, never Django.

One implementation of each rule, shared by the CLI on files, the jobs on the database and
the evaluator.

The names are imported on first use, so that a light module (``taxopost.core.ranks`` for a
task's config, a command's ``--help``) does not load numba.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The modules behind the public names, imported on first use of one of their names.
_MODULES = {
    "taxopost.core.category_map": ("CategoryMap",),
    "taxopost.core.ranks": ("RANKS", "UNKNOWN"),
    "taxopost.core.rollup": ("DEFAULT_THRESHOLDS", "RollupResult", "rank_rollup"),
    "taxopost.core.sparse": ("SparseRows", "sparse_rows"),
    "taxopost.core.taxonomy": ("NO_TAXON", "Taxonomy", "TaxonRecord"),
    "taxopost.core.vectors": ("Winners", "softmax", "winners"),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
