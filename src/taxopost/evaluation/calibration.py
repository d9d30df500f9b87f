"""Per-rank roll-up thresholds that reach a target precision, with a finite-sample guarantee.

The public API of calibration (Learn-then-Test, Angelopoulos et al. 2021) and its results. It
is the controller over two separate pieces: the bound on an error rate
(:mod:`taxopost.evaluation.bounds`, Clopper-Pearson) and the testing procedure that picks one
threshold per rank (:mod:`taxopost.evaluation.fwer_control`, fixed-sequence by default;
swappable through ``procedure=``).

1. The ranks are taken fine to coarse. At rank ``r``, only the calibration rows not accepted at
   a finer rank are considered (the *reaching* rows), each with its rank-``r`` candidate and
   aggregate (:func:`~taxopost.core.rollup.rollup_candidates`, lineage or distribution mode).
2. Candidate thresholds come from a fixed grid, from high to low. At threshold ``t`` the
   accepted rows are the reaching rows whose aggregate is ``>= t``; with ``k`` wrong among
   ``n`` accepted, the bound ``U`` on their error rate at level ``1 - delta`` is computed.
3. The procedure picks the rank's threshold among those with ``U <= 1 - target``
   (fixed-sequence: the last one passing before the first failure, high to low).
4. If it picks none, the rank is **unreachable**: it is left out of the returned
   config (no prediction is ever accepted at it) and reported as such. A threshold of 1.0
   would not be a safe stand-in: aggregates of exactly 1.0 occur in floating point.

**Assumption**: the calibration rows and the rows the thresholds are used on are exchangeable
(drawn from the same distribution, e.g. a random split of one labelled set; a new site,
season or model version breaks it).

**Guarantee**: for each rank ``r`` that is reached, with probability at least ``1 - delta``
over the calibration rows, the precision of the predictions accepted at rank ``r`` on new
rows is at least the rank's target, for any procedure that controls the family-wise error rate
at ``delta`` (fixed-sequence does without correction for the number of thresholds). The
statement is per rank: all ranks hold together with probability at
least ``1 - m * delta`` for ``m`` ranks (pass ``delta / m`` for a joint statement). The finer
ranks' thresholds are chosen on the same rows, so the statement at rank ``r`` is conditional
on them; ``tests/evaluation/test_calibration_guarantee.py`` checks the per-rank rate
empirically. Rows accepted at no rank keep the model's prediction and are not covered.

**Occurrences** (``groups``): the rows of one individual share its errors, so they are not
exchangeable trials. Whole occurrences are split, and one row drawn at random from each
calibration occurrence is calibrated on: the assumption is then on occurrences, and the
guarantee on a row drawn at random from a new occurrence (each occurrence weighs the same).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.consensus import check_groups
from taxopost.core.ranks import check_rollup_order, parse_rank, sort_fine_to_coarse
from taxopost.core.rollup import MODES, RollupResult, apply_thresholds, rollup_candidates
from taxopost.core.taxonomy import Taxonomy
from taxopost.errors import InputError
from taxopost.evaluation._checks import check_taxa, default_order
from taxopost.evaluation.bounds import check_delta, clopper_pearson_upper
from taxopost.evaluation.fwer_control import TestingProcedure, fixed_sequence
from taxopost.evaluation.metrics import is_correct
from taxopost.evaluation.occurrences import check_one_truth
from taxopost.evaluation.sweep import accepted_counts, check_grid, rank_column
from taxopost.tasks.rank_rollup import DEFAULT_ROLLUP_MODE, RankRollupConfig

#: Candidate thresholds, tested from high to low: 0.01 .. 0.99 by 0.01, then a finer decimal
#: ladder towards 1 (0.991 .. 0.999, 0.9991 .. 0.9999, 0.99991 .. 0.99999, 1.0), where
#: softmax outputs crowd.
DEFAULT_CALIBRATION_GRID: np.ndarray = np.unique(
    np.round(
        np.concatenate(
            [
                np.arange(1, 100) / 100,
                0.99 + np.arange(1, 10) / 1e3,
                0.999 + np.arange(1, 10) / 1e4,
                0.9999 + np.arange(1, 10) / 1e5,
                [1.0],
            ]
        ),
        8,
    )
)[::-1].copy()


@dataclass(frozen=True)
class RankCalibration:
    """The outcome of calibration at one rank (on the calibration split).

    Attributes
    ----------
    rank : str
    target : float
        The target precision.
    threshold : float or None
        The chosen threshold; None when the rank is unreachable.
    n_reaching : int
        Calibration rows not accepted at a finer rank.
    n_accepted, n_errors : int
        Rows accepted at the chosen threshold, and how many of them are wrong (0 if unreachable).
    precision_bound : float
        The Clopper-Pearson lower bound on precision at the chosen threshold (NaN if unreachable).
    thresholds, accepted, precision, bound : ndarray of shape (n_thresholds,)
        The whole curve on the calibration split: each candidate threshold, how many rows it
        accepts, their precision and its lower bound ``1 - U`` (NaN where nothing is accepted).
    """

    rank: str
    target: float
    threshold: float | None
    n_reaching: int
    n_accepted: int
    n_errors: int
    precision_bound: float
    thresholds: np.ndarray = field(repr=False)
    accepted: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)
    bound: np.ndarray = field(repr=False)

    @property
    def reached(self) -> bool:
        return self.threshold is not None

    @property
    def accepted_precision(self) -> float:
        """Precision of the calibration rows accepted at the chosen threshold (NaN if none)."""
        return (1 - self.n_errors / self.n_accepted) if self.n_accepted else float("nan")


@dataclass(frozen=True)
class ThresholdCalibration:
    """Calibrated thresholds for every rank of ``order``.

    Attributes
    ----------
    mode : str
    delta : float
    ranks : tuple of RankCalibration
        Fine to coarse, one per rank tried (reached or not).
    """

    mode: str
    delta: float
    ranks: tuple[RankCalibration, ...]

    @property
    def thresholds(self) -> dict[str, float]:
        """Thresholds of the reached ranks, fine to coarse."""
        return {r.rank: r.threshold for r in self.ranks if r.threshold is not None}

    @property
    def unreachable(self) -> list[str]:
        return [r.rank for r in self.ranks if r.threshold is None]

    def config(self) -> RankRollupConfig | None:
        """The platform task's config (None when no rank reaches its target)."""
        thresholds = self.thresholds
        if not thresholds:
            return None
        return RankRollupConfig(thresholds=thresholds, order=list(thresholds), mode=self.mode)


