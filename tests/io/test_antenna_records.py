"""Antenna's JSON as plain records, and thresholds in Antenna's form: no server, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from taxopost.io.antenna import (
    CYCLE,
    MISSING_SOURCE,
    ClassificationRef,
    ConnectorError,
    antenna_task,
    chain_order,
    local_time,
)
from taxopost.io.antenna.client import _retry_after
from taxopost.io.antenna.records import id_from_link, parse_category_map, parse_taxon
from taxopost.io.antenna.rollup import antenna_rollup_config


def test_local_time_reads_naive_times_in_the_servers_zone():
    zone = ZoneInfo("America/New_York")
    assert local_time("2024-06-30T22:00:00", zone, where="x") == datetime(2024, 7, 1, 2, tzinfo=UTC)
    assert local_time("2024-01-15T22:00:00", zone, where="x") == datetime(2024, 1, 16, 3, tzinfo=UTC)  # EST
    assert local_time("2024-06-30T22:00:00+00:00", zone, where="x") == datetime(2024, 6, 30, 22, tzinfo=UTC)
    assert local_time(None, zone, where="x") is None
    with pytest.raises(ConnectorError, match="not an ISO 8601"):
        local_time("yesterday", zone, where="capture 3")


def test_ids_come_from_links_objects_or_numbers():
    assert id_from_link("http://h/api/v2/occurrences/7/", field="occurrence", where="d") == 7
    assert id_from_link({"id": 3, "details": "..."}, field="taxon", where="d") == 3
    assert id_from_link(5, field="x", where="d") == 5
    assert id_from_link(None, field="x", where="d") is None
    with pytest.raises(ConnectorError, match="expected a link or an id"):
        id_from_link("nowhere", field="occurrence", where="detection 1")


def test_taxa_ranks_are_lower_case_and_parents_read_either_way():
    listed = parse_taxon({"id": 44, "name": "Acronicta lepusculina", "rank": "SPECIES", "parent_id": 40})
    detail = parse_taxon({"id": 44, "name": "Acronicta lepusculina", "rank": "SPECIES",
                          "parent": {"id": 40}, "gbif_taxon_key": 5})  # fmt: skip
    assert (listed.rank, listed.parent_id, listed.gbif_key) == ("species", 40, None)
    assert (detail.parent_id, detail.gbif_key) == (40, 5)


def test_a_category_map_whose_data_disagrees_with_its_labels_is_refused():
    good = parse_category_map({"id": 1, "labels": ["a", "b"], "data": [{"index": 1, "label": "b", "gbif_key": 9}]})
    assert good.gbif_keys == [None, 9]
    with pytest.raises(ConnectorError, match=r"its label differs from labels\[0\]"):
        parse_category_map({"id": 1, "labels": ["a", "b"], "data": [{"index": 0, "label": "b"}]})


def test_retry_after_in_seconds_or_as_a_date_and_capped():
    assert _retry_after("3") == 3.0
    assert _retry_after("100000") == 120.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: at once
    assert _retry_after(None) is None and _retry_after("soon") is None


def test_thresholds_in_antennas_form():
    config = antenna_rollup_config({"genus": 0.7, "species": 0.9}, ["species", "genus", "family"], capture_set_id=4)
    assert config == {
        "source_image_collection_id": 4,
        "thresholds": {"SPECIES": 0.9, "GENUS": 0.7},
        "rollup_order": ["SPECIES", "GENUS"],
    }


def _ref(pk: int, applied_to: int | None = None) -> ClassificationRef:
    return ClassificationRef(id=pk, algorithm_key="a", terminal=False, applied_to=applied_to)


def test_chain_order_puts_sources_first_whatever_the_listed_order():
    kept, left_out = chain_order([_ref(3, 2), _ref(2, 1), _ref(1), _ref(4, 1)])
    assert [(ref.id, depth) for ref, depth in kept] == [(1, 0), (2, 1), (4, 1), (3, 2)]
    assert not left_out


def test_chain_order_leaves_out_missing_sources_loops_and_what_stands_on_them():
    kept, left_out = chain_order([_ref(1), _ref(2, 9), _ref(3, 2), _ref(4, 5), _ref(5, 4), _ref(6, 6)])
    assert [ref.id for ref, _ in kept] == [1]
    assert left_out == {MISSING_SOURCE: 2, CYCLE: 3}


@pytest.mark.parametrize(
    ("algorithm", "task"),
    [
        (
            {"key": "rank-rollup-1", "name": "Rank rollup", "description": "Post-processing task: rank_rollup"},
            "rank_rollup",
        ),
        ({"key": "rankrolluptask-1", "name": "RankRollupTask", "task_type": "post_processing"}, "rank_rollup"),
        (
            {"key": "small-size-filter-1", "name": "Small Size Filter", "task_type": "post_processing"},
            "small_size_filter",
        ),
        ({"key": "m_filtered_by_taxa_list_3", "name": "m (filtered)", "task_type": "classification"}, "class_masking"),
        ({"key": "rec-ne-america-species-40", "name": "AMI", "task_type": "classification"}, None),
    ],
)
def test_antenna_task_recognises_antennas_post_processing_algorithms(algorithm, task):
    assert antenna_task(algorithm) == task
