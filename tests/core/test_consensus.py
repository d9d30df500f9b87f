"""Occurrence consensus: each behaviour on small cases, then random cases against a plain reference.

The reference reads the rule literally: one group at a time, a Python loop over its rows, in
float64, with the "none of these" class of partial rows written out as an extra column.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taxopost.core import CategoryMap, Taxonomy
from taxopost.core.consensus import DEFAULT_FLOOR, consensus
from taxopost.core.sparse import sparse_rows
from taxopost.errors import InputError
from tests.core.reference import VANESSA, VANESSA_LABELS

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(values, groups, *, method, weights=None, floor=DEFAULT_FLOOR, tolerance=1e-3):
    """{group id: (combined row over the classes, its mass)} by the letter of the rule."""
    values = np.asarray(values, dtype=np.float64)
    weights = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
    combined = {}
    for group in sorted(set(int(g) for g in groups)):
        rows = [i for i, g in enumerate(groups) if g == group]
        if len(rows) == 1:
            combined[group] = (values[rows[0]], float(values[rows[0]].sum()))
            continue
        w = [float(weights[i]) for i in rows]
        if sum(w) == 0:
            w = [1.0] * len(rows)
        if method == "mean":
            row = sum(wi * values[i] for wi, i in zip(w, rows, strict=True)) / sum(w)
            combined[group] = (row, float(row.sum()))
            continue
        w = [wi * len(rows) / sum(w) for wi in w]
        n_classes = values.shape[1]
        partial = any(values[i].sum() < 1 - tolerance for i in rows)
        logs = []
        for c in range(n_classes + partial):
            total = 0.0
            for wi, i in zip(w, rows, strict=True):
                p = values[i, c] if c < n_classes else 1.0 - values[i].sum()
                total += wi * math.log(max(p, floor))
            logs.append(total)
        top = max(logs)
        exps = [math.exp(x - top) for x in logs]
        row = np.array(exps[:n_classes]) / sum(exps)
        combined[group] = (row, float(row.sum()))
    return combined


def assert_matches(result, values, groups, **kwargs):
    expected = reference(values, groups, **kwargs)
    assert list(result.group_ids) == sorted(expected)
    tol = 1e-5 if np.asarray(values).dtype == np.float32 else 1e-10
    for g, group in enumerate(result.group_ids):
        row, mass = expected[int(group)]
        np.testing.assert_allclose(result.scores[g], row, rtol=tol, atol=tol)
        assert result.mass[g] == pytest.approx(mass, abs=tol)
        best = result.scores[g].max()  # the winner holds the maximum (ties: the first)
        assert result.winner[g] == int(np.flatnonzero(result.scores[g] == best)[0])
        assert result.score[g] == result.scores[g, result.winner[g]]
    assert [int(result.group_ids[i]) for i in result.row_group] == [int(g) for g in groups]


@pytest.fixture
def flat_map(vanessa):
    """Four species classes, all resolved."""
    return CategoryMap(VANESSA_LABELS, vanessa)


FIVE_FRAMES = np.array([[0.55, 0.25, 0.1, 0.1]] * 5, dtype=np.float32)


def test_consensus_mean_averages_each_group(flat_map):
    values = np.array([[0.6, 0.2, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1]], dtype=np.float32)
    result = consensus(values, [4, 4, 2], flat_map)
    assert list(result.group_ids) == [2, 4] and list(result.sizes) == [1, 2]
    np.testing.assert_allclose(result.scores[1], [0.4, 0.4, 0.1, 0.1], rtol=1e-6)
    assert result.winner[1] == 0  # a tie goes to the first class
    assert result.scores.dtype == np.float32


def test_consensus_geometric_adds_up_agreeing_frames(flat_map):
    mean = consensus(FIVE_FRAMES, np.zeros(5, dtype=int), flat_map, method="mean")
    product = consensus(FIVE_FRAMES, np.zeros(5, dtype=int), flat_map, method="geometric")
    assert mean.score[0] == pytest.approx(0.55)
    expected = 0.55**5 / (0.55**5 + 0.25**5 + 2 * 0.1**5)
    assert product.score[0] == pytest.approx(expected, rel=1e-5) and product.score[0] > 0.95


def test_consensus_geometric_floor_keeps_one_zero_from_vetoing(flat_map):
    values = np.array([[0.9, 0.1, 0.0, 0.0]] * 3 + [[0.0, 0.6, 0.4, 0.0]], dtype=np.float64)
    result = consensus(values, [1, 1, 1, 1], flat_map, method="geometric", floor=0.01)
    assert result.winner[0] == 0  # three frames for class 0 outweigh one that gives it 0
    vetoed = consensus(values, [1, 1, 1, 1], flat_map, method="geometric", floor=1e-12)
    assert vetoed.winner[0] == 1  # with a negligible floor the zero wins the argument


def test_consensus_of_one_row_is_that_row_whatever_the_method(flat_map):
    row = np.array([[0.9, 0.05, 0.05, 0.0]], dtype=np.float32)
    for method in ("mean", "geometric"):
        result = consensus(row, [7], flat_map, method=method, weights=[3.0])
        np.testing.assert_array_equal(result.scores, row)
        assert result.mass[0] == pytest.approx(1.0)


def test_consensus_partial_rows_keep_their_missing_mass(flat_map):
    top2 = np.array([[0.5, 0.3, 0.0, 0.0], [0.6, 0.0, 0.2, 0.0]])  # top-k rows: 0.2 missing each
    mean = consensus(top2, [0, 0], flat_map)
    assert mean.mass[0] == pytest.approx(0.8)
    np.testing.assert_allclose(mean.scores[0], [0.55, 0.15, 0.1, 0.0])
    product = consensus(top2, [0, 0], flat_map, method="geometric")
    assert 0 < product.mass[0] < 1
    assert_matches(product, top2, [0, 0], method="geometric")
    with pytest.raises(InputError, match=r"scores\[1\]=.*must sum to at most 1"):
        consensus(top2 * [[1.0], [1.5]], [0, 0], flat_map)


@pytest.mark.parametrize("weights", [None, [1.0, 3.0]], ids=["product", "weighted logarithms"])
def test_consensus_geometric_counts_a_nearly_full_rows_missing_mass_beside_a_partial_row(flat_map, weights):
    """A row within rounding of 1 (0.9991) beside a top-1 row: its 0.0009 missing is combined, not the floor."""
    rows = np.array([[0.05, 0.0, 0.0, 0.0], [0.0, 0.9991, 0.0, 0.0]])
    result = consensus(rows, [0, 0], flat_map, method="geometric", weights=weights)
    assert_matches(result, rows, [0, 0], method="geometric", weights=weights)
    w = np.array([1.0, 1.0] if weights is None else weights)
    w = w * 2 / w.sum()
    logs = np.r_[
        np.log(np.maximum(rows, DEFAULT_FLOOR)).T @ w, np.log(np.maximum(1 - rows.sum(axis=1), DEFAULT_FLOOR)) @ w
    ]
    expected = np.exp(logs - logs.max()) / np.exp(logs - logs.max()).sum()
    np.testing.assert_allclose(result.scores[0], expected[:4], rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_consensus_mean_keeps_exact_ties_whatever_the_rows_order(flat_map, dtype):
    """Scaling each weight to 1/n before summing rounded the products: 3 x 0.25 and 0.125 + 0.5 +
    0.125 came apart by an ulp, and the winner followed the rows' order instead of the first on ties."""
    rows = np.array([[0.125, 0.25, 0.125, 0.5], [0.5, 0.25, 0.125, 0.125], [0.125, 0.25, 0.125, 0.5]], dtype=dtype)
    for order in ([0, 1, 2], [1, 0, 2], [2, 1, 0]):
        result = consensus(rows[order], [0, 0, 0], flat_map)
        assert result.scores[0, 0] == result.scores[0, 1] == dtype(0.25)
        assert result.winner[0] == 3 and result.score[0] == dtype(0.375)
        tie = consensus(rows[order][:, [0, 1, 2, 2]] * dtype(1), [0, 0, 0], flat_map)  # a and b tie for the top
        assert tie.winner[0] == 0


