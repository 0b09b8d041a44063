"""Results sent to a real PACS land in the source study and read back unchanged.

dcmtk ``storescu -R`` sends the source series, then the SR and the heatmap
captures, to an Orthanc started by the test; Orthanc's REST API shows one study
holding all of them, and the SR downloaded from Orthanc parses to the same result.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from pipeline.results.model import PredecessorReference
from pipeline.results.sr_read import read_sr, read_sr_file
from pipeline.results.writer import TRIAGE_HEATMAP, HeatmapInput, write_results
from tests.integration.orthanc import OrthancServer, send_with_storescu
from tests.results_testdata import (
    abnormal_result,
    gaussian_blob,
    make_mr_series,
    make_study_identity,
    write_series,
)

pytestmark = pytest.mark.integration


def test_sr_and_heatmaps_land_in_the_source_study(orthanc: OrthancServer, tmp_path: Path):
    study = make_study_identity(21)
    series = {
        "T1": make_mr_series(study, sequence="T1", series_number=1),
        "FLAIR": make_mr_series(study, sequence="FLAIR", series_number=2),
    }
    source_files = [
        path
        for seq, datasets in series.items()
        for path in write_series(datasets, tmp_path / "source" / seq)
    ]
    send_with_storescu(source_files, orthanc.dicom_port, orthanc.aet)

    result = abnormal_result(study, series)
    heat = gaussian_blob((8, 64, 64), (5, 30, 40), sigma=5.0)
    written = write_results(
        result,
        tmp_path / "results",
        [
            HeatmapInput("acute_infarct", "FLAIR", series["FLAIR"], heat),
            HeatmapInput(TRIAGE_HEATMAP, "T1", series["T1"], heat),
        ],
        slices_per_heatmap=3,
    )
    send_with_storescu(written.files, orthanc.dicom_port, orthanc.aet)

    studies = orthanc.studies()
    assert len(studies) == 1, [s["MainDicomTags"] for s in studies]
    tags = studies[0]["MainDicomTags"]
    assert tags["StudyInstanceUID"] == study.study_instance_uid
    assert tags["AccessionNumber"] == study.accession_number
    assert studies[0]["PatientMainDicomTags"]["PatientID"] == study.patient_id

    by_uid = {s["MainDicomTags"]["SeriesInstanceUID"]: s for s in orthanc.series()}
    assert {s["ParentStudy"] for s in by_uid.values()} == {studies[0]["ID"]}
    expected = {ds[0].SeriesInstanceUID for ds in series.values()}
    expected |= {written.sr.series_instance_uid}
    expected |= {h.series_instance_uid for h in written.heatmaps}
    assert set(by_uid) == expected
    sr_series = by_uid[written.sr.series_instance_uid]
    assert sr_series["MainDicomTags"]["Modality"] == "SR"
    assert "NOT FOR DIAGNOSTIC USE" in sr_series["MainDicomTags"]["SeriesDescription"]
    for heatmap in written.heatmaps:
        sc = by_uid[heatmap.series_instance_uid]
        assert len(sc["Instances"]) == 3
        assert "NOT FOR DIAGNOSTIC USE" in sc["MainDicomTags"]["SeriesDescription"]

    (found,) = orthanc.find("Instance", {"SOPInstanceUID": written.sr.sop_instance_uid})
    downloaded = tmp_path / "from_orthanc.dcm"
    downloaded.write_bytes(orthanc.instance_file(found["ID"]))
    assert read_sr_file(downloaded) == result

    sc_instance = orthanc.find("Instance", {"SOPInstanceUID": written.heatmaps[0].sop_instance_uid})
    sc_file = tmp_path / "sc_from_orthanc.dcm"
    sc_file.write_bytes(orthanc.instance_file(sc_instance[0]["ID"]))
    sc = dcmread(sc_file)
    assert sc.BurnedInAnnotation == "YES"
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID in {
        ds.SOPInstanceUID for ds in series["FLAIR"]
    }


def test_reanalysis_sr_references_the_first_in_the_pacs(orthanc: OrthancServer, tmp_path: Path):
    study = make_study_identity(22)
    series = {"FLAIR": make_mr_series(study, sequence="FLAIR", series_number=3, slices=4)}
    send_with_storescu(
        write_series(series["FLAIR"], tmp_path / "source"), orthanc.dicom_port, orthanc.aet
    )
    first = write_results(abnormal_result(study, series), tmp_path / "first")
    send_with_storescu(first.files, orthanc.dicom_port, orthanc.aet)
    predecessor = PredecessorReference.from_dataset(dcmread(first.sr.path))
    second = write_results(
        abnormal_result(study, series, predecessor=predecessor), tmp_path / "second"
    )
    send_with_storescu(second.files, orthanc.dicom_port, orthanc.aet)

    reports = orthanc.find("Series", {"Modality": "SR"})
    assert len(reports) == 2
    uids = {written.sr.sop_instance_uid for written in (first, second)}
    parsed = {}
    for report in reports:
        (instance_id,) = report["Instances"]
        path = tmp_path / f"{instance_id}.dcm"
        path.write_bytes(orthanc.instance_file(instance_id))
        ds = dcmread(path)
        assert ds.SOPInstanceUID in uids
        parsed[ds.SOPInstanceUID] = read_sr(ds)
    assert parsed[first.sr.sop_instance_uid].predecessor is None
    assert parsed[second.sr.sop_instance_uid].predecessor == predecessor
    assert predecessor.sop_instance_uid == first.sr.sop_instance_uid
