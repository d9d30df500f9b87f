"""Roll-up thresholds in the shape Antenna's rank roll-up admin action takes.

Antenna's ``RankRollupConfig`` reads upper-case rank keys (``{"SPECIES": 0.8, ...}``) and a
``rollup_order`` fine to coarse, with the capture set as ``source_image_collection_id``. At each
rank it picks the taxon with the largest summed score: taxopost's ``distribution`` mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: The taxopost roll-up mode whose thresholds mean the same in Antenna's roll-up.
ANTENNA_ROLLUP_MODE = "distribution"


def antenna_rollup_config(
    thresholds: Mapping[str, float], order: Sequence[str], *, capture_set_id: int | None = None
) -> dict[str, object]:
    """The config to paste into Antenna's rank roll-up form (JSON-ready).

    ``order`` is fine to coarse, as taxopost's; ranks without a threshold are left out, as
    Antenna would treat a missing one as 1.0 (never accepted).
    """
    ranks = [rank for rank in order if rank in thresholds]
    config: dict[str, object] = {}
    if capture_set_id is not None:
        config["source_image_collection_id"] = capture_set_id
    config["thresholds"] = {rank.upper(): float(thresholds[rank]) for rank in ranks}
    config["rollup_order"] = [rank.upper() for rank in ranks]
    return config