@dataclass(frozen=True)
class HeldOutRank:
    """What one rank's calibrated threshold gives on held-out rows.

    Attributes
    ----------
    rank : str
    threshold : float or None
        The calibrated threshold (None if the rank is unreachable: nothing is accepted at it).
    target : float
    n_accepted : int
        Rows accepted at this rank.
    coverage : float
        ``n_accepted`` over all held-out rows.
    precision : float
        Of the accepted rows (NaN if none).
    met : bool
        ``precision >= target``, or nothing accepted.
    n_reaching : int
        Rows not accepted at a finer rank.
    thresholds, curve_accepted, curve_precision : ndarray of shape (n_thresholds,)
        The held-out curve: rows accepted at each grid threshold (finer ranks at their
        calibrated thresholds), and their precision (NaN where none).
    """

    rank: str
    threshold: float | None
    target: float
    n_accepted: int
    coverage: float
    precision: float
    met: bool
    n_reaching: int
    thresholds: np.ndarray = field(repr=False)
    curve_accepted: np.ndarray = field(repr=False)
    curve_precision: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class NotAccepted:
    """Held-out rows accepted at no rank: they keep the model's prediction (not covered by the guarantee).

    Attributes
    ----------
    n : int
    coverage : float
        Their share of the held-out rows.
    precision : float
        Of the model's predictions on them (NaN if none).
    """

    n: int
    coverage: float
    precision: float


