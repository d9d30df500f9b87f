"""Task configs: validation through the core's own checks, one-line errors, JSON schemas."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from taxopost.core import DEFAULT_THRESHOLDS
from taxopost.errors import InputError
from taxopost.tasks import config_error, parse_config
from taxopost.tasks.class_masking import ClassMaskingConfig
from taxopost.tasks.rank_rollup import DEFAULT_ROLLUP_MODE, RankRollupConfig
from taxopost.tasks.small_size_filter import SmallSizeFilterConfig

CONFIGS = [RankRollupConfig, ClassMaskingConfig, SmallSizeFilterConfig]


# -- rank roll-up ------------------------------------------------------------------------------


def test_rank_rollup_config_defaults():
    config = parse_config(RankRollupConfig, None)
    assert config.thresholds == DEFAULT_THRESHOLDS
    assert config.order == ["species", "genus", "family"]
    assert config.mode == DEFAULT_ROLLUP_MODE == "lineage"


def test_rank_rollup_config_canonicalises_ranks_and_fills_order():
    config = RankRollupConfig(thresholds={"Genus": 0.5, "FAMILY": "0.3"}, mode="distribution")
    assert config.thresholds == {"genus": 0.5, "family": 0.3}
    assert config.order == ["genus", "family"]
    assert config.mode == "distribution"


def test_rank_rollup_config_explicit_order():
    config = RankRollupConfig(thresholds={"species": 0.9, "tribe": 0.7}, order=["Species", "tribe"])
    assert config.order == ["species", "tribe"]


def test_rank_rollup_config_round_trips():
    config = RankRollupConfig(thresholds={"species": 0.9, "genus": 0.7}, mode="distribution")
    assert RankRollupConfig.model_validate(config.model_dump()) == config
    assert RankRollupConfig.model_validate_json(config.model_dump_json()) == config


def test_configs_are_frozen():
    config = RankRollupConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.mode = "distribution"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"thresholds": {"genus": 1.5}}, "thresholds.genus", "thresholds.genus=1.5: must be in (0, 1]"),
        ({"thresholds": {"genus": 0}}, "thresholds.genus", "thresholds.genus=0: must be in (0, 1]"),
        ({"thresholds": {"genus": -0.5}}, "thresholds.genus", "thresholds.genus=-0.5: must be in (0, 1]"),
        (
            {"thresholds": {"genus": "high"}},
            "thresholds.genus",
            "thresholds.genus='high': must be a number in (0, 1]",
        ),
        ({"thresholds": {}}, "thresholds", "thresholds={}: give at least one rank threshold"),
        ({"thresholds": {"spieces": 0.5}}, "thresholds.spieces", "thresholds.spieces='spieces': unknown rank"),
        ({"order": ["genus", "species"]}, "order", "order=['genus', 'species']: ranks must go from fine to coarse"),
        ({"order": ["tribus"]}, "order", "order='tribus': unknown rank"),
        ({"order": []}, "order", "order=[]: the roll-up order needs at least one rank"),
        (
            {"thresholds": {"genus": 0.5}, "order": ["species", "genus"]},
            "order",
            "order=['species', 'genus']: no threshold for species",
        ),
        (
            {"order": ["species", "genus"]},
            "thresholds",
            "thresholds={'species': 0.8, 'genus': 0.6, 'family': 0.4}: family not in the roll-up order",
        ),
        ({"mode": "best"}, "mode", "mode='best': Input should be 'lineage' or 'distribution'"),
        ({"colour": "red"}, "colour", "colour='red': Extra inputs are not permitted"),
    ],
)
def test_rank_rollup_config_errors_name_field_and_value(data, field, message):
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        parse_config(RankRollupConfig, data)
    assert caught.value.field == field


# -- class masking and small-size filter ------------------------------------------------------


def test_class_masking_config():
    config = parse_config(ClassMaskingConfig, {"taxa_list": "ne-america.txt"})
    assert (config.taxa_list, config.source_algorithm, config.reweight) == ("ne-america.txt", None, True)
    config = parse_config(ClassMaskingConfig, {"taxa_list": "x", "source_algorithm": "ami-v2", "reweight": False})
    assert (config.source_algorithm, config.reweight) == ("ami-v2", False)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "taxa_list", "Field required"),
        ({"taxa_list": ""}, "taxa_list", "taxa_list='': String should have at least 1 character"),
        ({"taxa_list": "x", "reweight": "maybe"}, "reweight", "reweight='maybe': Input should be a valid boolean"),
        ({"taxa_list": "x", "keep": ["Erebidae"]}, "keep", "keep=['Erebidae']: Extra inputs are not permitted"),
    ],
)
def test_class_masking_config_errors(data, field, message):
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        parse_config(ClassMaskingConfig, data)
    assert caught.value.field == field


def test_small_size_filter_config():
    assert parse_config(SmallSizeFilterConfig, {}).size_threshold == 0.0008
    assert parse_config(SmallSizeFilterConfig, {"size_threshold": "0.01"}).size_threshold == 0.01


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "size_threshold=0.0: must be in the open interval (0, 1)"),
        (1, "size_threshold=1.0: must be in the open interval (0, 1)"),
        (1.5, "size_threshold=1.5: must be in the open interval (0, 1)"),
        (-0.1, "size_threshold=-0.1: must be in the open interval (0, 1)"),
        ("abc", "size_threshold='abc': Input should be a valid number"),
    ],
)
def test_small_size_filter_config_errors(value, message):
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        parse_config(SmallSizeFilterConfig, {"size_threshold": value})
    assert caught.value.field == "size_threshold"


def test_small_size_filter_config_extra_key():
    with pytest.raises(InputError, match=re.escape("threshold=0.1: Extra inputs are not permitted")):
        parse_config(SmallSizeFilterConfig, {"threshold": 0.1})


# -- turning pydantic errors into one InputError ------------------------------------------------


def test_parse_config_prefix_names_where_the_config_came_from():
    with pytest.raises(InputError, match=re.escape("steps[1].mode='best':")) as caught:
        parse_config(RankRollupConfig, {"mode": "best"}, prefix="steps[1].")
    assert caught.value.field == "steps[1].mode"


def test_config_error_from_validation_error():
    with pytest.raises(ValidationError) as caught:
        RankRollupConfig(thresholds={"genus": 2})
    error = config_error(caught.value)
    assert isinstance(error, InputError)
    assert (error.field, error.value) == ("thresholds.genus", 2)


# -- JSON schemas (they drive the admin form and the API) ---------------------------------------


@pytest.mark.parametrize("model", CONFIGS, ids=[model.__name__ for model in CONFIGS])
def test_config_json_schema(model):
    schema = model.model_json_schema()
    json.dumps(schema)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["description"]
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name


def test_config_json_schema_details():
    rollup = RankRollupConfig.model_json_schema()["properties"]
    assert rollup["mode"]["enum"] == ["lineage", "distribution"]
    assert rollup["mode"]["default"] == "lineage"
    assert rollup["thresholds"]["additionalProperties"] == {"type": "number"}
    assert ClassMaskingConfig.model_json_schema()["required"] == ["taxa_list"]
    assert SmallSizeFilterConfig.model_json_schema()["properties"]["size_threshold"]["default"] == 0.0008
