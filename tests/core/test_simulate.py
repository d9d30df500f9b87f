"""Simulated classifier outputs: shapes, determinism, and peaked long-tailed rows."""

from __future__ import annotations

import numpy as np

from taxopost.core.simulate import simulate_outputs


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
