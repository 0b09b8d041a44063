"""End to end with real peers: storescu -> ``dicom-node serve`` (managed worker, machine Redis,
a tiny bundle trained here) -> SR + heatmaps delivered to an Orthanc started by the test.

Checks what arrives in the PACS against what the node recorded: same study, scores and calls
equal to the registry's result, references to the source series, series descriptions, zero
dciodvfy / DicomSRValidator errors on every emitted object; a late instance makes a second
SR referencing the first (Predecessor Documents); a study with no usable sequence gets a
"not analysed" SR with the reason. The tiny bundle's scores mean nothing: plumbing only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from pipeline.results.model import AnalysisResult, NotAnalysedResult
from pipeline.results.sr import SR_SERIES_DESCRIPTION
from pipeline.results.sr_read import read_sr_file
from pipeline.series import select_series
from tests.analysis_support import AET, node_results, node_status
from tests.integration.e2e.conftest import Node
from tests.integration.orthanc import OrthancServer, send_with_storescu
from tests.orchestration_support import wait_until
from tests.unit.analysis.conftest import write_synthetic
from tests.validators import dciodvfy_errors, pixelmed_sr_errors

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"


def _study_uid(folder: Path) -> str:
    first = next(folder.rglob("*.dcm"))
    return str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID)


def _wait_state(node: Node, study_uid: str, version: int, states: set[str]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        study = node_status(node.data_dir).get(study_uid)
        if not study or study["version"] != version or study["state"] not in states:
            return None
        deliveries = study["deliveries"]
        if deliveries and all(d["state"] == "delivered" for d in deliveries):
            return study
        return None

    study = wait_until(done, 240, 1.0, f"study {study_uid} v{version} in {states}, delivered")
    assert isinstance(study, dict)
    return study


def _pacs_objects(pacs: OrthancServer, study_uid: str, tmp: Path) -> dict[str, list[Path]]:
    """Files of the study in Orthanc, by SOP Class UID (downloaded)."""
    out: dict[str, list[Path]] = {}
    for instance in pacs.find("Instance", {"StudyInstanceUID": study_uid}):
        path = tmp / f"{instance['ID']}.dcm"
        path.write_bytes(pacs.instance_file(instance["ID"]))
        sop_class = str(pydicom.dcmread(path, stop_before_pixels=True).SOPClassUID)
        out.setdefault(sop_class, []).append(path)
    return out


def _assert_valid(paths: list[Path]) -> None:
    for path in paths:
        assert dciodvfy_errors(path) == [], path
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.SOPClassUID == SR_CLASS:
            assert pixelmed_sr_errors(path) == [], path


def test_abnormal_study_results_arrive_in_the_same_study_and_reanalysis_chains(
    node: Node, tmp_path: Path
) -> None:
    folder = write_synthetic(tmp_path / "study", 31, ["T2", "FLAIR", "DWI"], haemorrhage=True)
    study_uid = _study_uid(folder)
    sources = sorted(folder.rglob("*.dcm"))
    send_with_storescu(sources, node.port, AET)
    study = _wait_state(node, study_uid, 1, {"delivered"})
    recorded = node_results(node.data_dir, study_uid)
    doc = recorded["result"]
    assert recorded["job_state"] == "succeeded" and doc["status"] == "analysed"
    stages = {"load", "preprocess", "encode", "score", "heatmaps", "write"}
    assert set(doc["stage_timings"]) >= stages

    downloads = tmp_path / "pacs"
    downloads.mkdir()
    objects = _pacs_objects(node.pacs, study_uid, downloads)
    (sr_path,) = objects[SR_CLASS]
    sr_ds = pydicom.dcmread(sr_path)
    assert sr_ds.SOPInstanceUID == recorded["sr_sop_instance_uid"]
    assert sr_ds.SeriesDescription == SR_SERIES_DESCRIPTION
    source_header = pydicom.dcmread(sources[0], stop_before_pixels=True)
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "AccessionNumber"):
        assert sr_ds.get(keyword) == source_header.get(keyword), keyword

    sr = read_sr_file(sr_path)
    assert isinstance(sr, AnalysisResult)
    assert sr.triage.score == pytest.approx(doc["triage"]["score"], abs=1e-6)
    assert sr.triage.abnormal == doc["triage"]["abnormal"]
    assert {f.finding_id for f in sr.findings} == {
        fid for fid, f in doc["findings"].items() if f["threshold"] is not None
    }
    for finding in sr.findings:
        expected = doc["findings"][finding.finding_id]
        assert finding.score == pytest.approx(expected["score"], abs=1e-6)
        assert finding.present == expected["present"]
        assert finding.threshold == pytest.approx(expected["threshold"], abs=1e-6)
    source_series = {
        str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID) for p in sources
    }
    assert {s.series_instance_uid for s in sr.series} == set(doc["series"].values())
    assert {s.series_instance_uid for s in sr.series} <= source_series
    assert set(sr.sequences_used) == set(doc["sequences_used"]) == {"T2", "FLAIR", "DWI"}

    captures = [pydicom.dcmread(p) for p in objects[SC_CLASS]]
    by_series: dict[str, list[pydicom.Dataset]] = {}
    for ds in captures:
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    assert set(by_series) == {h["series_instance_uid"] for h in doc["heatmaps"]}
    assert "triage" in {h["finding_id"] for h in doc["heatmaps"]}
    for heatmap in doc["heatmaps"]:
        series = by_series[heatmap["series_instance_uid"]]
        assert len(series) == heatmap["instances"] == 5
        assert all("NOT FOR DIAGNOSTIC USE" in ds.SeriesDescription for ds in series)
        assert all(ds.StudyInstanceUID == study_uid for ds in series)
        drawn_on = doc["series"][heatmap["sequence"]]
        assert all(
            ds.SourceImageSequence[0].ReferencedSOPInstanceUID
            in next(s.sop_instance_uids for s in sr.series if s.series_instance_uid == drawn_on)
            for ds in series
        )
    _assert_valid([sr_path, *objects[SC_CLASS]])

    # a late instance re-opens the study: version 2, a new SR referencing the first
    selection = select_series(folder)
    unused = [e for e in selection.series if not selection.is_selected(e.series_uid)]
    assert unused  # the localizer: a late copy in it leaves the analysed inputs unchanged
    late = pydicom.dcmread(unused[0].sources[0])
    late.SOPInstanceUID = generate_uid()
    late.file_meta.MediaStorageSOPInstanceUID = late.SOPInstanceUID
    late.InstanceNumber = 999
    late_path = tmp_path / "late.dcm"
    late.save_as(late_path, enforce_file_format=True)
    send_with_storescu([late_path], node.port, AET)
    study = _wait_state(node, study_uid, 2, {"delivered"})
    assert [(j["version"], j["state"]) for j in study["jobs"]] == [
        (1, "succeeded"),
        (2, "succeeded"),
    ]
    second = node_results(node.data_dir, study_uid)
    again = tmp_path / "pacs2"
    again.mkdir()
    srs = {
        pydicom.dcmread(p).SOPInstanceUID: p
        for p in _pacs_objects(node.pacs, study_uid, again)[SR_CLASS]
    }
    assert set(srs) == {recorded["sr_sop_instance_uid"], second["sr_sop_instance_uid"]}
    new_sr = read_sr_file(srs[second["sr_sop_instance_uid"]])
    assert new_sr.predecessor is not None
    assert new_sr.predecessor.sop_instance_uid == recorded["sr_sop_instance_uid"]
    assert new_sr.predecessor.series_instance_uid == sr_ds.SeriesInstanceUID
    _assert_valid([srs[second["sr_sop_instance_uid"]]])


def test_study_without_usable_sequence_gets_a_not_analysed_sr(node: Node, tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "study", 32, ["T1"])
    study_uid = _study_uid(folder)
    send_with_storescu(sorted(folder.rglob("*.dcm")), node.port, AET)
    study = _wait_state(node, study_uid, 1, {"not_analysed"})
    reason = study["not_analysed_reason"]
    assert reason.startswith("no usable sequence")
    downloads = tmp_path / "pacs"
    downloads.mkdir()
    objects = _pacs_objects(node.pacs, study_uid, downloads)
    assert SC_CLASS not in objects
    (sr_path,) = objects[SR_CLASS]
    sr = read_sr_file(sr_path)
    assert isinstance(sr, NotAnalysedResult)
    assert sr.reason == reason
    assert pydicom.dcmread(sr_path).SeriesDescription == SR_SERIES_DESCRIPTION
    _assert_valid([sr_path])
