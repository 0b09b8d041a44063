"""Heatmap secondary captures: slice choice, pixels, caption and DICOM attributes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import SecondaryCaptureImageStorage

from dicom_node.errors import ResultsError
from pipeline.results.sc import (
    NOT_FOR_DIAGNOSTIC_USE,
    Caption,
    build_heatmap_series,
    patient_orientation,
    render,
    select_slices,
)
from tests.results_testdata import MODEL, gaussian_blob

CAPTION = Caption(
    label="Acute infarct",
    score=0.81,
    threshold=0.42,
    present=True,
    sequence="FLAIR",
    model_name=MODEL.name,
    model_version=MODEL.version,
)


def test_slices_are_centred_on_the_peak():
    heat = gaussian_blob((20, 8, 8), (12, 4, 4))
    assert select_slices(heat, 5) == [10, 11, 12, 13, 14]
    assert select_slices(gaussian_blob((20, 8, 8), (0, 4, 4)), 5) == [0, 1, 2, 3, 4]
    assert select_slices(gaussian_blob((20, 8, 8), (19, 4, 4)), 5) == [15, 16, 17, 18, 19]
    assert select_slices(heat, 50) == list(range(20))
    with pytest.raises(ResultsError):
        select_slices(heat[0], 3)


def test_patient_orientation_of_axial_and_sagittal(source_series):
    ds = source_series["T1"][0]
    assert patient_orientation(ds) == ("L", "P")
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    assert patient_orientation(ds) == ("P", "F")
    ds.ImageOrientationPatient = [0.0866, 0.9873, -0.1332, -0.0424, -0.1300, -0.9906]
    assert patient_orientation(ds) == ("P", "F")  # oblique sagittal: dominant axes


def test_render_blends_colour_only_where_the_map_is_high():
    pixels = np.tile(np.linspace(0, 1000, 64, dtype=np.float32), (64, 1))
    heat = gaussian_blob((1, 64, 64), (0, 32, 32), sigma=5.0)[0]
    rgb = render(pixels, heat, (0.0, 1000.0), CAPTION.lines(3, 8))
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    assert rgb.shape[1] == 512  # upsampled 8x
    factor = 8
    centre = rgb[32 * factor, 32 * factor].astype(int)
    corner = rgb[2 * factor, 60 * factor].astype(int)
    assert np.ptp(centre) > 60  # coloured
    assert np.ptp(corner) <= 2  # grey anatomy untouched
    band = rgb[64 * factor :]
    assert band.shape[0] > 40
    assert (band.max(axis=2) > 200).sum() > 500  # text drawn
    yellow = (band[..., 0] > 200) & (band[..., 1] > 180) & (band[..., 2] < 80)
    assert yellow.sum() > 100  # the "not for diagnostic use" line


def test_caption_says_not_for_diagnostic_use():
    lines = CAPTION.lines(3, 8)
    assert lines[-1] == NOT_FOR_DIAGNOSTIC_USE
    assert "0.810" in lines[0] and "PRESENT" in lines[0]
    assert MODEL.version in lines[1] and "4/8" in lines[1]
    assert "map:" not in lines[1]


def test_a_map_averaged_over_sequences_says_so(source_series):
    averaged = dataclasses.replace(CAPTION, map_from=("DWI", "FLAIR", "T1C"))
    assert averaged.lines(0, 5)[1].endswith("FLAIR slice 1/5 | map: DWI+FLAIR+T1C")
    heat = gaussian_blob((8, 64, 64), (6, 30, 40), sigma=5.0)
    images = build_heatmap_series(source_series["FLAIR"], heat, averaged, MODEL, series_number=9003)
    assert "(the mean of the DWI, FLAIR, T1C maps)" in images[0].DerivationDescription


def test_heatmap_series_attributes(source_series, study, tmp_path: Path):
    source = source_series["FLAIR"]
    heat = gaussian_blob((8, 64, 64), (6, 30, 40), sigma=5.0)
    images = build_heatmap_series(source, heat, CAPTION, MODEL, series_number=9002)
    assert len(images) == 5
    assert len({im.SeriesInstanceUID for im in images}) == 1
    assert [im.InstanceNumber for im in images] == [1, 2, 3, 4, 5]
    for im, index in zip(images, [3, 4, 5, 6, 7], strict=True):
        path = tmp_path / f"{im.SOPInstanceUID}.dcm"
        im.save_as(path, enforce_file_format=True)
        ds = dcmread(path)
        assert ds.SOPClassUID == SecondaryCaptureImageStorage
        assert ds.StudyInstanceUID == study.study_instance_uid
        assert ds.PatientID == study.patient_id
        assert ds.AccessionNumber == study.accession_number
        assert ds.SeriesInstanceUID != source[0].SeriesInstanceUID
        assert ds.BurnedInAnnotation == "YES"
        assert ds.PhotometricInterpretation == "RGB" and ds.BitsAllocated == 8
        assert "NOT FOR DIAGNOSTIC USE" in ds.SeriesDescription
        ref = ds.SourceImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == source[index].SOPInstanceUID
        assert "Acute infarct" in ds.DerivationDescription
        # The caption band differs from anything in the source: it is not black.
        rows = ds.pixel_array.shape[0]
        assert rows > 512
        assert ds.pixel_array[512:].max() > 200


def test_heatmap_shape_must_match_the_source(source_series):
    with pytest.raises(ResultsError, match="does not match"):
        build_heatmap_series(
            source_series["T1"], np.zeros((3, 64, 64)), CAPTION, MODEL, series_number=9002
        )


def test_source_slices_of_different_sizes_are_refused(source_series):
    source = list(source_series["T1"])
    source[3].Rows = 32
    with pytest.raises(ResultsError, match="Rows/Columns"):
        build_heatmap_series(source, np.zeros((8, 64, 64)), CAPTION, MODEL, series_number=9002)
