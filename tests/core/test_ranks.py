"""The rank vocabulary: names, fine-to-coarse order, iNaturalist levels, threshold checks."""

from __future__ import annotations

import pytest

from taxopost.core import RANKS, UNKNOWN
from taxopost.core.ranks import (
    RANK_LEVELS,
    check_rollup_order,
    check_thresholds,
    parse_rank,
    rank_code,
    rank_from_level,
    sort_fine_to_coarse,
)


def test_ranks_include_design_ranks_coarse_to_fine():
    design = ["kingdom", "phylum", "class", "order", "superfamily", "family", "subfamily", "tribe", "subtribe"]
    design += ["genus", "species"]
    assert [rank for rank in RANKS if rank in design] == design
    assert UNKNOWN not in RANKS


def test_rank_code_larger_is_finer():
    assert rank_code("species") > rank_code("genus") > rank_code("tribe") > rank_code("family")


def test_parse_rank_canonical_lower_case():
    assert parse_rank(" Genus ") == "genus"
    assert parse_rank("SPECIES") == "species"


@pytest.mark.parametrize(("level", "rank"), [(10, "species"), (20, "genus"), (30, "family"), (70, "kingdom")])
def test_rank_from_level(level, rank):
    assert rank_from_level(level) == rank
    assert RANK_LEVELS[rank] == level


def test_rank_from_level_text_and_fractions():
    assert rank_from_level("20") == "genus"
    assert rank_from_level(34.5) == "parvorder"


def test_sort_fine_to_coarse():
    assert sort_fine_to_coarse(["family", "species", "tribe", "genus"]) == ["species", "genus", "tribe", "family"]


def test_check_rollup_order_canonicalises():
    assert check_rollup_order(["Species", "GENUS", "family"]) == ["species", "genus", "family"]


def test_check_thresholds_accepts_bounds_and_strings():
    assert check_thresholds({"Species": "0.8", "genus": 1, "family": 1e-9}) == {
        "species": 0.8,
        "genus": 1.0,
        "family": 1e-9,
    }
