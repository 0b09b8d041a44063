"""Every object the results writers emit passes dciodvfy and pixelmed with zero errors.

Warnings that remain, and why they are accepted:

* dciodvfy on the SR: ``Unrecognized defined term <99NTRIAGE> for value 1 of
  attribute <Coding Scheme Designator>`` - our private coding scheme (PS3.16
  8.2: ``99`` prefix), declared in the Coding Scheme Identification Sequence;
  dciodvfy only knows the standard designators.
* pixelmed on the SR: ``CODE (705057003,SCT,"Presence"): Content Item not in
  template`` - the per-finding present/absent Qualitative Evaluation of TID 1501
  (which highdicom builds); pixelmed's compiled TID 1501 lacks that row.
* dcmtk ``dsrdump`` (a third, independent SR parser) on the SR: "The VR checker
  does not support this Specific Character Set: ISO_IR 192" - dcmtk's VR checker
  does not handle UTF-8; the document tree parses.
* The heatmap SCs draw no warnings from dciodvfy.

Any other warning fails the test, so a new one has to be looked at and listed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from pipeline.dicom_fixtures import make_enhanced_mr
from pipeline.heatmaps import display_slices
from pipeline.results.heatmap_geometry import sort_slices
from pipeline.results.model import PredecessorReference
from pipeline.results.sr import build_sr
from pipeline.results.writer import TRIAGE_HEATMAP, HeatmapInput, write_results
from tests.results_testdata import (
    abnormal_result,
    gaussian_blob,
    normal_result,
    not_analysed_result,
    with_user_query,
)
from tests.validators import (
    dciodvfy_errors,
    dciodvfy_warnings,
    dsrdump_errors,
    pixelmed_error_lines,
    pixelmed_sr_output,
    pixelmed_warning_lines,
)

ACCEPTED_DCIODVFY_WARNINGS = ("Unrecognized defined term <99NTRIAGE>",)
ACCEPTED_PIXELMED_WARNINGS = ('CODE (705057003,SCT,"Presence"): Content Item not in template',)


@pytest.fixture
def emitted_srs(study, source_series, tmp_path: Path) -> dict[str, Path]:
    """The SR variants: normal, not analysed, and an abnormal re-analysis with a
    user query (abnormal, predecessor and a finding without a call: one pixelmed
    run, ~6-15 s each, covers all three)."""
    paths = {}
    first = build_sr(normal_result(study, source_series))
    cases = {
        "normal": first,
        "not_analysed": build_sr(not_analysed_result(study)),
        "reanalysis": build_sr(
            with_user_query(
                abnormal_result(
                    study, source_series, predecessor=PredecessorReference.from_dataset(first)
                )
            )
        ),
    }
    for name, sr in cases.items():
        paths[name] = tmp_path / f"{name}.dcm"
        sr.save_as(paths[name], enforce_file_format=True)
    return paths


def _unexpected(warnings: list[str], accepted: tuple[str, ...]) -> list[str]:
    return [w for w in warnings if not any(a in w for a in accepted)]


@pytest.mark.slow
def test_every_sr_variant_has_zero_errors(emitted_srs):
    for name, path in emitted_srs.items():
        assert dciodvfy_errors(path) == [], name
        assert _unexpected(dciodvfy_warnings(path), ACCEPTED_DCIODVFY_WARNINGS) == [], name
        assert dsrdump_errors(path) == [], name
        output = pixelmed_sr_output(path)  # one JVM run per file
        assert any("Found Root Template TID_1500" in line for line in output), (name, output)
        assert pixelmed_error_lines(output) == [], name
        assert _unexpected(pixelmed_warning_lines(output), ACCEPTED_PIXELMED_WARNINGS) == [], name


def test_heatmap_captures_have_zero_errors_and_warnings(study, source_series, tmp_path):
    heat = gaussian_blob((8, 64, 64), (4, 32, 32))
    written = write_results(
        abnormal_result(study, source_series),
        tmp_path,
        [
            HeatmapInput("acute_infarct", "FLAIR", source_series["FLAIR"], heat),
            HeatmapInput(TRIAGE_HEATMAP, "T1", source_series["T1"], heat),
        ],
        slices_per_heatmap=2,
    )
    assert len(written.heatmaps) == 4
    for obj in written.heatmaps:
        assert dciodvfy_errors(obj.path) == [], obj.path.name
        assert dciodvfy_warnings(obj.path) == [], obj.path.name


def test_validator_helpers_catch_an_invalid_object(study, source_series, tmp_path):
    """The helpers report errors (so a clean result means something)."""
    sr = build_sr(normal_result(study, source_series))
    del sr.CompletionFlag  # type 1 in the SR Document General module
    path = tmp_path / "broken.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) != []


def test_heatmap_on_an_enhanced_mr_series_cites_its_frames(study, source_series, tmp_path):
    """Captures of a multi-frame (Enhanced MR) source: one per frame position, each
    citing the instance and its frame, with zero dciodvfy errors and warnings."""
    header = {element.keyword: element.value for element in study.to_dataset()}
    header["SeriesDescription"] = "FLAIR enhanced"
    volume = np.arange(8 * 64 * 64, dtype=np.uint16).reshape(8, 64, 64) % 1000
    enhanced = make_enhanced_mr(volume, (1.0, 1.0, 5.0), header=header, frame_order_seed=3)
    views = sort_slices(display_slices([enhanced]))
    assert len(views) == 8
    numbers = [view.referenced_frame_number for view in views]
    assert sorted(numbers) == list(range(1, 9)) and numbers != list(range(1, 9))  # shuffled
    positions = {
        frame: tuple(item.PlanePositionSequence[0].ImagePositionPatient)
        for frame, item in enumerate(enhanced.PerFrameFunctionalGroupsSequence, start=1)
    }
    for view in views:  # each view shows its own frame, where that frame is
        assert tuple(view.ImagePositionPatient) == positions[view.referenced_frame_number]
        frame = enhanced.pixel_array[view.referenced_frame_number - 1]
        assert np.array_equal(view.pixel_array, frame)
    heat = gaussian_blob((8, 64, 64), (4, 32, 32))
    written = write_results(
        abnormal_result(study, source_series),
        tmp_path,
        [HeatmapInput("acute_infarct", "FLAIR", views, heat)],
        slices_per_heatmap=3,
    )
    assert len(written.heatmaps) == 3
    for obj in written.heatmaps:
        assert dciodvfy_errors(obj.path) == [], obj.path.name
        assert dciodvfy_warnings(obj.path) == [], obj.path.name
        capture = dcmread(obj.path)
        (source,) = capture.SourceImageSequence
        assert source.ReferencedSOPInstanceUID == enhanced.SOPInstanceUID
        assert source.ReferencedSOPClassUID == enhanced.SOPClassUID
        assert 1 <= source.ReferencedFrameNumber <= 8
        assert capture.StudyInstanceUID == study.study_instance_uid