@pytest.mark.parametrize("method", ["mean", "geometric"])
def test_consensus_of_top_k_pairs_equals_that_of_their_dense_rows(flat_map, method):
    """Top-k rows as a file gives them (SpeciesNet, MegaDetector): pairs, the rest missing."""
    pairs = sparse_rows([0, 2, 3, 5], [0, 1, 0, 2, 3], np.array([0.5, 0.3, 0.7, 0.6, 0.1], np.float32), 4)
    dense = pairs.dense()
    for groups in ([0, 0, 1], [1, 0, 1]):
        sparse_result = consensus(pairs, groups, flat_map, method=method)
        dense_result = consensus(dense, groups, flat_map, method=method)
        for field in ("group_ids", "row_group", "sizes", "scores", "mass", "winner", "score"):
            np.testing.assert_array_equal(getattr(sparse_result, field), getattr(dense_result, field), err_msg=field)
    with pytest.raises(InputError, match="top-k pairs are probabilities"):
        consensus(pairs, [0, 0, 1], flat_map, logits=True)


def test_consensus_full_rows_combine_to_full_rows(flat_map):
    rng = np.random.default_rng(3)
    values = rng.dirichlet(np.ones(4), size=30)
    for method in ("mean", "geometric"):
        result = consensus(values, rng.integers(0, 6, size=30), flat_map, method=method)
        np.testing.assert_allclose(result.mass, 1.0, atol=1e-12)
        np.testing.assert_allclose(result.scores.sum(axis=1), 1.0, atol=1e-12)


