"""Fixtures of the core's tests: the small taxonomies of ``reference.py``, built once."""

from __future__ import annotations

import pytest

from taxopost.core import CategoryMap, Taxonomy
from tests.core.reference import MOTHS, MOTHS_LABELS, VANESSA, VANESSA_LABELS, PlainTaxonomy


@pytest.fixture(scope="module")
def vanessa() -> Taxonomy:
    return Taxonomy(VANESSA)


@pytest.fixture(scope="module")
def vanessa_map(vanessa: Taxonomy) -> CategoryMap:
    return CategoryMap(VANESSA_LABELS, vanessa)


@pytest.fixture(scope="module")
def moths() -> Taxonomy:
    return Taxonomy(MOTHS)


@pytest.fixture(scope="module")
def moths_map(moths: Taxonomy) -> CategoryMap:
    return CategoryMap(MOTHS_LABELS, moths)


@pytest.fixture(scope="module")
def moths_plain() -> PlainTaxonomy:
    return PlainTaxonomy.of(MOTHS)
