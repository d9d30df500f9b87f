"""Readers and writers of taxonomy, category-map, score, group, prediction, taxa-list and result files.

Every reader raises :class:`~taxopost.errors.InputError` naming the file, the field and the
value for anything malformed; none returns half-read data. :func:`read_text` and
:func:`open_table` are the readers every format here is built on, for other packages' files
(pipelines, ground truth) to get the same checks and messages; :func:`check_file`, which every
reader calls before opening, refuses devices and named pipes (``/dev/zero`` would never end).

The names are imported on first use, so that reading a taxa list does not load pyarrow.
"""

from __future__ import annotations

from taxopost.lazy import lazy_exports

#: The modules behind the public names, imported on first use of one of their names.
__getattr__, __dir__, _NAMES = lazy_exports(
    __name__,
    {
        "taxopost.io._text": ("Table", "check_file", "open_table", "read_text"),
        "taxopost.io.category_map": ("read_category_map", "read_labels"),
        "taxopost.io.groups": ("read_groups",),
        "taxopost.io.matrix": ("read_class_indices", "read_matrix"),
        "taxopost.io.predictions": ("PredictionRecord", "read_predictions"),
        "taxopost.io.taxa_list": ("TaxaListFile", "read_taxa_list"),
        "taxopost.io.taxonomy": ("read_taxonomy",),
    },
)
__all__ = _NAMES
