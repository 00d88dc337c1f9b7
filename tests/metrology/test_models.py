"""The input models' JSON Schemas are strict JSON; every word a report prints has both languages."""

from __future__ import annotations

import json
import typing

import pytest
from pydantic import BaseModel

from metrology.conformity import Decision, DecisionRule, RuleKind, Tolerance
from metrology.correction import ChannelCalibration
from metrology.labels import LABELS, label
from metrology.reference import DriftCurve, DriftTerm
from metrology.specification import Specification
from metrology.uncertainty import Budget, Distribution, Evaluation

INPUT_MODELS: list[type[BaseModel]] = [
    Budget, ChannelCalibration, Specification, DecisionRule, Tolerance, DriftCurve, DriftTerm,
]  # fmt: skip


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda m: m.__name__)
def test_json_schema_is_strict_json_and_refuses_unknown_fields(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    json.dumps(schema, allow_nan=False)  # no Infinity / NaN defaults
    assert schema.get("additionalProperties") is False


def test_infinite_dof_is_null_in_the_schema_and_in_json() -> None:
    dof = DriftTerm.model_json_schema()["properties"]["dof"]
    assert dof["default"] is None and {"type": "null"} in dof["anyOf"]
    assert (
        json.loads(DriftTerm(change=1.0, standard_uncertainty=0.1).model_dump_json())["dof"] is None
    )


@pytest.mark.parametrize("vocabulary", [Decision, RuleKind, Distribution, Evaluation])
def test_every_word_a_report_prints_has_english_and_vietnamese(vocabulary: object) -> None:
    for value in typing.get_args(vocabulary):
        assert set(LABELS[value]) == {"en", "vi"}, value
        assert label(value, "en") and label(value, "vi")
    assert label("conditional_fail", "vi") == "Không đạt có điều kiện"
    assert label("unknown-key", "vi") == "unknown-key"
