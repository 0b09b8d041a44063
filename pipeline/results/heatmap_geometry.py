"""Map a 3D saliency map back onto the geometry of the source slices.

A map computed on the model's resampled volume carries that volume's world
geometry (origin, spacing, direction, LPS like DICOM). Resampling it onto a
reference grid built from the source series' Image Position / Orientation (Patient)
and Pixel Spacing gives one map plane per original slice, ready to blend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
from pydicom.dataset import Dataset

from dicom_node.errors import ResultsError


def _normal(ds: Dataset) -> npt.NDArray[np.float64]:
    iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
    return np.asarray(np.cross(iop[:3], iop[3:]), dtype=np.float64)


def sort_slices(datasets: Sequence[Dataset]) -> list[Dataset]:
    """The slices of one series ordered along the slice normal (increasing position)."""
    if not datasets:
        raise ResultsError("no source slices were given")
    for ds in datasets:
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if keyword not in ds:
                raise ResultsError(f"{keyword} is missing from source instance {ds.SOPInstanceUID}")
    normal = _normal(datasets[0])
    return sorted(
        datasets,
        key=lambda ds: float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))),
    )


def reference_image(datasets: Sequence[Dataset]) -> sitk.Image:
    """An empty float image with the geometry of the (sorted) source slices."""
    slices = sort_slices(datasets)
    first = slices[0]
    iop = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
    row_cosine, col_cosine = iop[:3], iop[3:]
    normal = _normal(first)
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    if len(slices) > 1:
        positions = [
            float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))) for ds in slices
        ]
        slice_spacing = float(np.median(np.diff(positions)))
    else:
        slice_spacing = float(first.get("SpacingBetweenSlices", first.get("SliceThickness", 1.0)))
    if slice_spacing <= 0:
        raise ResultsError(f"source slices have a non-positive spacing {slice_spacing}")
    image = sitk.Image(int(first.Columns), int(first.Rows), len(slices), sitk.sitkFloat32)
    image.SetOrigin(tuple(float(v) for v in first.ImagePositionPatient))
    image.SetSpacing((col_spacing, row_spacing, slice_spacing))
    direction = np.column_stack([row_cosine, col_cosine, normal])
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return image


def resample_to_slices(heatmap: sitk.Image, datasets: Sequence[Dataset]) -> npt.NDArray[np.float32]:
    """The map resampled onto the source slices: shape (slices, rows, columns).

    Slices come in the order of :func:`sort_slices`; points outside the map are 0.
    """
    reference = reference_image(datasets)
    resampled = sitk.Resample(
        sitk.Cast(heatmap, sitk.sitkFloat32),
        reference,
        sitk.Transform(),
        sitk.sitkLinear,
        0.0,
        sitk.sitkFloat32,
    )
    return np.asarray(sitk.GetArrayFromImage(resampled), dtype=np.float32)
