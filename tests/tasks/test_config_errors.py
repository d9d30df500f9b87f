"""Config errors as the API and the admin form report them: each names its field and the value."""

from __future__ import annotations

import types
import typing

import pytest
from pydantic import ValidationError

from taxopost.errors import InputError
from taxopost.tasks import all_specs, config_field_errors, parse_config
from taxopost.tasks.occurrence_consensus import OccurrenceConsensusConfig


def _field_errors(model, data: dict) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return config_field_errors(caught.value)


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"method": "median"}, {"method": ["Input should be 'mean' or 'geometric' (got 'median')"]}),
        ({"min_detections": 1}, {"min_detections": ["Input should be greater than or equal to 2 (got 1)"]}),
        (
            {"weighting": ["area"]},
            {"weighting": ["Input should be 'none', 'area' or 'detector_confidence' (got ['area'])"]},
        ),
    ],
)
def test_a_refused_value_is_quoted(data, errors):
    """pydantic's own messages named no value, unlike the shared checks' "(got 1.5)"."""
    assert _field_errors(OccurrenceConsensusConfig, data) == errors


def test_a_missing_field_and_an_unknown_key_quote_nothing():
    assert _field_errors(OccurrenceConsensusConfig, {"colour": "red"}) == {"colour": ["Extra inputs are not permitted"]}


@pytest.mark.parametrize(("key", "field"), [("", "''"), ("a.b", "'a.b'")])
def test_an_empty_or_dotted_key_is_named_quoted(key, field):
    """``{"": 1}`` was reported under "config", the key of a problem of the whole config."""
    assert _field_errors(OccurrenceConsensusConfig, {key: 1}) == {field: ["Extra inputs are not permitted"]}
    with pytest.raises(InputError) as caught:
        parse_config(OccurrenceConsensusConfig, {key: 1}, prefix="config.")
    assert caught.value.field == f"config.{field}"


INTEGER_FIELDS = [
    (spec.config_model, name)
    for spec in all_specs()
    for name, info in spec.config_model.model_fields.items()
    if int in (info.annotation, *typing.get_args(info.annotation))
]


def test_the_tasks_have_integer_fields_to_check():
    assert (OccurrenceConsensusConfig, "min_detections") in INTEGER_FIELDS


@pytest.mark.parametrize(("model", "field"), INTEGER_FIELDS)
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_no_integer(model, field, value):
    """pydantic's lax mode took ``true`` as 1: "greater than or equal to 2" for ``min_detections: true``."""
    assert _field_errors(model, {field: value}) == {field: [f"Input should be a valid integer (got {value})"]}


FLOAT_FIELDS = [
    (spec.config_model, name)
    for spec in all_specs()
    for name, info in spec.config_model.model_fields.items()
    if info.annotation is float
    or (typing.get_origin(info.annotation) is types.UnionType and float in typing.get_args(info.annotation))
]


def test_a_boolean_is_no_number_either():
    """``size_threshold: true`` was read as 1.0 and got a range message."""
    from taxopost.tasks.small_size_filter import SmallSizeFilterConfig

    assert (SmallSizeFilterConfig, "size_threshold") in FLOAT_FIELDS
    for model, field in FLOAT_FIELDS:
        assert _field_errors(model, {field: True}) == {field: ["Input should be a valid number (got True)"]}
    assert SmallSizeFilterConfig.model_validate({"size_threshold": 1e-3}).size_threshold == 1e-3


@pytest.mark.parametrize("value", [3, 3.0, "3"])
def test_an_integral_number_is_still_an_integer(value):
    """Strict ints would refuse ``3.0`` (JSON) and ``"3"`` (``--set`` text): they stay valid."""
    assert OccurrenceConsensusConfig.model_validate({"min_detections": value}).min_detections == 3