def test_consensus_weights_give_a_row_more_say(flat_map):
    values = np.array([[0.8, 0.2, 0.0, 0.0], [0.2, 0.8, 0.0, 0.0]])
    result = consensus(values, [0, 0], flat_map, weights=[3.0, 1.0])
    np.testing.assert_allclose(result.scores[0], [0.65, 0.35, 0.0, 0.0])
    scaled = consensus(values, [0, 0], flat_map, weights=[300.0, 100.0], method="geometric")
    assert_matches(scaled, values, [0, 0], method="geometric", weights=[3.0, 1.0])


@pytest.mark.parametrize("method", ["mean", "geometric"])
def test_consensus_weights_too_large_to_sum_still_weigh_as_their_ratio(flat_map, method):
    """Their sum overflowed to inf and scaled every weight of the group to 0."""
    values = np.array([[0.8, 0.2, 0.0, 0.0], [0.2, 0.8, 0.0, 0.0]])
    huge = consensus(values, [0, 0], flat_map, weights=[1.5e308, 0.5e308], method=method)
    assert_matches(huge, values, [0, 0], method=method, weights=[3.0, 1.0])


def test_consensus_all_zero_weights_in_a_group_mean_equal_weights(flat_map):
    values = np.array([[0.8, 0.2, 0.0, 0.0], [0.2, 0.8, 0.0, 0.0], [0.1, 0.1, 0.4, 0.4]])
    result = consensus(values, [0, 0, 1], flat_map, weights=[0.0, 0.0, 0.0])
    np.testing.assert_allclose(result.scores[0], [0.5, 0.5, 0.0, 0.0])


def test_consensus_from_logits_is_the_consensus_of_their_softmax(flat_map):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(9, 4)).astype(np.float32)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    groups = [2, 0, 2, 1, 0, 2, 1, 1, 5]
    for method in ("mean", "geometric"):
        a = consensus(logits, groups, flat_map, logits=True, method=method)
        b = consensus(probabilities, groups, flat_map, method=method)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-7)


def test_consensus_unresolved_classes_never_win(vanessa):
    category_map = CategoryMap(["Vanessa atalanta", "no such taxon"], vanessa, on_unresolved="exclude")
    result = consensus(np.array([[0.3, 0.7], [0.4, 0.6]]), [0, 0], category_map)
    assert result.winner[0] == 0


def test_consensus_chunks_never_split_a_group(flat_map):
    rng = np.random.default_rng(2)
    values = rng.dirichlet(np.ones(4), size=200).astype(np.float32)
    groups = np.sort(rng.integers(0, 40, size=200))
    seen = []
    whole = consensus(values, groups, flat_map, method="geometric")
    chunked = consensus(values, groups, flat_map, method="geometric", chunk_rows=7, progress=seen.append)
    np.testing.assert_array_equal(whole.scores, chunked.scores)
    assert sum(seen) == 200 and len(seen) > 10


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ([0, 0], r"groups=2: must hold one group id per row: 3 ids"),
        ([0, -1, 0], r"groups\[1\]=-1: group ids must be >= 0"),
        ([0.0, 1.5, 0.0], r"groups\[1\]=1.5: group ids must be integers"),
        (["a", "b", "c"], r"groups='<U1': group ids must be integers"),
        ([[0, 0, 0]], r"groups=\(1, 3\): must hold one group id per row"),
        (np.array([0, 2**63, 0], dtype=np.uint64), r"groups\[1\]=9223372036854775808: group ids must be below 2\*\*63"),
    ],
)
def test_consensus_rejects_bad_groups(flat_map, groups, match):
    with pytest.raises(InputError, match=match):
        consensus(np.full((3, 4), 0.25), groups, flat_map)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": [1.0, -2.0, 1.0]}, r"weights\[1\]=-2.0: weights must be finite and >= 0"),
        ({"weights": [1.0, np.nan, 1.0]}, r"weights\[1\]=nan"),
        ({"weights": [1.0, 1.0]}, r"weights=\(2,\): must hold one weight per row: 3 values"),
        ({"method": "median"}, r"method='median': must be one of mean, geometric"),
        ({"floor": 0.0}, r"floor=0.0: must be in the open interval \(0, 1\)"),
        ({"floor": True}, r"floor=True: must be in the open interval \(0, 1\)"),
    ],
)
def test_consensus_rejects_bad_options(flat_map, kwargs, match):
    with pytest.raises(InputError, match=match):
        consensus(np.full((3, 4), 0.25), [0, 0, 1], flat_map, **kwargs)


