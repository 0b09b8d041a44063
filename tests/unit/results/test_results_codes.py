"""Finding types are SNOMED CT where a concept exists, private codes otherwise."""

from __future__ import annotations

from pipeline.results import codes as rc


def test_known_findings_are_snomed():
    expected = {
        "acute_infarct": "432504007",
        "haemorrhage": "1386000",
        "meningioma": "302820008",
        "hydrocephalus": "230745008",
        "demyelination": "6118003",
        "tumour": "126952004",
    }
    for finding_id, code in expected.items():
        concept = rc.finding_type(finding_id, finding_id)
        assert (concept.scheme_designator, concept.value) == ("SCT", code), finding_id


def test_unknown_finding_gets_a_private_code_within_sh_length():
    concept = rc.finding_type("periventricular_white_matter_change", "White matter change")
    assert concept.scheme_designator == rc.PRIVATE_SCHEME
    assert len(concept.value) <= 16
    assert concept.meaning == "White matter change"


def test_private_scheme_is_declared():
    (item,) = rc.coding_scheme_identification()
    assert item.CodingSchemeDesignator == rc.PRIVATE_SCHEME
    assert item.CodingSchemeName


def test_procedure_reported_is_from_cid_100():
    assert (rc.PROCEDURE_REPORTED.value, rc.PROCEDURE_REPORTED.scheme_designator) == (
        "25056-3",
        "LN",
    )
