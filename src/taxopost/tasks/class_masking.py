"""Class masking: keep only the classes a taxa list admits and recompute the winner.

The rule is :func:`taxopost.core.masking.class_masking`; the platform adapter is
:mod:`taxopost.postprocessing.tasks.class_masking`. In an evaluation pipeline it transforms the
score matrix for the steps after it; its ``taxa_list`` is then a file path, relative to the
pipeline file, unless the caller resolves lists itself (the platform, by name).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import Field

from taxopost.core.category_map import CategoryMap
from taxopost.core.masking import class_masking
from taxopost.core.sparse import SparseRows
from taxopost.core.vectors import softmax
from taxopost.errors import InputError
from taxopost.io import read_taxa_list
from taxopost.tasks.base import CliOption, OfflineStep, TaskConfig, TaskSpec, Transformed


class ClassMaskingConfig(TaskConfig):
    """Class masking: keep only the classes admitted by a taxa list."""

    taxa_list: str = Field(
        description="The taxa list: its name on the platform, a file path in evaluation pipelines.",
        min_length=1,
    )
    source_algorithm: str | None = Field(
        default=None,
        description="Key of the algorithm whose classifications are masked (default: every classifier's; "
        "post-processing outputs only when named).",
    )
    reweight: bool = Field(default=True, description="Renormalise the kept probabilities.")
    winner_changes_only: bool = Field(
        default=False,
        description="Write a masked classification only where the winning taxon changes (as Antenna's #1377); "
        "elsewhere the model's unmasked scores stay the current answer.",
    )


class ClassMaskingSpec(TaskSpec):
    key = "class_masking"
    name = "Class masking"
    version = "1"
    description = "Restrict predictions to a taxa list (a listed taxon admits its descendants); recompute the winner."
    config_model = ClassMaskingConfig
    offline = "transform"
    form_widgets = {"taxa_list": "taxa_list", "source_algorithm": "algorithm_in_scope"}
    cli_options = {
        "taxa_list": CliOption(help="taxa list name."),
        "source_algorithm": CliOption(help="algorithm key."),
        "reweight": CliOption(help="renormalise the kept probabilities."),
        "winner_changes_only": CliOption(help="write only rows whose winning taxon changes."),
    }

    @classmethod
    def prepare_offline(
        cls,
        config: ClassMaskingConfig,
        category_map: CategoryMap,
        *,
        where: str,
        base_dir: Path,
        taxa_lists: Callable[[str], list[int]] | None = None,
    ) -> OfflineStep:
        """The classes the list keeps (a step is identified by the list's taxa, not its path)."""
        warnings: tuple[str, ...] = ()
        if taxa_lists is not None:
            try:
                taxa = list(taxa_lists(config.taxa_list))
            except InputError as exc:
                raise InputError(f"{where}.taxa_list", config.taxa_list, exc.reason) from None
        else:
            path = Path(config.taxa_list)
            path = path if path.is_absolute() else base_dir / path
            try:
                listed = read_taxa_list(path, category_map.taxonomy)
            except InputError as exc:
                raise InputError(f"{where}.taxa_list", config.taxa_list, exc.message) from None
            taxa = list(listed.taxa)
            if listed.unresolved:
                warnings = (
                    f"{where}.taxa_list: {len(listed.unresolved)} of {len(listed.entries)} entries of {path} "
                    f"match no taxon and are ignored: {listed.unresolved[:5]}",
                )
        keep = category_map.admitted_by(taxa, field=f"{where}.taxa_list")
        key = (cls.key, tuple(sorted(taxa)), config.reweight, config.winner_changes_only)
        return OfflineStep(key=key, state=keep, warnings=warnings)

    @classmethod
    def transform(
        cls,
        values: np.ndarray,
        category_map: CategoryMap,
        config: ClassMaskingConfig,
        step: OfflineStep,
        *,
        logits: bool,
        normalized: bool,
        progress: Callable[[int], None] | None = None,
    ) -> Transformed:
        masked = class_masking(
            values,
            category_map,
            step.state,
            logits=logits,
            reweight=config.reweight,
            winner_only=config.winner_changes_only,
            progress=progress,
        )
        if masked.changed.all():
            return Transformed(masked.scores, masked.winner, normalized=config.reweight)
        # Rows masking leaves unchanged pass their input on, as on the platform, where only a changed
        # row gets a masked classification (with winner_changes_only, a row whose winner stays; by
        # default, a partial row nothing was removed from, which would otherwise be renormalised here).
        scores = _input_where_unchanged(values, masked, logits)
        winner = np.where(masked.changed, masked.winner, masked.source_class)
        return Transformed(scores, winner, normalized=config.reweight and (normalized or logits))


def _input_where_unchanged(values, masked, logits: bool):
    """The masked scores, with each unchanged row's input probabilities instead (sparse kept sparse)."""
    sparse = isinstance(values, SparseRows)
    if sparse and isinstance(masked.scores, SparseRows) and np.array_equal(values.indptr, masked.scores.indptr):
        pair_rows = np.repeat(np.arange(masked.changed.size), np.diff(values.indptr))
        kept = np.where(masked.changed[pair_rows], masked.scores.values, values.values)
        return masked.scores.with_values(kept.astype(masked.scores.values.dtype))
    original = values.dense() if sparse else np.asarray(values, dtype=np.float32)
    if logits:
        original = softmax(original.astype(np.float32))
    scores = masked.scores.dense() if isinstance(masked.scores, SparseRows) else masked.scores
    return np.where(masked.changed[:, None], scores, original)
