"""Fuzzing the file readers: whatever the bytes, a reader returns data or raises InputError.

Bounded for CI (a few hundred examples per reader); the strategies mix valid files with
mutations of them (truncation, byte flips, junk insertion) so the parsers' deep paths run.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taxopost.core.taxonomy import Taxonomy, TaxonRecord
from taxopost.errors import InputError
from taxopost.io import read_labels, read_matrix, read_taxa_list, read_taxonomy

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

LINEAGE = b"order,family,genus,species\nLepidoptera,Nymphalidae,Vanessa,Vanessa atalanta\n"
INAT = b"parent_taxon_id,taxon_id,rank_level,leaf_class_id,name\n,1,70,,Animalia\n1,2,60,,Arthropoda\n"
DWC = b"taxonID,parentNameUsageID,scientificName,taxonRank\n1,,Animalia,kingdom\n2,1,Arthropoda,phylum\n"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _parquet(matrix: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"scores": list(matrix)}), buffer)
    return buffer.getvalue()


SEEDS = {
    ".csv": [LINEAGE, INAT, DWC, b"0.5,0.5\n0.25,0.75\n"],
    ".json": [json.dumps(["a", "b"]).encode(), json.dumps({"a": 0, "b": 1}).encode()],
    ".npy": [_npy(np.eye(3, dtype=np.float32))],
    ".parquet": [_parquet(np.eye(3, dtype=np.float32))],
    ".txt": [b"Vanessa\n# comment\nDanaus\n"],
}


@st.composite
def mutated(draw, suffix: str) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS[suffix])))
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        if action == "truncate":
            del data[position:]
        elif action == "flip":
            data[position] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[position : position + draw(st.integers(1, 8))]
    return bytes(data)


def _taxonomy() -> Taxonomy:
    return Taxonomy([TaxonRecord("Vanessa", "genus"), TaxonRecord("Danaus", "genus")])


def _only_input_errors(function, path) -> None:
    try:
        function(path)
    except InputError as exc:
        assert str(path.name) in str(exc) or exc.field, exc  # names the file or at least the field


@pytest.mark.parametrize(
    ("suffix", "reader"),
    [
        (".csv", read_taxonomy),
        (".csv", read_matrix),
        (".json", read_labels),
        (".npy", read_matrix),
        (".parquet", read_matrix),
        (".txt", lambda path: read_taxa_list(path, _taxonomy())),
    ],
)
def test_readers_raise_only_input_errors_on_mutated_files(tmp_path, suffix, reader):
    @FUZZ
    @given(data=mutated(suffix))
    def check(data: bytes) -> None:
        path = tmp_path / f"fuzz{suffix}"
        path.write_bytes(data)
        _only_input_errors(reader, path)

    check()


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".json", ".npy", ".npz", ".parquet", ".txt"]))
def test_readers_raise_only_input_errors_on_random_bytes(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"random{suffix}"
    path.write_bytes(data)
    for reader in (read_taxonomy, read_matrix, read_labels, lambda p: read_taxa_list(p, _taxonomy())):
        _only_input_errors(reader, path)
