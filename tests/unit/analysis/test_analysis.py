"""The analysis of a study folder: scores -> SR + heatmap captures, missing and unusable input,
re-analysis with a predecessor, and the task hook ``run_analysis`` with the registry.

The tiny bundle's scores are meaningless; these tests check plumbing, conformance and
that every output agrees with the others.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from dicom_node.config import load_settings
from dicom_node.errors import BundleError, ConfigError
from dicom_node.registry import (
    AnalysisJob,
    JobState,
    Study,
    StudyState,
    create_registry_engine,
    init_registry,
    session_factory,
)
from pipeline import analysis as analysis_module
from pipeline.heatmaps import head_region, mean_map, onto_grid, peak_world, saliency_maps, to_sitk
from pipeline.model import ModelBundle, load_bundle
from pipeline.model.queries import TRIAGE_FINDING
from pipeline.results.heatmap_geometry import resample_to_slices
from pipeline.results.model import AnalysisResult, NotAnalysedResult
from pipeline.results.sr import SR_SERIES_DESCRIPTION
from pipeline.results.sr_read import read_sr_file
from pipeline.series import select_series
from pipeline.study_analysis import (
    NO_USABLE_SEQUENCE,
    STAGES,
    StageTimer,
    analyse_folder,
    heatmap_targets,
    make_heatmaps,
    prepare_sequences,
)
from tests.unit.analysis.conftest import write_synthetic
from tests.validators import dciodvfy_errors, pixelmed_sr_errors


@pytest.fixture(scope="module")
def analysed(
    abnormal_study: Path, tiny_bundle: ModelBundle, tmp_path_factory: pytest.TempPathFactory
):
    out = tmp_path_factory.mktemp("results")
    return analyse_folder(abnormal_study, tiny_bundle, out, slices_per_heatmap=3)


def test_scores_calls_and_sr_agree(analysed, tiny_bundle: ModelBundle) -> None:
    scores = analysed.scores
    assert scores is not None and analysed.written is not None
    assert analysed.skipped == {}
    assert set(scores.sequences_used) == {"T2", "FLAIR", "DWI"}
    sr = read_sr_file(analysed.written.sr.path)
    assert isinstance(sr, AnalysisResult)
    assert sr == analysed.result
    assert sr.study.study_instance_uid == analysed.study_uid
    assert set(sr.sequences_used) == {"T2", "FLAIR", "DWI"}
    assert sr.model.device_uid == tiny_bundle.device_uid
    triage = scores.findings[TRIAGE_FINDING]
    assert sr.triage.score == pytest.approx(triage.score, abs=1e-6)
    assert sr.triage.abnormal == triage.present
    for finding in sr.findings:
        expected = scores.findings[finding.finding_id]
        assert finding.score == pytest.approx(expected.score, abs=1e-6)
        assert finding.present == (expected.score >= expected.threshold)
    called = {f for f, r in scores.findings.items() if r.threshold is not None} - {TRIAGE_FINDING}
    assert {f.finding_id for f in sr.findings} == called
    doc = analysed.to_dict()
    assert doc["triage"]["score"] == triage.score
    assert doc["sr"]["sop_instance_uid"] == analysed.written.sr.sop_instance_uid
    assert set(doc["stage_timings"]) == set(STAGES)
    assert all(doc["stage_timings"][s] > 0 for s in STAGES)


def test_heatmaps_for_triage_and_present_findings(analysed) -> None:
    assert analysed.scores is not None and analysed.written is not None
    expected = {"triage" if f == TRIAGE_FINDING else f for f in heatmap_targets(analysed.scores)}
    assert {h.finding_id for h in analysed.heatmaps} == expected
    assert {h.label for h in analysed.written.heatmaps} == expected
    for summary in analysed.heatmaps:
        assert summary.instances == 3, [(h.label, h.path.name) for h in analysed.written.heatmaps]
        assert summary.sequence in analysed.result.sequences_used
    captures = [pydicom.dcmread(str(h.path)) for h in analysed.written.heatmaps]
    study_uid = analysed.study_uid
    assert {ds.StudyInstanceUID for ds in captures} == {study_uid}
    source_series = {s.series_instance_uid for s in analysed.result.series}
    for ds in captures:
        assert "NOT FOR DIAGNOSTIC USE" in ds.SeriesDescription.upper()
        ref = ds.SourceImageSequence[0].ReferencedSOPInstanceUID
        assert any(ref in s.sop_instance_uids for s in analysed.result.series)
    assert pydicom.dcmread(str(analysed.written.sr.path)).SeriesDescription == SR_SERIES_DESCRIPTION
    assert source_series


@pytest.mark.slow
def test_every_emitted_object_passes_the_validators(analysed) -> None:
    assert analysed.written is not None
    for path in analysed.written.files:
        assert dciodvfy_errors(path) == [], path
    assert pixelmed_sr_errors(analysed.written.sr.path) == []


def test_missing_sequences_are_skipped_and_named(tiny_bundle: ModelBundle, tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "t2", 22, ["T2"], hydrocephalus=True)
    result = analyse_folder(folder, tiny_bundle, tmp_path / "out", heatmaps=False)
    assert set(result.skipped) == {"FLAIR", "DWI"}
    assert all("no" in why.lower() for why in result.skipped.values())
    assert result.result.sequences_used == ("T2",)
    sr = read_sr_file(result.written.sr.path)  # type: ignore[union-attr]
    assert isinstance(sr, AnalysisResult)
    assert sr.sequences_used == ("T2",)
    assert all(f.sequences == ("T2",) for f in sr.findings)
    assert result.written is not None and result.written.heatmaps == []


def test_no_usable_sequence_gives_a_not_analysed_sr(
    tiny_bundle: ModelBundle, tmp_path: Path
) -> None:
    folder = write_synthetic(tmp_path / "t1", 23, ["T1"])
    result = analyse_folder(folder, tiny_bundle, tmp_path / "out")
    assert result.scores is None
    assert result.not_analysed_reason is not None
    assert result.not_analysed_reason.startswith(NO_USABLE_SEQUENCE)
    assert set(result.skipped) == {"T2", "FLAIR", "DWI"}
    assert result.written is not None and result.written.heatmaps == []
    sr = read_sr_file(result.written.sr.path)
    assert isinstance(sr, NotAnalysedResult)
    assert sr.reason == result.not_analysed_reason
    assert dciodvfy_errors(result.written.sr.path) == []


def _registry_study(database: str, study_uid: str, sr_uid: str | None) -> None:
    engine = create_registry_engine(database)
    init_registry(engine)
    with session_factory(engine)() as session:
        study = Study(study_uid=study_uid, state=StudyState.ANALYSING, version=2)
        session.add(study)
        session.flush()
        session.add(
            AnalysisJob(
                study_id=study.id, version=1, state=JobState.SUCCEEDED, sr_sop_instance_uid=sr_uid
            )
        )
        session.add(AnalysisJob(study_id=study.id, version=2, state=JobState.RUNNING))
        session.commit()
    engine.dispose()


def _study_uid(folder: Path) -> str:
    first = next(folder.rglob("IM_*"))
    return str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID)


def test_run_analysis_writes_the_outbox_and_chains_versions(
    abnormal_study: Path, tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    study_uid = _study_uid(abnormal_study)
    settings = load_settings(data_dir=tmp_path / "node", bundle=tiny_bundle_dir)
    shutil.copytree(abnormal_study, settings.storage_dir / study_uid)
    first = analysis_module.run_analysis(study_uid, 1, settings)
    assert "not_analysed_reason" not in first
    outputs = [Path(p) for p in first["outputs"]]
    assert outputs and all(p.parent == settings.outbox_dir / study_uid / "v1" for p in outputs)
    assert outputs[0].name == f"SR_{first['sr_sop_instance_uid']}.dcm"
    assert first["model_version"] == "0.0.1"
    assert set(first["stage_timings"]) == set(STAGES)
    assert first["result"]["findings"] and first["result"]["status"] == "analysed"

    _registry_study(settings.database_url, study_uid, first["sr_sop_instance_uid"])
    second = analysis_module.run_analysis(study_uid, 2, settings)
    sr2 = pydicom.dcmread(second["outputs"][0])
    (previous,) = sr2.PredecessorDocumentsSequence
    first_sr = pydicom.dcmread(first["outputs"][0])
    assert previous.StudyInstanceUID == study_uid
    series = previous.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == first_sr.SeriesInstanceUID
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == first_sr.SOPInstanceUID
    parsed = read_sr_file(second["outputs"][0])
    assert parsed.predecessor is not None
    assert parsed.predecessor.sop_instance_uid == first["sr_sop_instance_uid"]


def test_run_analysis_reports_the_sites_user_queries(
    abnormal_study: Path, tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    study_uid = _study_uid(abnormal_study)
    queries = tmp_path / "queries.json"
    # "haemorrhage" is a finding of the bundle: skipped, it must keep its calibrated call.
    queries.write_text('{"arachnoid_cyst": ["arachnoid cyst"], "haemorrhage": "a bleed"}')
    settings = load_settings(data_dir=tmp_path / "node", bundle=tiny_bundle_dir, queries=queries)
    shutil.copytree(abnormal_study, settings.storage_dir / study_uid)
    outcome = analysis_module.run_analysis(study_uid, 1, settings)
    findings = {f.finding_id: f for f in read_sr_file(outcome["outputs"][0]).findings}  # type: ignore[union-attr]
    assert findings["arachnoid_cyst"].is_user_query
    assert findings["haemorrhage"].threshold is not None
    assert outcome["result"]["findings"]["arachnoid_cyst"]["user_defined"]


def test_user_queries_follow_the_file_and_survive_a_broken_one(
    tiny_bundle: ModelBundle, tmp_path: Path
) -> None:
    queries = tmp_path / "queries.toml"
    queries.write_text('cyst = "arachnoid cyst"\n')
    settings = load_settings(data_dir=tmp_path / "node", queries=queries)
    assert analysis_module.user_queries(settings, tiny_bundle, "1.2.3") == {
        "cyst": ["arachnoid cyst"]
    }
    queries.write_text('lipoma = ["lipoma", "fatty mass"]\n')
    os.utime(queries, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime
    assert analysis_module.user_queries(settings, tiny_bundle, "1.2.3") == {
        "lipoma": ["lipoma", "fatty mass"]
    }
    queries.write_text("not = = toml")
    os.utime(queries, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert analysis_module.user_queries(settings, tiny_bundle, "1.2.3") is None
    queries.unlink()
    assert analysis_module.user_queries(settings, tiny_bundle, "1.2.3") is None


def test_run_analysis_without_a_bundle_or_study(
    tmp_path: Path, tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(analysis_module.DEMO_BUNDLE_ENV, "")
    settings = load_settings(data_dir=tmp_path / "node")
    assert analysis_module.run_analysis("1.2.3", 1, settings) == {
        "not_analysed_reason": analysis_module.NO_BUNDLE_REASON
    }
    monkeypatch.setenv(analysis_module.DEMO_BUNDLE_ENV, str(tiny_bundle_dir))
    assert analysis_module.bundle_path(settings) == tiny_bundle_dir
    settings = load_settings(data_dir=tmp_path / "node", bundle=tmp_path)
    reason = analysis_module.run_analysis("1.2.3", 1, settings)["not_analysed_reason"]
    assert "cannot be used" in reason
    settings = load_settings(data_dir=tmp_path / "node", bundle=tiny_bundle_dir)
    reason = analysis_module.run_analysis("1.2.3", 1, settings)["not_analysed_reason"]
    assert "missing from storage" in reason


def test_bundle_is_loaded_once_per_process(tiny_bundle_dir: Path) -> None:
    first = analysis_module.get_bundle(tiny_bundle_dir, "cpu")
    assert analysis_module.get_bundle(tiny_bundle_dir, "cpu") is first


def test_site_operating_points_move_the_calls_not_the_scores(tiny_bundle_dir: Path) -> None:
    own = analysis_module.get_bundle(tiny_bundle_dir, "cpu")
    site = analysis_module.get_bundle(tiny_bundle_dir, "cpu", "youden,abnormal=sens90")
    assert site is not own and site.device_uid == own.device_uid
    calibrated = [f for f in site.manifest.queries.findings if f.thresholds]
    points = {f.id: f.operating_point for f in calibrated}
    assert points.pop("abnormal") == "sens90" and set(points.values()) == {"youden"}
    assert {f.operating_point for f in own.manifest.queries.findings} == {"sens90"}
    dim = int(own.queries.normal.shape[1])
    embedding = torch.nn.functional.normalize(torch.linspace(-1, 1, dim), dim=0)
    seq = own.sequences[0]
    mine, theirs = own.score({seq: embedding}), site.score({seq: embedding})
    finding = next(f for f in calibrated if f.id != "abnormal")
    ours, moved = mine.findings[finding.id], theirs.findings[finding.id]
    assert ours.score == moved.score
    assert moved.operating_point == "youden"
    assert moved.threshold == finding.thresholds["youden"]
    assert moved.present == (moved.score >= finding.thresholds["youden"])


def test_site_operating_points_for_an_unknown_finding_are_refused(
    tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(BundleError, match=r"\['cyst'\] not in the bank"):
        analysis_module.get_bundle(tiny_bundle_dir, "cpu", "cyst=youden")
    settings = load_settings(
        data_dir=tmp_path / "node", bundle=tiny_bundle_dir, operating_points="cyst=youden"
    )
    reason = analysis_module.run_analysis("1.2.3", 1, settings)["not_analysed_reason"]
    assert "cannot be used" in reason and "cyst" in reason
    with pytest.raises(ConfigError, match="operating_points"):
        load_settings(data_dir=tmp_path / "node", operating_points="youden,sens95")


def test_undecodable_pixels_give_a_not_analysed_sr_naming_the_sequence(
    tiny_bundle: ModelBundle, tmp_path: Path
) -> None:
    folder = write_synthetic(tmp_path / "t2", 24, ["T2"])
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        if "t2" in str(ds.get("SeriesDescription", "")).lower():
            ds.PixelData = b"\x00" * 10  # truncated: cannot be decoded
            ds.save_as(path)
    result = analyse_folder(folder, tiny_bundle, tmp_path / "out")
    assert result.not_analysed_reason is not None
    assert "T2: cannot decode PixelData" in result.not_analysed_reason
    assert result.written is not None
    sr = read_sr_file(result.written.sr.path)
    assert isinstance(sr, NotAnalysedResult) and sr.reason == result.not_analysed_reason


def test_a_user_query_cannot_replace_a_calibrated_finding(tiny_bundle: ModelBundle) -> None:
    dim = int(tiny_bundle.queries.normal.shape[1])
    embeddings = {tiny_bundle.sequences[0]: torch.nn.functional.normalize(torch.ones(dim), dim=0)}
    with pytest.raises(BundleError, match="haemorrhage"):
        tiny_bundle.score(embeddings, extra_queries={"haemorrhage": ["a bleed"]})
    scores = tiny_bundle.score(embeddings, extra_queries={"lipoma": ["lipoma"]})
    assert scores.findings["lipoma"].user_defined and scores.findings["lipoma"].present is None


def test_a_finding_can_be_drawn_from_the_mean_of_several_sequences_maps(
    tiny_bundle_dir: Path, abnormal_study: Path
) -> None:
    """``heatmap_sources`` averages the sequences' maps, each moved onto the grid of the
    sequence drawn on; the capture says which maps it shows."""
    bundle = load_bundle(tiny_bundle_dir)  # its own copy: the spec is changed below
    prepared, _ = prepare_sequences(select_series(abnormal_study), bundle, StageTimer())
    with torch.inference_mode():
        embeddings = {
            s: bundle.encode_image(s, torch.from_numpy(p.tensor)) for s, p in prepared.items()
        }
    scores = bundle.score(embeddings)
    (alone,), _ = make_heatmaps(bundle, scores, prepared, targets=[TRIAGE_FINDING])
    assert alone.map_from == ()
    spec = bundle.manifest.scoring
    bundle.manifest.scoring = spec.model_copy(
        update={"heatmap_sources": {TRIAGE_FINDING: ["DWI", "FLAIR", "T2", "T1C"]}}
    )
    (mean,), peaks = make_heatmaps(bundle, scores, prepared, targets=[TRIAGE_FINDING])
    drawn = prepared[mean.sequence]
    assert mean.sequence == alone.sequence
    assert mean.map_from == ("DWI", "FLAIR", "T2")  # T1C: the study has none
    per_sequence = {
        s: saliency_maps(
            "gradient_input",
            bundle.image_encoders[s],
            torch.from_numpy(p.tensor),
            bundle.queries,
            [TRIAGE_FINDING],
            spec,
            within=head_region(p.tensor, bundle.preprocess_spec.clamp[0]),
        )[TRIAGE_FINDING]
        for s, p in prepared.items()
    }
    expected = mean_map(
        [
            onto_grid(heat, prepared[s].affine_lps, heat.shape, drawn.affine_lps)
            for s, heat in per_sequence.items()
        ],
        within=head_region(drawn.tensor, bundle.preprocess_spec.clamp[0]),
    )
    assert peaks[0][2] == pytest.approx(peak_world(expected, drawn.affine_lps))
    on_slices = resample_to_slices(to_sitk(expected, drawn.affine_lps), mean.source)
    np.testing.assert_allclose(mean.heatmap, on_slices, atol=1e-5)
    assert not np.allclose(mean.heatmap, alone.heatmap, atol=1e-3)
