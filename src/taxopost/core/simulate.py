"""Simulated classifier outputs with ground truth, for the demo, benchmarks and tests.

The model (documented in docs/simulation.md): each row has a true class drawn from a
long-tailed abundance; the classifier puts a confident logit on a short list of candidates
(the truth and a few *confusers*, mostly from the truth's genus, then its family, rarely
anywhere) over a background of low logits. A per-row difficulty shrinks the gaps between the
truth and its confusers, so hard rows spread their mass inside a genus or family (what rank
roll-up is for) and sometimes rank a confuser first (a model error). Softmaxed outputs are
peaked like real ones: most rows put nearly all mass on a handful of classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.taxonomy import NO_TAXON

# Parameters of the model, tuned so that about half the rows are confident at species level
# (max score >= 0.8) and top-1 accuracy is near 0.8, like a field moth classifier.
_DIFFICULTY = (1.0, 1.5)  # Beta law of the per-row difficulty in [0, 1]
_GAP_SHAPE = 2.0  # Gamma shape of the logit gap between the truth and each confuser
_GAP_SCALE = (0.1, 5.0)  # gap scale = a + b * (1 - difficulty)
_CONFUSER_NOISE = 3.0  # confuser logit noise at difficulty 1


@dataclass(frozen=True)
class SimulatedOutputs:
    """``logits`` (n_rows, n_classes) float32 and ``true_class`` (n_rows,) int64."""

    logits: np.ndarray
    true_class: np.ndarray

    def scores(self) -> np.ndarray:
        """Softmax of the logits, float32."""
        out = self.logits - self.logits.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out


def simulate_outputs(
    category_map: CategoryMap,
    n_rows: int,
    *,
    seed: int = 0,
    n_confusers: int = 4,
    group_ranks: tuple[str, str] = ("genus", "family"),
    abundance_exponent: float = 0.8,
) -> SimulatedOutputs:
    """Simulate ``n_rows`` classifier outputs over ``category_map``'s classes.

    Parameters
    ----------
    n_confusers : int
        Classes that compete with the truth in each row.
    group_ranks : (str, str)
        The close and the wider group confusers are drawn from (genus, family by default).
    abundance_exponent : float
        True classes follow a Zipf law with this exponent over a random order of the classes.
    """
    logits, true_class, _ = _simulate(
        category_map, n_rows, np.random.default_rng(seed), n_confusers, group_ranks, abundance_exponent
    )
    return SimulatedOutputs(logits=logits, true_class=true_class)


def _simulate(
    category_map: CategoryMap,
    n_rows: int,
    rng: np.random.Generator,
    n_confusers: int,
    group_ranks: tuple[str, str],
    abundance_exponent: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, true classes and each row's confusers (n_rows, n_confusers) of the documented model."""
    n_classes = category_map.n_classes
    abundance = 1.0 / np.arange(1, n_classes + 1) ** abundance_exponent
    abundance = abundance[rng.permutation(n_classes)]
    true_class = rng.choice(n_classes, size=n_rows, p=abundance / abundance.sum())

    close = _class_groups(category_map, group_ranks[0])
    wide = _class_groups(category_map, group_ranks[1])
    confusers = np.empty((n_rows, n_confusers), dtype=np.int64)
    kind = rng.random((n_rows, n_confusers))
    confusers[:] = rng.integers(0, n_classes, size=(n_rows, n_confusers))
    for groups, share in ((wide, 0.9), (close, 0.6)):  # close overrides wide where both apply
        picked = _same_group(groups, true_class, n_confusers, rng)
        use = (kind < share) & (picked >= 0)
        confusers[use] = picked[use]

    difficulty = rng.beta(*_DIFFICULTY, size=n_rows)
    logits = rng.standard_normal(size=(n_rows, n_classes), dtype=np.float32)
    logits *= np.float32(1.5)
    truth_logit = rng.normal(16.0, 2.0, size=n_rows)
    scale = _GAP_SCALE[0] + _GAP_SCALE[1] * (1.0 - difficulty)[:, None]
    gaps = rng.gamma(_GAP_SHAPE, scale, size=(n_rows, n_confusers))
    noise = rng.normal(0.0, _CONFUSER_NOISE, size=(n_rows, n_confusers)) * difficulty[:, None]
    rows = np.arange(n_rows)[:, None]
    logits[rows, confusers] = (truth_logit[:, None] - gaps + noise).astype(np.float32)
    logits[np.arange(n_rows), true_class] = truth_logit.astype(np.float32)
    return logits, true_class, confusers


def _class_groups(category_map: CategoryMap, rank: str) -> np.ndarray:
    """Each class's ancestor at ``rank`` (NO_TAXON where none)."""
    ancestor = category_map.taxonomy.ancestor_at(rank)
    taxa = category_map.class_taxa
    return np.where(taxa >= 0, ancestor[np.maximum(taxa, 0)], NO_TAXON)


