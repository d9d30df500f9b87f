"""Antenna's REST API v2 as a source of capture sets: the HTTP client and its JSON as plain records.

Django-free, like the rest of :mod:`taxopost.io`: the platform's importer
(``taxopost.observations.antenna``) stores what :class:`AntennaSource` reads.
"""

from __future__ import annotations

from taxopost.io.antenna.client import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    TOKEN_ENV,
    AntennaClient,
    Batch,
    ConnectorError,
    check_base_url,
    is_loopback,
    prefetched,
    read_token,
)
from taxopost.io.antenna.records import (
    CYCLE,
    MISSING_SOURCE,
    AntennaAlgorithm,
    AntennaCategoryMap,
    AntennaClassification,
    AntennaDetection,
    AntennaIdentification,
    AntennaImage,
    AntennaTaxon,
    ClassificationRef,
    antenna_task,
    chain_order,
    local_time,
)
from taxopost.io.antenna.source import AntennaSource, CaptureSetInfo, OccurrencePage

__all__ = [
    "CYCLE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PAGE_SIZE",
    "MISSING_SOURCE",
    "TOKEN_ENV",
    "AntennaAlgorithm",
    "AntennaCategoryMap",
    "AntennaClassification",
    "AntennaClient",
    "AntennaDetection",
    "AntennaIdentification",
    "AntennaImage",
    "AntennaSource",
    "AntennaTaxon",
    "Batch",
    "CaptureSetInfo",
    "ClassificationRef",
    "ConnectorError",
    "OccurrencePage",
    "antenna_task",
    "chain_order",
    "check_base_url",
    "is_loopback",
    "local_time",
    "prefetched",
    "read_token",
]