@dataclass(frozen=True)
class HeldOutEvaluation:
    """Precision and coverage that calibrated thresholds reach on other rows (:func:`evaluate_thresholds`).

    Attributes
    ----------
    n : int
    accuracy : float
        Of the final predictions (correct = the true taxon or an ancestor).
    ranks : tuple of HeldOutRank
        One per rank of the calibration, fine to coarse.
    not_accepted : NotAccepted
    """

    n: int
    accuracy: float
    ranks: tuple[HeldOutRank, ...]
    not_accepted: NotAccepted


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration on one split and its check on the other.

    Attributes
    ----------
    calibration : ThresholdCalibration
    held_out : HeldOutEvaluation
        :func:`evaluate_thresholds` on the held-out rows.
    n_calibration, n_test : int
        Rows calibrated on and held out.
    seed : int
    one_per_occurrence : bool
        The calibration rows are one row drawn from each calibration occurrence (with ``groups``).
    """

    calibration: ThresholdCalibration
    held_out: HeldOutEvaluation
    n_calibration: int
    n_test: int
    seed: int | None
    one_per_occurrence: bool = False


# -- checks ------------------------------------------------------------------------------------


def check_targets(target_precision: float | Mapping[str, float], order: Sequence[str]) -> dict[str, float]:
    """One target precision in (0, 1) per rank of ``order``."""
    if isinstance(target_precision, Mapping):
        targets = {
            parse_rank(rank, field=f"target_precision.{rank}"): value for rank, value in target_precision.items()
        }
        missing = [rank for rank in order if rank not in targets]
        if missing:
            raise InputError("target_precision", dict(target_precision), f"no target for {', '.join(missing)}")
        extra = [rank for rank in targets if rank not in order]
        if extra:
            raise InputError("target_precision", dict(target_precision), f"{', '.join(extra)} not in order {order}")
    else:
        targets = dict.fromkeys(order, target_precision)
    checked = {}
    for rank in order:
        value = targets[rank]
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError(f"target_precision.{rank}", value, "must be a number in (0, 1)") from None
        if not 0 < number < 1:
            raise InputError(f"target_precision.{rank}", value, "must be in (0, 1), e.g. 0.95")
        checked[rank] = number
    return checked


def check_procedure(procedure: object) -> None:
    """Raise naming ``procedure`` unless it can be called like :class:`TestingProcedure`."""
    if not callable(procedure):
        raise InputError("procedure", procedure, "must be a testing procedure, e.g. fwer_control.fixed_sequence")


def resolve_order(
    category_map: CategoryMap, order: Sequence[str] | None, target_precision: float | Mapping[str, float]
) -> list[str]:
    """The ranks to calibrate: ``order``, else the ranks with a target, else the label space's ranks."""
    if order is not None:
        return check_rollup_order(order)
    if isinstance(target_precision, Mapping):
        return check_rollup_order(
            sort_fine_to_coarse(parse_rank(r, field=f"target_precision.{r}") for r in target_precision)
        )
    ranks = default_order(category_map)
    if not ranks:
        raise InputError("order", [], "the category map's taxa have no rank to roll up to; give the order")
    return ranks