def _same_group(groups: np.ndarray, true_class: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """For each row, ``k`` random classes sharing the true class's group (-1 where it has none)."""
    n_classes = groups.size
    order = np.lexsort((rng.random(n_classes), groups))
    sorted_groups = groups[order]
    starts = np.searchsorted(sorted_groups, groups, side="left")
    sizes = np.searchsorted(sorted_groups, groups, side="right") - starts
    row_group = groups[true_class]
    size = sizes[true_class]
    offset = (rng.random((true_class.size, k)) * size[:, None]).astype(np.int64)
    picked = order[starts[true_class][:, None] + offset]
    valid = (row_group[:, None] >= 0) & (size[:, None] > 1) & (picked != true_class[:, None])
    return np.where(valid, picked, -1)


# -- tracks: several detections of one individual ----------------------------------------------

# Per-frame parameters of tracks, tuned so that a frame is about as often right as a row of
# simulate_outputs, and the frames of one track are wrong together more often than by chance.
_FRAME_NOISE = 2.5  # logit noise of a frame's candidates at detector confidence 0 (none at 1)
_CONFIDENCE = (4.0, 1.5)  # Beta law of a detection's confidence (mean 0.73)
_AREA = (9.0, 0.8)  # log-normal law of a track's box area in pixels (median about 8,100)
_AREA_FRAME = 0.3  # log-normal spread of a frame's area around its track's


@dataclass(frozen=True)
class SimulatedTracks(SimulatedOutputs):
    """Outputs of detections grouped into tracks (occurrences); every array has ``n_rows`` rows.

    ``groups`` (int64) is each row's track, rows of a track adjacent; ``confidence`` the
    detector's confidence (float64, in (0, 1)); ``area`` the box area in pixels (float64).
    """

    groups: np.ndarray
    confidence: np.ndarray
    area: np.ndarray


def simulate_tracks(
    category_map: CategoryMap,
    n_tracks: int,
    *,
    seed: int = 0,
    mean_frames: float = 4.0,
    max_frames: int = 50,
    frame_noise: float = _FRAME_NOISE,
    n_confusers: int = 4,
    group_ranks: tuple[str, str] = ("genus", "family"),
    abundance_exponent: float = 0.8,
) -> SimulatedTracks:
    """Simulate tracks: each individual seen in several frames that share its error.

    A track draws what :func:`simulate_outputs` draws for a row (true class, confusers,
    difficulty, the confusers' logit gaps and noise) once; these are its shared error: if a
    confuser beats the truth for this individual, it does so in most of its frames. Each frame
    then adds its own noise to the candidates' logits, larger when the detector is less
    confident (``frame_noise * (1 - confidence)``), over a fresh background.

    Parameters
    ----------
    n_tracks : int
    mean_frames : float
        Frames per track follow ``1 + Geometric`` with this mean (many short tracks, a few long
        ones), at most ``max_frames``.
    frame_noise : float
        Logit noise of a frame's candidates at detector confidence 0.

    Returns
    -------
    SimulatedTracks
        ``n_rows`` is the total number of frames.
    """
    rng = np.random.default_rng(seed)
    shared, true_class, confusers = _simulate(category_map, n_tracks, rng, n_confusers, group_ranks, abundance_exponent)
    extra = rng.geometric(1.0 / mean_frames, size=n_tracks) - 1 if mean_frames > 1 else np.zeros(n_tracks, int)
    frames = np.minimum(1 + extra, max_frames)
    groups = np.repeat(np.arange(n_tracks, dtype=np.int64), frames)
    n_rows, n_classes = groups.size, category_map.n_classes
    candidates = np.concatenate([true_class[:, None], confusers], axis=1)  # (n_tracks, 1 + n_confusers)
    confidence = rng.beta(*_CONFIDENCE, size=n_rows)
    area = np.exp(rng.normal(*_AREA, size=n_tracks))[groups] * np.exp(rng.normal(0.0, _AREA_FRAME, size=n_rows))
    logits = rng.standard_normal(size=(n_rows, n_classes), dtype=np.float32)
    logits *= np.float32(1.5)
    cols = candidates[groups]  # (n_rows, 1 + n_confusers)
    noise = rng.normal(0.0, 1.0, size=cols.shape) * (frame_noise * (1.0 - confidence))[:, None]
    rows = np.arange(n_rows)[:, None]
    logits[rows, cols] = (shared[groups[:, None], cols] + noise).astype(np.float32)
    return SimulatedTracks(
        logits=logits, true_class=true_class[groups], groups=groups, confidence=confidence, area=area
    )
