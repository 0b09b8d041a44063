"""A map in another world geometry lands on the right source slice and pixel."""

from __future__ import annotations

import random

import numpy as np
import pytest
import SimpleITK as sitk

from dicom_node.errors import ResultsError
from pipeline.results.heatmap_geometry import reference_image, resample_to_slices, sort_slices
from tests.results_testdata import gaussian_blob


def test_sort_slices_orders_along_the_normal(source_series):
    slices = list(source_series["T1"])
    random.Random(3).shuffle(slices)
    ordered = sort_slices(slices)
    z = [float(ds.ImagePositionPatient[2]) for ds in ordered]
    assert z == sorted(z)


def test_reference_image_geometry(source_series):
    slices = source_series["T1"]
    image = reference_image(slices)
    assert image.GetSize() == (64, 64, 8)
    first = slices[0]
    assert image.GetOrigin() == pytest.approx([float(v) for v in first.ImagePositionPatient])
    assert image.GetSpacing()[2] == pytest.approx(5.0)
    assert image.GetSpacing()[0] == pytest.approx(float(first.PixelSpacing[1]))


def test_map_in_model_geometry_is_mapped_back_to_the_source_slices(source_series):
    slices = sort_slices(source_series["FLAIR"])
    # A model-space map: 2 mm isotropic, larger field of view, shifted origin.
    target_slice, target_row, target_col = 5, 20, 41
    ds = slices[target_slice]
    spacing = [float(v) for v in ds.PixelSpacing]
    world = np.array(
        [
            float(ds.ImagePositionPatient[0]) + target_col * spacing[1],
            float(ds.ImagePositionPatient[1]) + target_row * spacing[0],
            float(ds.ImagePositionPatient[2]),
        ]
    )
    model_origin = np.array([-140.0, -150.0, -80.0])
    model_spacing = 2.0
    centre_index = (world - model_origin) / model_spacing  # (x, y, z)
    volume = gaussian_blob((90, 150, 150), tuple(centre_index[::-1]), sigma=3.0)
    heatmap = sitk.GetImageFromArray(volume)
    heatmap.SetOrigin(tuple(model_origin))
    heatmap.SetSpacing((model_spacing,) * 3)

    mapped = resample_to_slices(heatmap, slices)
    assert mapped.shape == (8, 64, 64)
    peak = np.unravel_index(int(np.argmax(mapped)), mapped.shape)
    assert peak[0] == target_slice
    # Linear interpolation of a 2 mm grid: the peak is within one voxel of either grid.
    assert abs(int(peak[1]) - target_row) * spacing[0] <= max(model_spacing, spacing[0])
    assert abs(int(peak[2]) - target_col) * spacing[1] <= max(model_spacing, spacing[1])
    assert mapped.max() > 0.5


def test_missing_geometry_is_an_error(source_series):
    ds = source_series["T1"][0]
    del ds.ImagePositionPatient
    with pytest.raises(ResultsError, match="ImagePositionPatient"):
        sort_slices([ds])