def split_rows(
    n_rows: int, calibration_fraction: float, *, seed: int | None = 0, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A random split of ``range(n_rows)`` into calibration and held-out rows (both sorted).

    With ``groups`` (each row's occurrence), whole occurrences are split: that share of the
    occurrences calibrates, and the rows of one occurrence, which share the individual's errors,
    never sit on both sides; the split depends on the partition (and ``seed``), not on the ids
    naming it. Both parts get at least one row; raises :class:`InputError` when that is impossible.
    """
    try:
        fraction = float(calibration_fraction)
    except (TypeError, ValueError):
        raise InputError("calibration_fraction", calibration_fraction, "must be a number in (0, 1)") from None
    if not 0 < fraction < 1:
        raise InputError("calibration_fraction", calibration_fraction, "must be in (0, 1), e.g. 0.5")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
        raise InputError("seed", seed, "must be a whole number >= 0 (or None for a fresh draw)")
    if groups is not None:
        ids, first, row_group = np.unique(check_groups(groups, n_rows), return_index=True, return_inverse=True)
        # Occurrences numbered by their first row, not by id: one partition of the rows splits the
        # same whatever its ids (a CSV's text ids, the same occurrences numbered otherwise in a .npy).
        order = np.empty(ids.size, dtype=np.intp)
        order[np.argsort(first, kind="stable")] = np.arange(ids.size)
        row_group = order[row_group]
        n_cal = round(fraction * ids.size)
        if n_cal < 1 or n_cal >= ids.size:
            raise InputError(
                "calibration_fraction", calibration_fraction,
                f"leaves an empty split of the {ids.size} occurrences (the {n_rows} rows' groups): whole "
                "occurrences are split",
            )  # fmt: skip
        cal_groups, _ = split_rows(ids.size, fraction, seed=seed)
        on_cal = np.isin(row_group, cal_groups)
        return np.flatnonzero(on_cal), np.flatnonzero(~on_cal)
    n_cal = round(fraction * n_rows)
    if n_cal < 1 or n_cal >= n_rows:
        raise InputError("calibration_fraction", calibration_fraction, f"leaves an empty split of the {n_rows} rows")
    permutation = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(permutation[:n_cal]), np.sort(permutation[n_cal:])


# -- calibration ---------------------------------------------------------------------------------


def calibrate(
    values: np.ndarray,
    category_map: CategoryMap,
    y_true: np.ndarray,
    *,
    target_precision: float | Mapping[str, float] = 0.95,
    delta: float = 0.1,
    calibration_fraction: float = 0.5,
    seed: int | None = 0,
    order: Sequence[str] | None = None,
    mode: str = DEFAULT_ROLLUP_MODE,
    logits: bool = False,
    grid: np.ndarray | None = None,
    procedure: TestingProcedure = fixed_sequence,
    groups: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> CalibrationReport:
    """Choose per-rank roll-up thresholds on a random calibration split; check them on the rest.

    See the module docstring for the construction, its **assumption** (calibration and
    held-out rows exchangeable) and its **guarantee** (per reached rank, with probability at
    least ``1 - delta``, the precision of predictions accepted at that rank is at least the
    target). A rank that cannot reach its target is reported and left out of the config.

    Parameters
    ----------
    values : ndarray of shape (n_rows, n_classes)
        Probabilities, or logits with ``logits=True``.
    category_map : CategoryMap
    y_true : ndarray of shape (n_rows,), int
        The true taxon of each row.
    target_precision : float or mapping of rank to float, default 0.95
        One target for every rank, or one per rank (each in (0, 1)).
    delta : float, default 0.1
        The guarantee holds with probability at least ``1 - delta``.
    calibration_fraction : float, default 0.5
        Share of rows used to calibrate; the others are held out.
    seed : int, optional
        Seed of the random split.
    order : sequence of str, optional
        Ranks to calibrate, fine to coarse. Default: the ranks with a per-rank target, else the
        ranks of the category map's taxa and their ancestors (without a common root's rank).
    mode : {"lineage", "distribution"}
    grid : array-like, optional
        Candidate thresholds in (0, 1]; default :data:`DEFAULT_CALIBRATION_GRID`.
    procedure : TestingProcedure, default fixed_sequence
        Picks each rank's threshold; the guarantee needs it to control the family-wise error
        rate at ``delta`` (:mod:`taxopost.evaluation.fwer_control`).
    groups : ndarray of shape (n_rows,), int, optional
        Each row's occurrence: the split keeps occurrences whole (:func:`split_rows`) and
        calibrates on one row drawn from each calibration occurrence (:func:`one_row_per_group`):
        the guarantee then assumes occurrences exchangeable, and holds for a row drawn at random
        from a new occurrence. The held-out figures count every held-out row. An occurrence
        whose rows have different true taxa is refused (:func:`check_one_truth`), as evaluate does.

    Returns
    -------
    CalibrationReport
    """
    order = resolve_order(category_map, order, target_precision)
    targets = check_targets(target_precision, order)
    delta = check_delta(delta)
    if mode not in MODES:
        raise InputError("mode", mode, f"must be one of {', '.join(MODES)}")
    grid = DEFAULT_CALIBRATION_GRID if grid is None else check_grid(grid)
    check_procedure(procedure)
    candidates = rollup_candidates(values, category_map, order=order, mode=mode, logits=logits, progress=progress)
    taxonomy = category_map.taxonomy
    y_true = check_taxa(y_true, taxonomy, field="y_true", n_rows=len(candidates))
    if groups is not None:  # one row drawn per occurrence stands for all of them: they must agree on the truth
        groups = check_one_truth(y_true, groups, taxonomy)
    cal, test = split_rows(len(candidates), calibration_fraction, seed=seed, groups=groups)
    if groups is not None:
        cal = one_row_per_group(cal, groups, seed=seed)
    calibration = _calibrate(take_rows(candidates, cal), y_true[cal], taxonomy, targets, delta, grid, procedure)
    held_out = _evaluate(take_rows(candidates, test), y_true[test], taxonomy, calibration, grid)
    return CalibrationReport(calibration, held_out, int(cal.size), int(test.size), seed, groups is not None)


def one_row_per_group(rows: np.ndarray, groups: np.ndarray, *, seed: int | None = 0) -> np.ndarray:
    """One of ``rows`` drawn at random from each group they hold (sorted; ``groups``: every row's group).

    Why: the rows of one occurrence share the individual's errors, so counting them as
    independent trials makes the bound too tight (ten identical frames count as ten agreeing
    witnesses); one row per occurrence makes the calibration's trials independent again.
    """
    rng = np.random.default_rng(None if seed is None else [seed, 1])  # apart from the split's own draw
    shuffled = rng.permutation(rows)
    _, first = np.unique(groups[shuffled], return_index=True)
    return np.sort(shuffled[first])


def calibrate_thresholds(
    candidates: RollupResult,
    y_true: np.ndarray,
    taxonomy: Taxonomy,
    *,
    target_precision: float | Mapping[str, float] = 0.95,
    delta: float = 0.1,
    grid: np.ndarray | None = None,
    procedure: TestingProcedure = fixed_sequence,
) -> ThresholdCalibration:
    """Calibrate thresholds for every rank of ``candidates.order`` on these (calibration) rows.

    The construction, assumption and guarantee are the module docstring's; ``target_precision``,
    ``delta``, ``grid`` and ``procedure`` are :func:`calibrate`'s.

    Parameters
    ----------
    candidates : RollupResult
        :func:`~taxopost.core.rollup.rollup_candidates` of the calibration rows.
    y_true : ndarray of shape (n_rows,), int
    taxonomy : Taxonomy
    """
    y_true = check_taxa(y_true, taxonomy, field="y_true", n_rows=len(candidates))
    targets = check_targets(target_precision, list(candidates.order))
    grid = DEFAULT_CALIBRATION_GRID if grid is None else check_grid(grid)
    check_procedure(procedure)
    return _calibrate(candidates, y_true, taxonomy, targets, check_delta(delta), grid, procedure)


def evaluate_thresholds(
    candidates: RollupResult,
    y_true: np.ndarray,
    taxonomy: Taxonomy,
    calibration: ThresholdCalibration,
    *,
    grid: np.ndarray | None = None,
) -> HeldOutEvaluation:
    """Precision and coverage that calibrated thresholds reach on other (held-out) rows.

    Parameters
    ----------
    candidates : RollupResult
        :func:`~taxopost.core.rollup.rollup_candidates` of the held-out rows, same order and mode.
    y_true : ndarray of shape (n_rows,), int
    taxonomy : Taxonomy
    calibration : ThresholdCalibration
    grid : array-like, optional
        Thresholds of the held-out curves; default :data:`DEFAULT_CALIBRATION_GRID`.

    Returns
    -------
    HeldOutEvaluation
    """
    y_true = check_taxa(y_true, taxonomy, field="y_true", n_rows=len(candidates))
    grid = DEFAULT_CALIBRATION_GRID if grid is None else check_grid(grid)
    # The held-out figures pair each calibrated rank with the candidates' column at its position:
    # another order or mode would read the wrong column, or accept rows the roll-up would not.
    calibrated = [r.rank for r in calibration.ranks]
    if calibrated != list(candidates.order):
        raise InputError("candidates.order", list(candidates.order), f"the calibration's ranks are {calibrated}")
    if calibration.mode != candidates.mode:
        raise InputError("candidates.mode", candidates.mode, f"the calibration was made in {calibration.mode} mode")
    return _evaluate(candidates, y_true, taxonomy, calibration, grid)


def _calibrate(
    candidates: RollupResult,
    y_true: np.ndarray,
    taxonomy: Taxonomy,
    targets: dict[str, float],
    delta: float,
    grid: np.ndarray,
    procedure: TestingProcedure = fixed_sequence,
) -> ThresholdCalibration:
    limits = grid.astype(candidates.evidence_score.dtype)
    accepted_before = np.zeros(len(candidates), dtype=bool)
    chosen_thresholds: dict[str, float] = {}  # of the reached ranks so far, fine to coarse
    results = []
    for r, rank in enumerate(candidates.order):
        reaching = ~accepted_before
        scores, wrong = rank_column(candidates, r, reaching, y_true, taxonomy)
        n_accepted, n_errors = accepted_counts(scores, wrong, limits)
        upper = clopper_pearson_upper(n_errors, n_accepted, delta)
        chosen = procedure(n_errors, n_accepted, alpha=1.0 - targets[rank], delta=delta, bound=clopper_pearson_upper)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(n_accepted > 0, 1.0 - n_errors / np.maximum(n_accepted, 1), np.nan)
        bound = np.where(n_accepted > 0, 1.0 - upper, np.nan)
        if chosen is None:
            results.append(
                RankCalibration(
                    rank,
                    targets[rank],
                    None,
                    int(reaching.sum()),
                    0,
                    0,
                    float("nan"),
                    grid,
                    n_accepted,
                    precision,
                    bound,
                )
            )
            continue
        threshold = float(grid[chosen])
        chosen_thresholds[rank] = threshold
        accepted_before = _accepted_at_some_rank(candidates, chosen_thresholds)
        results.append(
            RankCalibration(
                rank=rank,
                target=targets[rank],
                threshold=threshold,
                n_reaching=int(reaching.sum()),
                n_accepted=int(n_accepted[chosen]),
                n_errors=int(n_errors[chosen]),
                precision_bound=float(1.0 - upper[chosen]),
                thresholds=grid,
                accepted=n_accepted,
                precision=precision,
                bound=bound,
            )
        )
    return ThresholdCalibration(mode=candidates.mode, delta=delta, ranks=tuple(results))


def _accepted_at_some_rank(candidates: RollupResult, thresholds: dict[str, float]) -> np.ndarray:
    """Rows the roll-up accepts at one of the ranks of ``thresholds`` (a subset of the order, fine to coarse).

    Through :func:`~taxopost.core.rollup.apply_thresholds`, so calibration accepts exactly the
    rows the platform's roll-up will.
    """
    kept = [candidates.order.index(rank) for rank in thresholds]
    return apply_thresholds(select_ranks(candidates, kept), thresholds).accepted_rank >= 0


def _evaluate(
    candidates: RollupResult,
    y_true: np.ndarray,
    taxonomy: Taxonomy,
    calibration: ThresholdCalibration,
    grid: np.ndarray,
) -> HeldOutEvaluation:
    n = len(candidates)
    thresholds = calibration.thresholds
    ranks = list(candidates.order)
    if thresholds:
        kept = [ranks.index(rank) for rank in thresholds]
        result = apply_thresholds(select_ranks(candidates, kept), thresholds)
        accepted_rank = np.where(result.accepted_rank >= 0, np.array(kept)[result.accepted_rank], -1)
        final = result.taxon
    else:
        accepted_rank = np.full(n, -1)
        final = candidates.source_taxon
    correct = is_correct(y_true, final, taxonomy)
    limits = grid.astype(candidates.evidence_score.dtype)
    per_rank = []
    for r, calibrated in enumerate(calibration.ranks):
        at_rank = accepted_rank == r
        n_accepted = int(at_rank.sum())
        precision = float(correct[at_rank].mean()) if n_accepted else float("nan")
        reaching = (accepted_rank < 0) | (accepted_rank >= r)
        scores, wrong = rank_column(candidates, r, reaching, y_true, taxonomy)
        curve_n, curve_err = accepted_counts(scores, wrong, limits)
        with np.errstate(invalid="ignore", divide="ignore"):
            curve = np.where(curve_n > 0, 1.0 - curve_err / np.maximum(curve_n, 1), np.nan)
        per_rank.append(
            HeldOutRank(
                rank=calibrated.rank,
                threshold=calibrated.threshold,
                target=calibrated.target,
                n_accepted=n_accepted,
                coverage=n_accepted / n if n else float("nan"),
                precision=precision,
                met=bool(n_accepted == 0 or precision >= calibrated.target),
                n_reaching=int(reaching.sum()),
                thresholds=grid,
                curve_accepted=curve_n,
                curve_precision=curve,
            )
        )
    rest = accepted_rank < 0
    not_accepted = NotAccepted(
        n=int(rest.sum()),
        coverage=float(rest.mean()) if n else float("nan"),
        precision=float(correct[rest].mean()) if rest.any() else float("nan"),
    )
    return HeldOutEvaluation(n, float(correct.mean()) if n else float("nan"), tuple(per_rank), not_accepted)


# -- RollupResult helpers -----------------------------------------------------------------------


def take_rows(candidates: RollupResult, rows: np.ndarray) -> RollupResult:
    """The candidates of a subset of rows."""
    return replace(
        candidates,
        source_class=candidates.source_class[rows],
        source_taxon=candidates.source_taxon[rows],
        source_score=candidates.source_score[rows],
        taxon=candidates.taxon[rows],
        score=candidates.score[rows],
        accepted_rank=candidates.accepted_rank[rows],
        changed=candidates.changed[rows],
        evidence_taxon=candidates.evidence_taxon[rows],
        evidence_score=candidates.evidence_score[rows],
    )


def select_ranks(candidates: RollupResult, columns: Sequence[int]) -> RollupResult:
    """The candidates restricted to some ranks of their order (by column index, fine to coarse)."""
    columns = list(columns)
    return replace(
        candidates,
        order=tuple(candidates.order[c] for c in columns),
        thresholds={},
        evidence_taxon=candidates.evidence_taxon[:, columns],
        evidence_score=candidates.evidence_score[:, columns],
    )
