"""A classifier's label space: class index -> label -> taxon."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np

from taxopost.core.taxonomy import NO_TAXON, Taxonomy
from taxopost.errors import InputError

_SHOWN = 10  # how many offending labels an error message quotes


class CategoryMap:
    """The label space of one classifier, resolved against a taxonomy.

    Parameters
    ----------
    labels : sequence of str, length n_classes
        Labels in class-index order. Each resolves to a taxon by external id, then name, then
        synonym (:meth:`Taxonomy.find`); a class may be a taxon of any rank.
    taxonomy : Taxonomy
    on_unresolved : {"error", "exclude"}, default "error"
        ``"error"`` raises listing the labels that resolve to no taxon; ``"exclude"`` keeps
        those classes with no taxon: they are never a prediction and add to no aggregate.

    Attributes
    ----------
    class_taxa : ndarray of shape (n_classes,), int32
        The taxon of each class, ``NO_TAXON`` for an excluded class.
    """

    def __init__(
        self,
        labels: Sequence[object],
        taxonomy: Taxonomy,
        *,
        on_unresolved: Literal["error", "exclude"] = "error",
    ) -> None:
        if on_unresolved not in ("error", "exclude"):
            raise InputError("on_unresolved", on_unresolved, 'must be "error" or "exclude"')
        self.labels: tuple[str, ...] = tuple(str(label).strip() for label in labels)
        if not self.labels:
            raise InputError("labels", [], "a category map needs at least one class")
        duplicates = [label for label, count in Counter(self.labels).items() if count > 1]
        if duplicates:
            raise InputError("labels", duplicates[:_SHOWN], f"{len(duplicates)} labels appear more than once")
        self.taxonomy = taxonomy
        self.class_taxa = np.fromiter((taxonomy.find(label) for label in self.labels), dtype=np.int32)
        self.class_taxa.flags.writeable = False
        missing = [label for label, taxon in zip(self.labels, self.class_taxa, strict=False) if taxon == NO_TAXON]
        if missing and (on_unresolved == "error" or len(missing) == len(self.labels)):
            raise InputError(
                "labels",
                missing[:_SHOWN],
                f"{len(missing)} of {len(self.labels)} labels resolve to no taxon "
                "(matched by external id, name, then synonym)",
            )
        self.unresolved: tuple[str, ...] = tuple(missing)
        self.resolved = self.class_taxa != NO_TAXON
        self.resolved.flags.writeable = False
        self._plans: dict = {}

    @classmethod
    def from_taxa(cls, labels: Sequence[object], class_taxa: Sequence[int], taxonomy: Taxonomy) -> CategoryMap:
        """A category map whose labels were resolved before (e.g. stored in a database).

        ``class_taxa`` gives each class's taxon id, ``NO_TAXON`` for an excluded class.
        """
        taxa = np.asarray(class_taxa, dtype=np.int64)
        if taxa.shape != (len(labels),):
            raise InputError("class_taxa", taxa.shape, f"one taxon per label expected ({len(labels)} labels)")
        if ((taxa < NO_TAXON) | (taxa >= taxonomy.n_taxa)).any():
            raise InputError("class_taxa", taxa.tolist()[:_SHOWN], "taxon ids outside the taxonomy")
        resolved = cls.__new__(cls)
        resolved.labels = tuple(str(label).strip() for label in labels)
        resolved.taxonomy = taxonomy
        resolved.class_taxa = taxa.astype(np.int32)
        resolved.class_taxa.flags.writeable = False
        resolved.unresolved = tuple(label for label, t in zip(resolved.labels, taxa, strict=True) if t == NO_TAXON)
        resolved.resolved = resolved.class_taxa != NO_TAXON
        resolved.resolved.flags.writeable = False
        resolved._plans = {}
        if not resolved.resolved.any():
            raise InputError("class_taxa", [], "no class has a taxon")
        return resolved

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def taxon_names(self) -> list[str | None]:
        """The taxon name of each class (None for an excluded class)."""
        names = self.taxonomy.names
        return [names[t] if t != NO_TAXON else None for t in self.class_taxa]

    def admitted_by(self, taxa: Sequence[int], *, field: str = "taxa_list") -> np.ndarray:
        """Classes admitted by a taxa list: a listed taxon admits itself and its descendants.

        Returns
        -------
        ndarray of shape (n_classes,), bool
            Raises :class:`InputError` when the list is empty or admits no class.
        """
        if len(taxa) == 0:
            raise InputError(field, [], "the taxa list is empty")
        admitted = self.taxonomy.descendants_mask(taxa)
        keep = self.resolved & admitted[np.maximum(self.class_taxa, 0)]
        if not keep.any():
            shown = [self.taxonomy.names[t] if t != NO_TAXON else None for t in list(taxa)[:_SHOWN]]
            raise InputError(
                field, shown, f"the taxa list keeps none of the {self.n_classes} classes of the category map"
            )
        return keep