def test_consensus_takes_a_numpy_floor(flat_map):
    rows = np.array([[0.9, 0.1, 0.0, 0.0], [0.0, 0.6, 0.4, 0.0]])
    given = consensus(rows, [0, 0], flat_map, method="geometric", floor=np.float32(0.01))
    same = consensus(rows, [0, 0], flat_map, method="geometric", floor=float(np.float32(0.01)))
    np.testing.assert_array_equal(given.scores, same.scores)


@pytest.mark.parametrize("method", ["mean", "geometric"])
@pytest.mark.parametrize(
    ("bad", "match"), [(np.nan, r"scores\[4, 2\]=nan"), (-0.1, r"scores\[4, 2\]=-0.1"), (0.9, r"scores\[4\]=")]
)
def test_consensus_names_the_input_row_of_a_bad_value_when_rows_are_shuffled(flat_map, method, bad, match):
    values = np.full((6, 4), 0.25)
    values[4, 2] = bad
    with pytest.raises(InputError, match=match) as caught:
        consensus(values, [3, 1, 3, 0, 1, 0], flat_map, method=method)
    assert caught.value.row == 4


def test_consensus_of_no_rows_is_empty(flat_map):
    result = consensus(np.zeros((0, 4)), [], flat_map)
    assert len(result) == 0 and result.scores.shape == (0, 4)


# -- random cases against the reference --------------------------------------------------------


@st.composite
def problems(draw):
    n_rows = draw(st.integers(1, 25))
    n_classes = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    style = draw(st.sampled_from(["dirichlet", "sparse", "partial", "zeros"]))
    values = rng.dirichlet(np.full(n_classes, 0.05 if style == "sparse" else 1.0), size=n_rows)
    if style == "partial":  # top-k style: some rows lose mass
        values *= rng.choice([1.0, 0.9, 0.5], size=(n_rows, 1))
    if style == "zeros":
        values = np.where(rng.random(values.shape) < 0.3, 0.0, values)
        values[values.sum(axis=1) == 0, 0] = 1.0
        values /= values.sum(axis=1, keepdims=True)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    groups = rng.integers(0, draw(st.integers(1, 8)), size=n_rows) * draw(st.sampled_from([1, 1000]))
    weights = None
    if draw(st.booleans()):
        weights = rng.choice([0.0, 0.5, 1.0, 4.0, 250.0], size=n_rows)
    return values.astype(dtype), groups, weights


@PROPERTY
@given(problem=problems(), method=st.sampled_from(["mean", "geometric"]), floor=st.sampled_from([1e-4, 0.05]))
def test_consensus_agrees_with_the_reference(problem, method, floor):
    values, groups, weights = problem
    category_map = CategoryMap(VANESSA_LABELS[: values.shape[1]], Taxonomy(VANESSA))
    result = consensus(values, groups, category_map, method=method, weights=weights, floor=floor)
    assert_matches(result, values, groups, method=method, weights=weights, floor=floor)


