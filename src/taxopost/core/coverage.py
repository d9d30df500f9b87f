"""How much a taxa list keeps: of a category map's classes, and of a scope's probability mass.

A list that keeps few classes, or classes the model rarely gives probability to, forces nearly
every prediction into a handful of taxa: masking to the BCI checklist keeps 19 of the AMI
model's 2,497 classes. Nothing is wrong with such a list, but it deserves a second look before
a run, so every entry point (the ``mask`` file command, a job's preview and creation, the
admin) warns with the numbers of :func:`mask_coverage`, fed by :func:`class_mass`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxopost.core._validation import as_rows, check_logits, check_probabilities, dense_chunks
from taxopost.core.category_map import CategoryMap
from taxopost.core.chunks import chunk_rows_for
from taxopost.core.sparse import SparseRows
from taxopost.core.vectors import softmax
from taxopost.errors import InputError

#: A list keeping fewer than this share of the category map's classes is worth a warning.
MIN_CLASS_SHARE = 0.25
#: A list keeping less than this share of the predictions' probability mass is worth a warning.
MIN_MASS_SHARE = 0.50


@dataclass(frozen=True)
class MaskCoverage:
    """What a taxa list keeps of one category map and of the rows it is applied to.

    Attributes
    ----------
    kept_classes, n_classes : int
        Classes the list admits, of the category map's classes.
    kept_mass : float or None
        Share of the rows' probability mass on kept classes, in [0, 1]; None when no row (or
        no mass) was measured.
    rows : int
        Rows the mass was measured on.
    scope_rows : int or None
        Rows in the scope when ``rows`` is a sample of them.
    """

    kept_classes: int
    n_classes: int
    kept_mass: float | None
    rows: int
    scope_rows: int | None = None

    @property
    def class_share(self) -> float:
        return self.kept_classes / self.n_classes if self.n_classes else 0.0

    @property
    def low_classes(self) -> bool:
        return self.class_share < MIN_CLASS_SHARE

    @property
    def low_mass(self) -> bool:
        return self.kept_mass is not None and self.kept_mass < MIN_MASS_SHARE

    @property
    def low(self) -> bool:
        """Whether the list keeps fewer than 25 % of the classes or less than 50 % of the mass."""
        return self.low_classes or self.low_mass

    def summary(self) -> str:
        """``19 of 2,497 classes (0.8%), 3.1% of the probability mass of 1,000 predictions``."""
        text = f"{self.kept_classes:,} of {self.n_classes:,} classes ({self.class_share:.1%})"
        if self.kept_mass is not None:
            sampled = self.scope_rows is not None and self.scope_rows > self.rows
            sample = f"a sample of {self.rows:,} of {self.scope_rows:,}" if sampled else f"{self.rows:,}"
            text += f", {self.kept_mass:.1%} of the probability mass of {sample} predictions"
        return text

    def warning(self) -> str | None:
        """One line with the numbers when the coverage is low, else None."""
        if not self.low:
            return None
        below = []
        if self.low_classes:
            below.append(f"{MIN_CLASS_SHARE:.0%} of the classes")
        if self.low_mass:
            below.append(f"{MIN_MASS_SHARE:.0%} of the probability mass")
        return (
            f"the taxa list keeps {self.summary()}: below {' and '.join(below)}; masking will move "
            "most predictions onto the few taxa it keeps"
        )

    def as_dict(self) -> dict:
        """The numbers, for the API and the job's record (JSON types)."""
        return {
            "kept_classes": self.kept_classes,
            "n_classes": self.n_classes,
            "class_share": round(self.class_share, 6),
            "kept_mass": None if self.kept_mass is None else round(self.kept_mass, 6),
            "rows": self.rows,
            "scope_rows": self.scope_rows,
            "min_class_share": MIN_CLASS_SHARE,
            "min_mass_share": MIN_MASS_SHARE,
        }


def class_mass(
    values: np.ndarray | SparseRows, category_map: CategoryMap, *, logits: bool = False, chunk_rows: int | None = None
) -> np.ndarray:
    """The probability each class holds, summed over rows.

    Parameters
    ----------
    values : array-like of shape (n_rows, n_classes), or SparseRows
        Probabilities (rows summing to at most 1), or logits with ``logits=True`` (softmaxed
        first). Checked as the tasks check them; memory is bounded by one chunk.
    category_map : CategoryMap

    Returns
    -------
    ndarray of shape (n_classes,), float64
        Sums add up across batches: a scope's mass is the sum of its batches' masses.
    """
    field = "logits" if logits else "scores"
    matrix = as_rows(values, category_map.n_classes, field=field, logits=logits)
    total = np.zeros(category_map.n_classes, dtype=np.float64)
    for lo, _hi, chunk in dense_chunks(matrix, chunk_rows or chunk_rows_for(matrix)):
        if logits:
            check_logits(chunk, field=field, row_offset=lo)
            chunk = softmax(chunk.astype(np.float64))
        else:
            check_probabilities(chunk, field=field, row_offset=lo)
        total += chunk.sum(axis=0, dtype=np.float64)
    return total


def mask_coverage(
    keep: np.ndarray,
    category_map: CategoryMap,
    mass: np.ndarray | None = None,
    *,
    rows: int = 0,
    scope_rows: int | None = None,
) -> MaskCoverage:
    """What a list that keeps ``keep`` keeps of ``category_map`` and of the rows summed in ``mass``.

    Parameters
    ----------
    keep : ndarray of shape (n_classes,), bool
        The classes kept, e.g. ``category_map.admitted_by(taxa)``; classes without a taxon are
        never kept.
    category_map : CategoryMap
    mass : ndarray of shape (n_classes,), optional
        :func:`class_mass` of the rows (or of a sample of them); None: classes only.
    rows : int
        How many rows ``mass`` sums.
    scope_rows : int, optional
        How many rows the scope holds, when ``mass`` sums a sample of them.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (category_map.n_classes,):
        raise InputError("keep", keep.shape, f"must be a boolean vector of {category_map.n_classes} classes")
    keep = keep & category_map.resolved
    kept_mass = None
    if mass is not None:
        mass = np.asarray(mass, dtype=np.float64)
        if mass.shape != keep.shape:
            raise InputError("mass", mass.shape, f"must hold one sum per class ({category_map.n_classes})")
        total = float(mass.sum())
        kept_mass = float(mass[keep].sum() / total) if rows and total > 0 else None
    return MaskCoverage(
        int(keep.sum()), category_map.n_classes, kept_mass, rows if kept_mass is not None else 0, scope_rows
    )
