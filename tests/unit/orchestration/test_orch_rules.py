from __future__ import annotations

import pytest

from dicom_node.config import AnalysisRules
from dicom_node.errors import ConfigError
from dicom_node.rules import evaluate

RULES = AnalysisRules()


def test_mr_brain_by_body_part_is_analysed() -> None:
    decision = evaluate(
        modalities=["MR"], body_parts=["BRAIN"], descriptions=["T1 AX"], rules=RULES
    )
    assert decision.analyse
    assert "BRAIN" in decision.reason


def test_mr_head_by_description_only_is_analysed() -> None:
    decision = evaluate(
        modalities=["MR"], body_parts=[], descriptions=["MRI Head w/o contrast"], rules=RULES
    )
    assert decision.analyse
    assert "MRI Head" in decision.reason


@pytest.mark.parametrize(
    ("modalities", "parts", "descriptions", "expected"),
    [
        (["CT"], ["HEAD"], ["CT HEAD"], "modality CT"),
        (["MR"], ["KNEE"], ["MR KNEE LEFT", "PD FS SAG"], "not a head/brain study"),
        (["MR"], [], ["LUMBAR SPINE"], "body part none"),
    ],
)
def test_other_studies_are_not_analysed_with_reason(
    modalities: list[str], parts: list[str], descriptions: list[str], expected: str
) -> None:
    decision = evaluate(
        modalities=modalities, body_parts=parts, descriptions=descriptions, rules=RULES
    )
    assert not decision.analyse
    assert expected in decision.reason


def test_rules_are_configurable() -> None:
    rules = AnalysisRules(modalities=["CT"], body_parts=["CHEST"], description_patterns=[])
    assert evaluate(modalities=["CT"], body_parts=["chest"], descriptions=[], rules=rules).analyse
    assert not evaluate(
        modalities=["MR"], body_parts=["BRAIN"], descriptions=[], rules=rules
    ).analyse


def test_bad_pattern_names_the_setting() -> None:
    rules = AnalysisRules(description_patterns=["(unclosed"])
    with pytest.raises(ConfigError, match="description_patterns"):
        evaluate(modalities=["MR"], body_parts=[], descriptions=["x"], rules=rules)