@PROPERTY
@given(problem=problems(), method=st.sampled_from(["mean", "geometric"]))
def test_consensus_does_not_depend_on_row_order(problem, method):
    values, groups, weights = problem
    category_map = CategoryMap(VANESSA_LABELS[: values.shape[1]], Taxonomy(VANESSA))
    shuffle = np.random.default_rng(len(groups)).permutation(len(groups))
    a = consensus(values, groups, category_map, method=method, weights=weights)
    b = consensus(
        values[shuffle], groups[shuffle], category_map, method=method,
        weights=None if weights is None else weights[shuffle],
    )  # fmt: skip
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(a.group_ids[a.row_group][shuffle], b.group_ids[b.row_group])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_consensus_of_long_tracks_stays_within_float32_rounding_of_the_exact_mean(flat_map, dtype):
    rng = np.random.default_rng(4)
    values = rng.dirichlet(np.ones(4), size=3000).astype(dtype)
    groups = np.repeat([0, 1, 2], [64, 65, 2871])  # at, just above and far above one flush of partial sums
    result = consensus(values, groups, flat_map)
    for g in range(3):
        exact = values[groups == g].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(result.scores[g], exact, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_matches(consensus(values, groups, flat_map, method="geometric"), values, groups, method="geometric")


def test_consensus_geometric_keeps_a_class_that_falls_far_behind_and_comes_back(flat_map):
    # 90 frames for class 0, then 110 for class 1: class 1 is 1e-360 behind after the first 90 at
    # the default floor (below float64's range), yet wins. Whatever path each floor takes, the
    # answer is the sum of logarithms'.
    values = np.zeros((200, 4))
    values[:90, 0] = 1.0
    values[90:, 1] = 1.0
    groups = np.zeros(200, dtype=int)
    for floor in (1e-300, DEFAULT_FLOOR, 0.05):
        result = consensus(values, groups, flat_map, method="geometric", floor=floor)
        assert result.winner[0] == 1, floor
        assert_matches(result, values, groups, method="geometric", floor=floor)
    short = consensus(values[75:115], groups[:40], flat_map, method="geometric")  # 40 rows: the product
    assert short.winner[0] == 1
    assert_matches(short, values[75:115], groups[:40], method="geometric")


def test_consensus_geometric_of_equal_weights_matches_the_weighted_path(flat_map):
    # Equal weights take the product kernel; weights a hair apart take the logarithms: same answer.
    rng = np.random.default_rng(9)
    values = rng.dirichlet(np.ones(4) * 0.3, size=60)
    values[::3] *= 0.7  # partial rows, with their missing mass
    groups = np.repeat(np.arange(12), 5)
    equal = consensus(values, groups, flat_map, method="geometric")
    nearly = consensus(values, groups, flat_map, method="geometric", weights=np.r_[1.0 + 1e-12, np.ones(59)])
    np.testing.assert_allclose(equal.scores, nearly.scores, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(equal.mass, nearly.mass, rtol=1e-9)


def test_consensus_geometric_of_float32_agrees_with_float64_either_side_of_the_float32_product(flat_map):
    # Tracks of up to 7 rows (at the default floor) multiply in float32, longer ones in float64:
    # on both sides, with one class at the floor in every frame (the smallest product float32
    # holds), the answer is float64's within float32 rounding, and chunking never changes it.
    rng = np.random.default_rng(11)
    sizes = np.arange(1, 11)
    values = rng.dirichlet(np.ones(4), size=sizes.sum())
    values[:, 3] = 0.0  # at the floor in every frame
    values[::4] *= 0.8  # partial rows, with their missing mass
    groups = np.repeat(np.arange(sizes.size), sizes)
    wide = consensus(values, groups, flat_map, method="geometric")
    narrow = consensus(values.astype(np.float32), groups, flat_map, method="geometric")
    np.testing.assert_allclose(narrow.scores, wide.scores, rtol=2e-6, atol=1e-12)
    np.testing.assert_allclose(narrow.mass, wide.mass, rtol=2e-6)
    assert (narrow.scores[1:, 3] > 0).all()  # never underflowed
    chunked = consensus(values.astype(np.float32), groups, flat_map, method="geometric", chunk_rows=3)
    np.testing.assert_array_equal(chunked.scores, narrow.scores)


def test_consensus_geometric_path_is_each_tracks_own_whatever_its_block(flat_map):
    # A 100-row track takes the logarithms, the short ones the product: how the tracks fall into
    # chunks (one block with the long track, or apart from it) never changes a result.
    rng = np.random.default_rng(12)
    sizes = np.array([5, 100, 3, 4, 6])
    values = rng.dirichlet(np.ones(4), size=sizes.sum()).astype(np.float32)
    groups = np.repeat(np.arange(sizes.size), sizes)
    together = consensus(values, groups, flat_map, method="geometric")
    for chunk_rows in (1, 5, 50):
        apart = consensus(values, groups, flat_map, method="geometric", chunk_rows=chunk_rows)
        np.testing.assert_array_equal(apart.scores, together.scores)
        np.testing.assert_array_equal(apart.mass, together.mass)
