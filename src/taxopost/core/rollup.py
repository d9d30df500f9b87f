"""Rank roll-up: promote an unconfident prediction to the first coarser rank that clears its threshold.

Semantics (docs/core.md): the aggregate of taxon ``t`` at rank ``R`` is the sum of the scores of
every class whose taxon is ``t`` or a descendant of ``t``; a class coarser than ``R``, or whose
lineage skips ``R``, adds to no rank-``R`` taxon. Walking the order from the finest rank, a
candidate is accepted when its aggregate is ``>=`` the rank's threshold; the first accepted rank
wins. ``mode="lineage"`` takes the source prediction's ancestor at each rank as the candidate
(a roll-up only ever generalises); ``mode="distribution"`` takes the argmax of all the rank's
aggregates. Ties go to the taxon whose first class comes first in the category map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from taxopost.core._validation import as_rows, check_logits, check_probabilities, dense_chunks, for_each_block
from taxopost.core.category_map import CategoryMap
from taxopost.core.chunks import chunk_rows_for
from taxopost.core.ranks import RANK_CODE, RANKS, check_rollup_order, check_thresholds, sort_fine_to_coarse
from taxopost.core.sparse import SparseRows
from taxopost.core.taxonomy import NO_TAXON, Taxonomy
from taxopost.core.vectors import softmax
from taxopost.errors import InputError

Mode = Literal["lineage", "distribution"]
MODES: tuple[str, ...] = ("lineage", "distribution")
DEFAULT_THRESHOLDS: dict[str, float] = {"species": 0.8, "genus": 0.6, "family": 0.4}


@dataclass(frozen=True)
class RollupResult:
    """Per-row outcome of a roll-up; every array has ``n_rows`` rows.

    Attributes
    ----------
    order : tuple of str
        The ranks tried, fine to coarse; ``evidence_*`` columns follow it.
    source_class : ndarray (n_rows,), intp
        The source prediction: the argmax class (over classes that have a taxon).
    source_taxon, taxon : ndarray (n_rows,), int32
        Taxon ids of the source and of the final prediction (the source when nothing changed).
    source_score, score : ndarray (n_rows,), input dtype
        The source's score; the final score (the accepted aggregate, or the source's score).
    accepted_rank : ndarray (n_rows,), int8
        Index into ``order`` of the accepted rank, -1 when no rank cleared its threshold.
    changed : ndarray (n_rows,), bool
        A rank was accepted and its taxon differs from the source's.
    evidence_taxon : ndarray (n_rows, n_ranks), int32
        The candidate examined at each rank (``NO_TAXON`` where none was or it was not reached).
    evidence_score : ndarray (n_rows, n_ranks), input dtype
        The candidate's aggregate (NaN where not examined).
    """

    order: tuple[str, ...]
    thresholds: dict[str, float]
    mode: str
    source_class: np.ndarray
    source_taxon: np.ndarray
    source_score: np.ndarray
    taxon: np.ndarray
    score: np.ndarray
    accepted_rank: np.ndarray
    changed: np.ndarray
    evidence_taxon: np.ndarray
    evidence_score: np.ndarray

    def __len__(self) -> int:
        return self.taxon.size


#: What happened to a row, by :func:`rollup_status` code.
STATUSES: tuple[str, ...] = ("confident", "rolled up", "no rank cleared")


def rollup_status(result: RollupResult) -> np.ndarray:
    """Each row's status code into :data:`STATUSES`: a rank accepted the source's own taxon
    (confident), accepted another (rolled up), or none cleared its threshold.

    Returns
    -------
    ndarray of shape (n_rows,), int8
    """
    return np.where(result.accepted_rank < 0, 2, np.where(result.changed, 1, 0)).astype(np.int8)


def coarser_than_order(category_map: CategoryMap, order: Sequence[str]) -> np.ndarray:
    """Classes whose taxon is coarser than every rank of ``order``: no rank's aggregate includes them.

    Returns
    -------
    ndarray of shape (n_classes,), bool
    """
    codes = np.array([RANK_CODE[rank] for rank in order])
    taxa = np.maximum(category_map.class_taxa, 0)
    return category_map.resolved & (category_map.taxonomy.rank_codes[taxa] < codes.min())


def check_ranks_present(taxonomy: Taxonomy, ranks: Sequence[str], *, field: str = "thresholds") -> None:
    """Refuse ranks the taxonomy has no taxon at: thresholds on them could never be reached."""
    present = taxonomy.present_rank_codes
    missing = [rank for rank in ranks if RANK_CODE[rank] not in present]
    if missing:
        has = [RANKS[code] for code in present[::-1]]
        raise InputError(field, missing, f"the taxonomy has no taxon at these ranks; its ranks: {', '.join(has)}")


def resolve_rollup_settings(
    thresholds: Mapping[str, float] | None, order: Sequence[str] | None, mode: str
) -> tuple[dict[str, float], list[str], str]:
    """Validate thresholds, order and mode; fill the defaults. Shared by every entrance."""
    checked = check_thresholds(dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds))
    if order is None:
        ranks = sort_fine_to_coarse(checked)
    else:
        ranks = check_rollup_order(order)
        missing = [rank for rank in ranks if rank not in checked]
        if missing:
            raise InputError("order", ranks, f"no threshold for {', '.join(missing)}")
        unused = [rank for rank in checked if rank not in ranks]
        if unused:
            raise InputError("thresholds", checked, f"{', '.join(unused)} not in the roll-up order {ranks}")
    if mode not in MODES:
        raise InputError("mode", mode, f"must be one of {', '.join(MODES)}")
    return checked, ranks, mode


def rank_rollup(
    values: np.ndarray | SparseRows,
    category_map: CategoryMap,
    *,
    thresholds: Mapping[str, float] | None = None,
    order: Sequence[str] | None = None,
    mode: Mode = "lineage",
    logits: bool = False,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RollupResult:
    """Roll unconfident predictions up the taxonomy.

    Parameters
    ----------
    values : array-like of shape (n_rows, n_classes), or SparseRows
        Probabilities (each row summing to at most 1: the mass a partial row lacks belongs to no
        class, so its aggregates are lower bounds), or logits when ``logits=True`` (softmaxed).
        float32 stays float32; sparse (top-k) rows are densified a chunk at a time.
    category_map : CategoryMap
    thresholds : mapping of rank to float in (0, 1], default species 0.8, genus 0.6, family 0.4
    order : sequence of str, optional
        Ranks to try, fine to coarse; default the thresholded ranks, fine to coarse.
    mode : {"lineage", "distribution"}, default "lineage"
    chunk_rows : int, optional
        Rows processed at once; the default keeps each chunk near 64 MiB.
    progress : callable, optional
        Called with the number of rows finished after each chunk.

    Returns
    -------
    RollupResult
    """
    checked, ranks, mode = resolve_rollup_settings(thresholds, order, mode)
    return _run(values, category_map, ranks, checked, mode, logits, chunk_rows, progress)


def rollup_candidates(
    values: np.ndarray | SparseRows,
    category_map: CategoryMap,
    *,
    order: Sequence[str] = tuple(sort_fine_to_coarse(DEFAULT_THRESHOLDS)),
    mode: Mode = "lineage",
    logits: bool = False,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RollupResult:
    """The candidate and its aggregate at every rank of ``order``, for any thresholds later.

    A candidate does not depend on the thresholds (lineage: the source's ancestor; distribution:
    the rank's argmax), so one pass here serves a whole threshold sweep through
    :func:`apply_thresholds`. The result has no rank accepted and every rank's evidence filled.
    """
    ranks = check_rollup_order(order)
    if mode not in MODES:
        raise InputError("mode", mode, f"must be one of {', '.join(MODES)}")
    never = {rank: np.inf for rank in ranks}
    return _run(values, category_map, ranks, never, mode, logits, chunk_rows, progress)


def apply_thresholds(candidates: RollupResult, thresholds: Mapping[str, float]) -> RollupResult:
    """The roll-up that :func:`rank_rollup` gives with ``thresholds``, from precomputed candidates.

    Needs a threshold for every rank of ``candidates.order``; costs O(n_rows * n_ranks). The
    acceptance rule is the kernels' (:mod:`taxopost.core._kernels`), restated over whole arrays
    because the sweeps and calibration apply many thresholds to one aggregation pass, where the
    kernels fuse it with aggregation. Equal results, every field, are a property test:
    ``tests/core/test_properties.py::test_candidates_then_thresholds_equal_rank_rollup``.
    """
    checked, ranks, mode = resolve_rollup_settings(thresholds, candidates.order, candidates.mode)
    dtype = candidates.score.dtype
    limits = np.array([dtype.type(checked[rank]) for rank in ranks])
    clears = candidates.evidence_score >= limits  # NaN (no candidate) never clears
    hit = clears.any(axis=1)
    accepted = np.where(hit, clears.argmax(axis=1), -1)
    rows = np.flatnonzero(hit)
    taxon = candidates.source_taxon.copy()
    taxon[rows] = candidates.evidence_taxon[rows, accepted[rows]]
    score = candidates.source_score.copy()
    score[rows] = candidates.evidence_score[rows, accepted[rows]]
    reached = np.arange(len(ranks))[None, :] <= np.where(hit, accepted, len(ranks))[:, None]
    return RollupResult(
        order=candidates.order,
        thresholds={rank: checked[rank] for rank in ranks},
        mode=mode,
        source_class=candidates.source_class,
        source_taxon=candidates.source_taxon,
        source_score=candidates.source_score,
        taxon=taxon,
        score=score,
        accepted_rank=accepted.astype(np.int8),
        changed=hit & (taxon != candidates.source_taxon),
        evidence_taxon=np.where(reached, candidates.evidence_taxon, NO_TAXON).astype(np.int32),
        evidence_score=np.where(reached, candidates.evidence_score, np.nan).astype(dtype),
    )


def _run(
    values: np.ndarray | SparseRows,
    category_map: CategoryMap,
    ranks: list[str],
    limits_by_rank: Mapping[str, float],
    mode: str,
    logits: bool,
    chunk_rows: int | None,
    progress: Callable[[int], None] | None,
) -> RollupResult:
    field = "logits" if logits else "scores"
    matrix = as_rows(values, category_map.n_classes, field=field, logits=logits)
    check_ranks_present(
        category_map.taxonomy, ranks, field="thresholds" if any(np.isfinite(list(limits_by_rank.values()))) else "order"
    )
    plan = _plan(category_map, tuple(ranks))
    n, n_ranks = matrix.shape[0], len(ranks)
    dtype = matrix.dtype
    result = RollupResult(
        order=tuple(ranks),
        thresholds={rank: limits_by_rank[rank] for rank in ranks if np.isfinite(limits_by_rank[rank])},
        mode=mode,
        source_class=np.empty(n, dtype=np.intp),
        source_taxon=np.empty(n, dtype=np.int32),
        source_score=np.empty(n, dtype=dtype),
        taxon=np.empty(n, dtype=np.int32),
        score=np.empty(n, dtype=dtype),
        accepted_rank=np.empty(n, dtype=np.int8),
        changed=np.empty(n, dtype=bool),
        evidence_taxon=np.full((n, n_ranks), NO_TAXON, dtype=np.int32),
        evidence_score=np.full((n, n_ranks), np.nan, dtype=dtype),
    )
    # Thresholds are compared in the input's precision (see _kernels._round).
    limits = np.array([dtype.type(limits_by_rank[rank]) for rank in ranks], dtype=np.float64)
    for lo, hi, chunk in dense_chunks(matrix, chunk_rows or chunk_rows_for(matrix)):
        if logits:
            check_logits(chunk, field=field, row_offset=lo)
            chunk = softmax(chunk)

        def work(a: int, b: int, chunk: np.ndarray = chunk, lo: int = lo) -> None:
            # Validate a block, then roll it up while it is still in cache.
            block = chunk[a:b]
            stats = check_probabilities(block, field=field, row_offset=lo + a)
            _rollup_chunk(block, stats.argmax, plan, limits, mode, result, lo + a, lo + b)

        for_each_block(hi - lo, chunk.size, work)
        if progress is not None:
            progress(hi - lo)
    return result


# -- the plan: per-rank grouping of one category map, computed once --------------------------


@dataclass(frozen=True)
class _RankGroups:
    taxa: np.ndarray  # (T,) taxon id of each group, ordered by first class index
    class_group: np.ndarray  # (n_classes,) group of each class at this rank, or -1
    taxon_group: np.ndarray  # (n_taxa,) group of each taxon's ancestor at this rank, or -1
    member_ptr: np.ndarray  # (T + 1,) CSR: classes of each group
    member_idx: np.ndarray  # (sum of group sizes,)


@dataclass(frozen=True)
class _Plan:
    ranks: tuple[_RankGroups, ...]
    class_taxa: np.ndarray
    resolved_all: bool
    identity_first: bool  # every class is its own taxon at the first rank
    n_groups: np.ndarray
    class_group: np.ndarray  # (n_ranks, n_classes)
    member_ptr: np.ndarray
    member_ptr_off: np.ndarray
    member_idx: np.ndarray
    member_idx_off: np.ndarray
    taxa_flat: np.ndarray
    taxa_off: np.ndarray


def _plan(category_map: CategoryMap, order: tuple[str, ...]) -> _Plan:
    cached = category_map._plans.get(order)
    if cached is None:
        cached = category_map._plans[order] = _build_plan(category_map, order)
    return cached


def _build_plan(category_map: CategoryMap, order: tuple[str, ...]) -> _Plan:
    taxonomy = category_map.taxonomy
    class_taxa = category_map.class_taxa
    resolved = category_map.resolved
    groups = []
    for rank in order:
        ancestor = taxonomy.ancestor_at(rank)
        class_anc = np.where(resolved, ancestor[np.maximum(class_taxa, 0)], NO_TAXON)
        reached = np.flatnonzero(class_anc >= 0)
        unique, first = np.unique(class_anc[reached], return_index=True)
        taxa = unique[np.argsort(first, kind="stable")].astype(np.int32)
        local = np.full(taxonomy.n_taxa, -1, dtype=np.int32)
        local[taxa] = np.arange(taxa.size, dtype=np.int32)
        class_group = np.where(class_anc >= 0, local[np.maximum(class_anc, 0)], -1).astype(np.int32)
        taxon_group = np.where(ancestor >= 0, local[np.maximum(ancestor, 0)], -1).astype(np.int32)
        member_idx = np.flatnonzero(class_group >= 0)
        member_idx = member_idx[np.argsort(class_group[member_idx], kind="stable")].astype(np.int32)
        counts = np.bincount(class_group[class_group >= 0], minlength=taxa.size)
        member_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        groups.append(_RankGroups(taxa, class_group, taxon_group, member_ptr, member_idx))

    first = groups[0].class_group
    return _Plan(
        ranks=tuple(groups),
        class_taxa=class_taxa,
        resolved_all=bool(resolved.all()),
        identity_first=bool(np.array_equal(first, np.arange(first.size))),
        n_groups=np.array([g.taxa.size for g in groups], dtype=np.int64),
        class_group=np.stack([g.class_group for g in groups]),
        member_ptr=np.concatenate([g.member_ptr for g in groups]),
        member_ptr_off=_offsets([g.member_ptr for g in groups]),
        member_idx=np.concatenate([g.member_idx for g in groups]),
        member_idx_off=_offsets([g.member_idx for g in groups]),
        taxa_flat=np.concatenate([g.taxa for g in groups]),
        taxa_off=_offsets([g.taxa for g in groups]),
    )


def _offsets(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([p.size for p in parts[:-1]])]).astype(np.int64)


def _rollup_chunk(
    chunk: np.ndarray,
    argmax: np.ndarray,
    plan: _Plan,
    limits: np.ndarray,
    mode: str,
    result: RollupResult,
    lo: int,
    hi: int,
) -> None:
    from taxopost.core import _kernels  # numba loads on the first roll-up, not on import

    rows = np.arange(hi - lo)
    if not plan.resolved_all:  # the source prediction is the argmax over classes with a taxon
        argmax = np.where(plan.class_taxa >= 0, chunk, -1).argmax(axis=1)
    source_taxon = plan.class_taxa[argmax]
    source_score = chunk[rows, argmax]
    n_ranks = plan.n_groups.size
    accepted = np.empty(hi - lo, dtype=np.int64)
    group = np.zeros(hi - lo, dtype=np.int64)
    ev_group = np.full((hi - lo, n_ranks), -1, dtype=np.int64)
    ev_score = np.full((hi - lo, n_ranks), np.nan, dtype=np.float64)
    round32 = chunk.dtype == np.float32
    if mode == "lineage":
        for r, groups in enumerate(plan.ranks):
            ev_group[:, r] = groups.taxon_group[source_taxon]
        _kernels.lineage_rollup(
            chunk, ev_group, plan.member_ptr, plan.member_ptr_off, plan.member_idx, plan.member_idx_off,
            limits, round32, accepted, group, ev_score,
        )  # fmt: skip
        ev_group[np.isnan(ev_score)] = -1
    else:
        _kernels.distribution_rollup(
            chunk, argmax, plan.identity_first, plan.class_group, plan.n_groups,
            plan.member_ptr, plan.member_ptr_off, plan.member_idx, plan.member_idx_off,
            limits, round32, accepted, group, ev_group, ev_score,
        )  # fmt: skip
    hit = accepted >= 0
    final = source_taxon.copy()
    final[hit] = plan.taxa_flat[plan.taxa_off[accepted[hit]] + group[hit]]
    score = source_score.copy()
    score[hit] = ev_score[hit, accepted[hit]]
    out = slice(lo, hi)
    result.source_class[out] = argmax
    result.source_taxon[out] = source_taxon
    result.source_score[out] = source_score
    result.taxon[out] = final
    result.score[out] = score
    result.accepted_rank[out] = accepted
    result.changed[out] = hit & (final != source_taxon)
    seen = ev_group >= 0
    taxa = np.full(ev_group.shape, NO_TAXON, dtype=np.int32)
    taxa[seen] = plan.taxa_flat[(plan.taxa_off[None, :] + ev_group)[seen]]
    result.evidence_taxon[out] = taxa
    result.evidence_score[out] = ev_score
