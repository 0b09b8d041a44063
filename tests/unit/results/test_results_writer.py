"""write_results: one SR plus one SC series per heatmap, in the study, readable back."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from dicom_node.errors import ResultsError
from pipeline.results.sr_read import read_sr_file
from pipeline.results.writer import TRIAGE_HEATMAP, HeatmapInput, write_results
from tests.results_testdata import abnormal_result, gaussian_blob, not_analysed_result


def test_writes_sr_and_one_series_per_heatmap(study, source_series, tmp_path: Path):
    result = abnormal_result(study, source_series)
    heat = gaussian_blob((8, 64, 64), (4, 32, 32))
    written = write_results(
        result,
        tmp_path / "out",
        [
            HeatmapInput("acute_infarct", "FLAIR", source_series["FLAIR"], heat),
            HeatmapInput(TRIAGE_HEATMAP, "T1", source_series["T1"], heat),
        ],
        slices_per_heatmap=3,
    )
    assert written.study_instance_uid == study.study_instance_uid
    assert len(written.files) == 1 + 2 * 3
    assert all(p.exists() for p in written.files)
    assert read_sr_file(written.sr.path) == result
    by_label: dict[str, set[str]] = {}
    for obj in written.heatmaps:
        ds = dcmread(obj.path)
        assert ds.SOPInstanceUID == obj.sop_instance_uid
        assert ds.StudyInstanceUID == study.study_instance_uid
        by_label.setdefault(obj.label, set()).add(obj.series_instance_uid)
    assert set(by_label) == {"acute_infarct", TRIAGE_HEATMAP}
    series_uids = {uid for uids in by_label.values() for uid in uids}
    assert len(series_uids) == 2 and written.sr.series_instance_uid not in series_uids
    numbers = {int(dcmread(o.path).SeriesNumber) for o in written.heatmaps}
    assert numbers == {9002, 9003}


def test_heatmap_of_an_unknown_finding_is_refused(study, source_series, tmp_path: Path):
    heat = gaussian_blob((8, 64, 64), (4, 32, 32))
    with pytest.raises(ResultsError, match="'atrophy'"):
        write_results(
            abnormal_result(study, source_series),
            tmp_path,
            [HeatmapInput("atrophy", "T1", source_series["T1"], heat)],
        )


def test_not_analysed_result_takes_no_heatmaps(study, source_series, tmp_path: Path):
    heat = gaussian_blob((8, 64, 64), (4, 32, 32))
    with pytest.raises(ResultsError, match="not-analysed"):
        write_results(
            not_analysed_result(study),
            tmp_path,
            [HeatmapInput(TRIAGE_HEATMAP, "T1", source_series["T1"], heat)],
        )
    written = write_results(not_analysed_result(study), tmp_path)
    assert written.heatmaps == [] and written.sr.path.exists()


def test_heatmap_from_another_study_is_refused(study, source_series, tmp_path: Path):
    from tests.results_testdata import make_mr_series, make_study_identity

    other = make_mr_series(make_study_identity(99))
    with pytest.raises(ResultsError, match="is not the result's study"):
        write_results(
            abnormal_result(study, source_series),
            tmp_path,
            [HeatmapInput("acute_infarct", "T1", other, gaussian_blob((8, 64, 64), (4, 4, 4)))],
        )
