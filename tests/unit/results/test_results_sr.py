"""The results SR: TID 1500 structure, study identity, and the build/read round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from highdicom.sr import CodedConcept, Comprehensive3DSR
from pydicom import dcmread
from pydicom.uid import Comprehensive3DSRStorage

from dicom_node.errors import ResultsError
from pipeline.results import codes as rc
from pipeline.results.model import PredecessorReference
from pipeline.results.sr import SR_SERIES_DESCRIPTION, build_sr
from pipeline.results.sr_read import read_sr, read_sr_file
from tests.results_testdata import (
    MODEL,
    abnormal_result,
    normal_result,
    not_analysed_result,
    with_user_query,
)


def _save_and_read(sr, tmp_path: Path, name: str = "sr.dcm"):
    path = tmp_path / name
    sr.save_as(path, enforce_file_format=True)
    return dcmread(path)


def _root_children(ds):
    return {
        (item.ConceptNameCodeSequence[0].CodeValue, item.ValueType): item
        for item in ds.ContentSequence
    }


def test_sr_goes_into_the_original_study_in_a_new_series(study, source_series, tmp_path):
    ds = _save_and_read(build_sr(abnormal_result(study, source_series)), tmp_path)
    assert ds.SOPClassUID == Comprehensive3DSRStorage
    assert ds.StudyInstanceUID == study.study_instance_uid
    assert ds.PatientID == study.patient_id
    assert str(ds.PatientName) == study.patient_name
    assert ds.AccessionNumber == study.accession_number
    source_series_uids = {s[0].SeriesInstanceUID for s in source_series.values()}
    assert ds.SeriesInstanceUID not in source_series_uids
    assert ds.Modality == "SR"
    assert ds.SeriesDescription == SR_SERIES_DESCRIPTION
    assert "NOT FOR DIAGNOSTIC USE" in ds.SeriesDescription


def test_tid_1500_root_rows(study, source_series, tmp_path):
    ds = _save_and_read(build_sr(abnormal_result(study, source_series)), tmp_path)
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    children = _root_children(ds)
    procedure = children[("121058", "CODE")].ConceptCodeSequence[0]
    assert (procedure.CodeValue, procedure.CodingSchemeDesignator) == ("25056-3", "LN")
    observer_type = children[("121005", "CODE")].ConceptCodeSequence[0]
    assert observer_type.CodeValue == "121007"  # Device
    assert MODEL.device_uid == children[("121012", "UIDREF")].UID
    # Qualitative Evaluations comes after Imaging Measurements (content item order).
    codes_in_order = [i.ConceptNameCodeSequence[0].CodeValue for i in ds.ContentSequence]
    assert codes_in_order.index("126010") < codes_in_order.index("C0034375")
    groups = children[("126010", "CONTAINER")].ContentSequence
    assert len(groups) == 5  # four findings + the triage group


def test_report_level_triage_is_in_the_qualitative_evaluations_container(
    study, source_series, tmp_path
):
    for result, expected in (
        (abnormal_result(study, source_series), rc.ABNORMAL),
        (normal_result(study, source_series), rc.NORMAL),
    ):
        ds = _save_and_read(build_sr(result), tmp_path)
        container = _root_children(ds)[("C0034375", "CONTAINER")]
        codes = [
            CodedConcept.from_dataset(i.ConceptCodeSequence[0])
            for i in container.ContentSequence
            if i.ValueType == "CODE"
        ]
        assert codes == [expected]
        texts = [i.TextValue for i in container.ContentSequence if i.ValueType == "TEXT"]
        assert [t.split()[0] for t in texts] == ["T1", "FLAIR"]


def test_contributing_equipment_and_private_scheme(study, source_series, tmp_path):
    ds = _save_and_read(build_sr(abnormal_result(study, source_series)), tmp_path)
    ours = [
        item
        for item in ds.ContributingEquipmentSequence
        if item.get("DeviceSerialNumber") == MODEL.device_uid
    ]
    assert len(ours) == 1
    assert ours[0].Manufacturer == MODEL.manufacturer
    assert ours[0].ManufacturerModelName == MODEL.name
    assert ours[0].SoftwareVersions == MODEL.version
    schemes = [i.CodingSchemeDesignator for i in ds.CodingSchemeIdentificationSequence]
    assert rc.PRIVATE_SCHEME in schemes


def test_evidence_lists_every_source_instance(study, source_series, tmp_path):
    ds = _save_and_read(build_sr(abnormal_result(study, source_series)), tmp_path)
    (study_item,) = ds.CurrentRequestedProcedureEvidenceSequence
    assert study_item.StudyInstanceUID == study.study_instance_uid
    listed = {
        sop.ReferencedSOPInstanceUID
        for series in study_item.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    expected = {ds_.SOPInstanceUID for s in source_series.values() for ds_ in s}
    assert listed == expected


@pytest.mark.parametrize("kind", ["normal", "abnormal"])
def test_round_trip_recovers_the_result(kind, study, source_series, tmp_path):
    result = (normal_result if kind == "normal" else abnormal_result)(study, source_series)
    back = read_sr(_save_and_read(build_sr(result), tmp_path))
    assert back == result
    assert back.triage.abnormal is (kind == "abnormal")
    scores = {f.finding_id: (f.score, f.present, f.sequences) for f in back.findings}
    assert scores == {f.finding_id: (f.score, f.present, f.sequences) for f in result.findings}


def test_user_query_is_scored_not_called(study, source_series, tmp_path):
    result = with_user_query(abnormal_result(study, source_series))
    ds = _save_and_read(build_sr(result), tmp_path)
    back = read_sr(ds)
    assert back == result
    (query,) = [f for f in back.findings if f.is_user_query]
    assert (query.finding_id, query.score, query.threshold, query.present) == (
        "arachnoid_cyst",
        0.37,
        None,
        None,
    )
    report = Comprehensive3DSR.from_dataset(ds).content
    (group,) = [
        g
        for g in report.get_image_measurement_groups()
        if g.tracking_identifier == "User query: arachnoid_cyst (arachnoid_cyst)"
    ]
    assert group.finding_type.scheme_designator == rc.PRIVATE_SCHEME
    assert group.get_qualitative_evaluations(name=rc.PRESENCE) == []
    assert group.get_measurements(name=rc.THRESHOLD) == []
    assert [m.value for m in group.get_measurements(name=rc.SCORE)] == [0.37]
    # The model's own findings keep their calls.
    assert sum(f.present is True for f in back.findings) == 2


def test_not_analysed_round_trip_with_and_without_series(study, source_series, tmp_path):
    for series in (None, {"T1": source_series["T1"]}):
        result = not_analysed_result(study, series)
        ds = _save_and_read(build_sr(result), tmp_path)
        back = read_sr(ds)
        assert back == result
        assert back.status == "not_analysed"
        assert "localizer" in back.reason
        assert ("126010", "CONTAINER") not in _root_children(ds)
        assert ("CurrentRequestedProcedureEvidenceSequence" in ds) is (series is not None)


def test_reanalysis_references_its_predecessor(study, source_series, tmp_path):
    first = _save_and_read(build_sr(normal_result(study, source_series)), tmp_path, "first.dcm")
    predecessor = PredecessorReference.from_dataset(first)
    second_result = abnormal_result(study, source_series, predecessor=predecessor)
    second = _save_and_read(build_sr(second_result), tmp_path, "second.dcm")
    ref = second.PredecessorDocumentsSequence[0]
    assert ref.StudyInstanceUID == study.study_instance_uid
    assert ref.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    sop = ref.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert sop.ReferencedSOPInstanceUID == first.SOPInstanceUID
    assert second.SOPInstanceUID != first.SOPInstanceUID
    back = read_sr_file(tmp_path / "second.dcm")
    assert back.predecessor == predecessor
    assert read_sr(first).predecessor is None


def test_tracking_uids_are_stable_across_reanalysis(study, source_series):
    def tracking_uids(sr):
        report = Comprehensive3DSR.from_dataset(sr).content
        return sorted(g.tracking_uid for g in report.get_image_measurement_groups())

    a = build_sr(abnormal_result(study, source_series))
    b = build_sr(abnormal_result(study, source_series))
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert tracking_uids(a) == tracking_uids(b)
    assert len(set(tracking_uids(a))) == 5


def test_reading_an_image_is_an_error(source_series):
    with pytest.raises(ResultsError, match="not a readable SR"):
        read_sr(source_series["T1"][0])


def test_groups_cite_a_few_evenly_spaced_images_per_series(study, source_series, tmp_path):
    result = abnormal_result(study, source_series)
    ds = _save_and_read(build_sr(result, image_references_per_series=3), tmp_path)
    groups = _root_children(ds)[("126010", "CONTAINER")].ContentSequence
    infarct = groups[0]  # acute_infarct: FLAIR only
    cited = [
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for item in infarct.ContentSequence
        if item.ValueType == "IMAGE"
    ]
    flair = [d.SOPInstanceUID for d in source_series["FLAIR"]]
    assert cited == [flair[0], flair[4], flair[7]]
    assert read_sr(ds) == result  # the evidence still lists every instance


def test_too_few_image_references_is_an_error(study, source_series):
    with pytest.raises(ResultsError, match="image_references_per_series"):
        build_sr(abnormal_result(study, source_series), image_references_per_series=1)


def test_non_ascii_names_and_reasons_survive_as_utf8(study, tmp_path):
    from tests.validators import dciodvfy_errors

    german = study.model_copy(update={"patient_name": "Müller^Jürgen"})
    result = not_analysed_result(german).model_copy(
        update={"reason": "Keine verwertbare Serie – nur Localizer"}
    )
    ds = _save_and_read(build_sr(result), tmp_path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Müller^Jürgen"
    assert read_sr(ds) == result
    assert dciodvfy_errors(tmp_path / "sr.dcm") == []


def test_report_without_our_qualitative_evaluations_is_refused(study, source_series, tmp_path):
    ds = _save_and_read(build_sr(normal_result(study, source_series)), tmp_path)
    ds.ContentSequence = [
        item
        for item in ds.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue != rc.QUALITATIVE_EVALUATIONS.value
    ]
    with pytest.raises(ResultsError, match="Qualitative Evaluations"):
        read_sr(ds)
