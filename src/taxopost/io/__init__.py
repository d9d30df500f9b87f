"""Readers and writers of taxonomy, category-map, score, prediction, taxa-list and result files.

Every reader raises :class:`~taxopost.errors.InputError` naming the file, the field and the
value for anything malformed; none returns half-read data.
"""

from taxopost.io.category_map import read_category_map, read_labels
from taxopost.io.matrix import read_class_indices, read_matrix
from taxopost.io.predictions import PredictionRecord, read_predictions
from taxopost.io.taxa_list import TaxaListFile, read_taxa_list
from taxopost.io.taxonomy import read_taxonomy

__all__ = [
    "PredictionRecord",
    "TaxaListFile",
    "read_category_map",
    "read_class_indices",
    "read_labels",
    "read_matrix",
    "read_predictions",
    "read_taxa_list",
    "read_taxonomy",
]
