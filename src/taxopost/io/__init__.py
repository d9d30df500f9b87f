"""Readers and writers of taxonomy, category-map, score, group, prediction, taxa-list and result files.

Every reader raises :class:`~taxopost.errors.InputError` naming the file, the field and the
value for anything malformed; none returns half-read data. :func:`read_text` and
:func:`open_table` are the readers every format here is built on, for other packages' files
(pipelines, ground truth) to get the same checks and messages; :func:`check_file`, which every
reader calls before opening, refuses devices and named pipes (``/dev/zero`` would never end).
"""

from taxopost.io._text import Table, check_file, open_table, read_text
from taxopost.io.category_map import read_category_map, read_labels
from taxopost.io.groups import read_groups
from taxopost.io.matrix import read_class_indices, read_matrix
from taxopost.io.predictions import PredictionRecord, read_predictions
from taxopost.io.taxa_list import TaxaListFile, read_taxa_list
from taxopost.io.taxonomy import read_taxonomy

__all__ = [
    "PredictionRecord",
    "Table",
    "TaxaListFile",
    "check_file",
    "open_table",
    "read_category_map",
    "read_class_indices",
    "read_groups",
    "read_labels",
    "read_matrix",
    "read_predictions",
    "read_taxa_list",
    "read_taxonomy",
    "read_text",
]
