"""Simulated classifier outputs: shapes, determinism, and peaked long-tailed rows."""

from __future__ import annotations

import numpy as np

from taxopost.core.simulate import simulate_outputs, simulate_tracks


def test_simulate_outputs_shapes_and_dtype(moths_map):
    outputs = simulate_outputs(moths_map, 50, seed=1)
    assert outputs.logits.shape == (50, moths_map.n_classes)
    assert outputs.logits.dtype == np.float32
    assert outputs.true_class.shape == (50,)
    assert ((outputs.true_class >= 0) & (outputs.true_class < moths_map.n_classes)).all()
    scores = outputs.scores()
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


def test_simulate_outputs_deterministic_by_seed(moths_map):
    a = simulate_outputs(moths_map, 20, seed=3)
    b = simulate_outputs(moths_map, 20, seed=3)
    c = simulate_outputs(moths_map, 20, seed=4)
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.true_class, b.true_class)
    assert not np.array_equal(a.logits, c.logits)


def test_simulate_outputs_mostly_right_and_peaked(moths_map):
    outputs = simulate_outputs(moths_map, 2000, seed=0)
    scores = outputs.scores()
    accuracy = np.mean(scores.argmax(axis=1) == outputs.true_class)
    assert 0.6 < accuracy < 0.98
    assert 0.2 < np.mean(scores.max(axis=1) >= 0.8) < 0.9


def test_simulate_tracks_groups_adjacent_frames_of_one_true_class(moths_map):
    tracks = simulate_tracks(moths_map, 300, seed=2)
    n = tracks.groups.size
    assert tracks.logits.shape == (n, moths_map.n_classes) and tracks.logits.dtype == np.float32
    assert (np.diff(tracks.groups) >= 0).all() and tracks.groups[-1] == 299
    sizes = np.bincount(tracks.groups)
    assert sizes.min() >= 1 and 3.0 < sizes.mean() < 5.0 and sizes.max() > 8  # a long tail of frame counts
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    np.testing.assert_array_equal(tracks.true_class, np.repeat(tracks.true_class[first], sizes))
    assert ((tracks.confidence > 0) & (tracks.confidence < 1)).all() and (tracks.area > 0).all()


def test_simulate_tracks_deterministic_by_seed(moths_map):
    a, b = simulate_tracks(moths_map, 40, seed=5), simulate_tracks(moths_map, 40, seed=5)
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.groups, b.groups)
    assert not np.array_equal(a.logits[:10], simulate_tracks(moths_map, 40, seed=6).logits[:10])


def test_simulate_tracks_frames_share_their_errors(moths_map):
    tracks = simulate_tracks(moths_map, 3000, seed=0)
    wrong = tracks.scores().argmax(axis=1) != tracks.true_class
    sizes = np.bincount(tracks.groups)[tracks.groups]
    others = (np.bincount(tracks.groups, weights=wrong)[tracks.groups] - wrong) / np.maximum(sizes - 1, 1)
    several = sizes > 1
    assert 0.6 < 1 - wrong.mean() < 0.95
    # a frame is wrong far more often when another frame of its track is: the error is the individual's
    assert others[wrong & several].mean() > 3 * others[~wrong & several].mean()


def test_simulate_tracks_less_confident_detections_are_noisier(moths_map):
    tracks = simulate_tracks(moths_map, 4000, seed=1)
    wrong = tracks.scores().argmax(axis=1) != tracks.true_class
    low = tracks.confidence < np.median(tracks.confidence)
    assert wrong[low].mean() > wrong[~low].mean()
