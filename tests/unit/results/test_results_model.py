"""The typed result models refuse inconsistent input with messages naming the value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydicom.dataset import Dataset

from dicom_node.errors import ResultsError
from pipeline.results.model import (
    AnalysisResult,
    FindingResult,
    ModelIdentity,
    NotAnalysedResult,
    PredecessorReference,
    StudyIdentity,
)
from tests.results_testdata import MODEL, abnormal_result, not_analysed_result


def test_study_identity_copies_patient_and_study_attributes(source_series):
    ds = source_series["T1"][0]
    identity = StudyIdentity.from_dataset(ds)
    assert identity.study_instance_uid == ds.StudyInstanceUID
    assert identity.patient_id == ds.PatientID
    assert identity.accession_number == ds.AccessionNumber
    back = identity.to_dataset()
    assert back.PatientName == ds.PatientName
    assert back.ReferringPhysicianName == ds.ReferringPhysicianName


def test_study_identity_without_study_uid_is_an_error():
    with pytest.raises(ResultsError, match="StudyInstanceUID"):
        StudyIdentity.from_dataset(Dataset())


def test_model_version_must_be_semantic():
    with pytest.raises(ValidationError, match="semantic version"):
        ModelIdentity(name="m", version="v1", device_uid="1.2.3", manufacturer="x")


def test_uids_are_checked():
    with pytest.raises(ValidationError):
        ModelIdentity(name="m", version="1.0.0", device_uid="1.02.x", manufacturer="x")


def test_finding_sequences_must_be_referenced(study, source_series):
    result = abnormal_result(study, {"T1": source_series["T1"]})
    bad = result.findings[0].model_copy(update={"sequences": ("DWI",)})
    with pytest.raises(ValidationError, match="DWI"):
        AnalysisResult.model_validate({**result.model_dump(), "findings": [bad.model_dump()]})


def test_duplicate_finding_ids_are_refused(study, source_series):
    result = abnormal_result(study, source_series)
    finding = result.findings[0].model_dump()
    with pytest.raises(ValidationError, match="not unique"):
        AnalysisResult.model_validate({**result.model_dump(), "findings": [finding, finding]})


def test_finding_id_follows_the_query_bank_pattern():
    with pytest.raises(ValidationError):
        FindingResult(
            finding_id="Acute Infarct",
            display_name="x",
            score=0.1,
            threshold=0.2,
            present=False,
            sequences=("T1",),
        )


def test_predecessor_must_be_in_the_same_study(study):
    other = PredecessorReference(
        study_instance_uid="1.2.3.4",
        series_instance_uid="1.2.3.4.5",
        sop_instance_uid="1.2.3.4.5.6",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.88.34",
    )
    with pytest.raises(ValidationError, match="predecessor StudyInstanceUID"):
        NotAnalysedResult.model_validate(
            {**not_analysed_result(study).model_dump(), "predecessor": other.model_dump()}
        )


def test_sequences_used_keeps_order(study, source_series):
    result = abnormal_result(study, source_series)
    assert result.sequences_used == ("T1", "FLAIR")
    assert result.model == MODEL


def test_results_travel_as_json_through_the_discriminated_union(study, source_series):
    from pydantic import TypeAdapter

    from pipeline.results.model import StudyResult

    adapter = TypeAdapter(StudyResult)
    for result in (abnormal_result(study, source_series), not_analysed_result(study)):
        back = adapter.validate_json(result.model_dump_json())
        assert back == result
        assert type(back) is type(result)
