"""What post-processing decided for each classified detection of a file, for the format writers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.masking import MaskingResult
from taxopost.core.rollup import RollupResult
from taxopost.core.sparse import SparseRows


@dataclass(frozen=True)
class Revision:
    """Per row of a :class:`~taxopost.io.predictions.detections.DetectionFile`'s scores.

    Attributes
    ----------
    task : str
        ``"rank_rollup"`` or ``"class_masking"``.
    changed : ndarray of shape (n_rows,), bool
    taxon : ndarray of shape (n_rows,), int32
        The resulting taxon (in ``category_map.taxonomy``).
    score : ndarray of shape (n_rows,)
        Its score: the accepted aggregate, or the masked winner's probability.
    scores : SparseRows or None
        Masking's new score for every pair (None for a roll-up, which decides one taxon).
    rank : list of str or None
        Per row, the rank a roll-up accepted (None where none was).
    category_map : CategoryMap
    """

    task: str
    changed: np.ndarray
    taxon: np.ndarray
    score: np.ndarray
    scores: SparseRows | None
    rank: list[str | None]
    category_map: CategoryMap

    @classmethod
    def of_rollup(cls, result: RollupResult, category_map: CategoryMap) -> Revision:
        ranks = [result.order[r] if r >= 0 else None for r in result.accepted_rank.tolist()]
        return cls("rank_rollup", result.changed, result.taxon, result.score, None, ranks, category_map)

    @classmethod
    def of_masking(cls, result: MaskingResult, category_map: CategoryMap) -> Revision:
        if not isinstance(result.scores, SparseRows):
            raise TypeError("masking results are written back from sparse rows with their scores")
        taxa = category_map.class_taxa[result.winner]
        return cls(
            "class_masking", result.changed, taxa, result.score, result.scores, [None] * len(result), category_map
        )
