"""read_labels and read_category_map: the three JSON shapes and every malformed input."""

from __future__ import annotations

import json

import pytest

from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import InputError
from taxopost.io import read_category_map, read_labels, read_taxonomy


@pytest.fixture
def taxonomy(write):
    path = write("t.csv", "speciesKey,genus,species\n11,Vanessa,Vanessa atalanta\n12,Vanessa,Vanessa cardui\n")
    return read_taxonomy(path, id_column="speciesKey")


def test_read_labels_list_in_index_order(write):
    assert read_labels(write("m.json", '["b", "a", " c "]')) == ["b", "a", "c"]


def test_read_labels_list_of_integer_ids(write):
    assert read_labels(write("m.json", "[1730978, 1731811]")) == ["1730978", "1731811"]


def test_read_labels_object_label_to_index(write):
    assert read_labels(write("m.json", '{"1731811": 1, "1730978": 0}')) == ["1730978", "1731811"]


def test_read_labels_list_of_index_label_objects(write):
    path = write("m.json", json.dumps([{"index": 1, "label": "b"}, {"index": 0, "label": "a"}]))
    assert read_labels(path) == ["a", "b"]


def test_read_labels_missing_index_is_named(write):
    with pytest.raises(InputError, match=r"m\.json: index of 'b'=2: indices must be exactly 0..1.*missing: \[1\]"):
        read_labels(write("m.json", '{"a": 0, "b": 2}'))


def test_read_labels_duplicate_index_is_named(write):
    path = write("m.json", json.dumps([{"index": 0, "label": "a"}, {"index": 0, "label": "b"}]))
    with pytest.raises(InputError, match=r"m\.json: index=0: given to both 'a' and 'b'"):
        read_labels(path)


def test_read_labels_string_index_is_not_an_integer(write):
    with pytest.raises(InputError, match=r"m\.json: index of 'a'='0': an index must be an integer"):
        read_labels(write("m.json", '{"a": "0"}'))


def test_read_labels_float_index_is_not_an_integer(write):
    with pytest.raises(InputError, match=r"index of entry 0 \('a'\)=0.5: an index must be an integer"):
        read_labels(write("m.json", '[{"index": 0.5, "label": "a"}]'))


def test_read_labels_duplicate_label_in_a_list(write):
    with pytest.raises(InputError, match=r"m\.json: label='a': appears more than once \(indices 0 and 2\)"):
        read_labels(write("m.json", '["a", "b", "a "]'))


def test_read_labels_duplicate_key_in_an_object(write):
    with pytest.raises(InputError, match=r"m\.json: label='a': appears more than once \(indices 0 and 1\)"):
        read_labels(write("m.json", '{"a": 0, "a": 1}'))


def test_read_labels_empty_label(write):
    with pytest.raises(InputError, match=r"m\.json: label of index 1=' ': a label must not be empty"):
        read_labels(write("m.json", '["a", " "]'))


def test_read_labels_null_label(write):
    with pytest.raises(InputError, match=r"label of index 0=None: a label must be a string"):
        read_labels(write("m.json", '[{"index": 0, "label": null}]'))


def test_read_labels_entry_with_wrong_keys(write):
    with pytest.raises(InputError, match=r"entry 1=\['idx', 'label'\]: each entry must be an object"):
        read_labels(write("m.json", '[{"index": 0, "label": "a"}, {"idx": 1, "label": "b"}]'))


def test_read_labels_not_json_names_the_position(write):
    with pytest.raises(InputError, match=r"m\.json:1:\d+: file=.*is not valid JSON"):
        read_labels(write("m.json", '["a", "b"'))


def test_read_labels_empty_file(write):
    with pytest.raises(InputError, match=r"m\.json'?: is empty"):
        read_labels(write("m.json", ""))


def test_read_labels_binary_file(write):
    with pytest.raises(InputError, match=r"m\.json:1: .*not UTF-8"):
        read_labels(write("m.json", b"\x89PNG\r\n\x1a\n\xff\xff"))


def test_read_labels_wrong_top_level_shape(write):
    with pytest.raises(InputError, match=r"m\.json: category map='str': expected a JSON list"):
        read_labels(write("m.json", '"a"'))


def test_read_labels_no_labels(write):
    with pytest.raises(InputError, match=r"m\.json: category map=\[\]: has no labels"):
        read_labels(write("m.json", "{}"))


def test_read_category_map_resolves_ids_and_names(write, taxonomy):
    category_map = read_category_map(write("m.json", '["11", "Vanessa"]'), taxonomy)
    assert category_map.taxon_names() == ["Vanessa atalanta", "Vanessa"]


def test_read_category_map_unresolved_label_names_the_file(write, taxonomy):
    with pytest.raises(InputError, match=r"m\.json: labels=\['Danaus'\]: 1 of 2 labels resolve to no taxon"):
        read_category_map(write("m.json", '["11", "Danaus"]'), taxonomy)


def test_read_category_map_exclude_keeps_unresolved_classes(write, taxonomy):
    category_map = read_category_map(write("m.json", '["11", "Danaus"]'), taxonomy, on_unresolved="exclude")
    assert category_map.unresolved == ("Danaus",)
    assert category_map.class_taxa[1] == NO_TAXON
