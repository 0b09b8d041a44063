"""Geometry round trips: a known volume written as DICOM loads back equal in world coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from numpy.typing import NDArray
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from dicom_node.errors import SeriesError, VolumeGeometryError
from pipeline.dicom_fixtures import PLANES, make_enhanced_mr, make_mr_series, rotation, write_series
from pipeline.volume import Volume, load_series

SPACING = (0.9, 1.1, 2.5)
ORIGIN = (-88.0, -110.5, -40.25)


def _truth_world(shape: tuple[int, ...], direction: NDArray[np.float64]) -> NDArray[np.float64]:
    """LPS position of every voxel of the written array, in (k, j, i) order."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3) * np.asarray(SPACING)
    return ijk @ direction.T + np.asarray(ORIGIN)


def _loaded_world(volume: Volume) -> NDArray[np.float64]:
    k, j, i = np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij")
    return volume.world(np.stack([i, j, k], axis=-1).reshape(-1, 3))


def _assert_same_world(
    volume: Volume, truth: NDArray[np.generic], direction: NDArray[np.float64]
) -> None:
    """Every voxel value sits at the same LPS position as in the truth (order-free match)."""
    expected = _truth_world(truth.shape, direction)
    got = _loaded_world(volume)
    # match voxels by world position (rounded to 1/100 mm), then compare values
    key_expected = {tuple(np.round(p, 2)): v for p, v in zip(expected, truth.ravel(), strict=True)}
    assert len(key_expected) == truth.size
    values = [key_expected.get(tuple(np.round(p, 2))) for p in got]
    assert None not in values, "a loaded voxel lies where no written voxel was"
    assert np.array_equal(np.asarray(values, dtype=np.float32), volume.array.ravel())


@pytest.fixture(scope="module")
def truth() -> NDArray[np.uint16]:
    rng = np.random.default_rng(7)
    return rng.integers(0, 4000, size=(9, 16, 20)).astype(np.uint16)


@pytest.mark.parametrize("plane", ["axial", "sagittal", "coronal", "oblique"])
def test_round_trip_world_coordinates_with_shuffled_instances(
    plane: str, truth: NDArray[np.uint16]
) -> None:
    direction = PLANES[plane]
    datasets = make_mr_series(truth, SPACING, ORIGIN, direction, shuffle_seed=11)
    numbers = [int(ds.InstanceNumber) for ds in datasets]
    assert numbers != sorted(numbers), "the fixture must shuffle instance numbers"
    volume = load_series(datasets)
    assert volume.shape == truth.shape
    assert np.allclose(volume.spacing, SPACING)
    assert np.allclose(volume.direction, direction, atol=1e-6)
    _assert_same_world(volume, truth, direction)


def test_reversed_stack_direction_still_matches_world(truth: NDArray[np.uint16]) -> None:
    # slices written from the top down: positions decrease along the normal
    direction = PLANES["axial"]
    flipped = truth[::-1].copy()
    top = np.asarray(ORIGIN) + (truth.shape[0] - 1) * SPACING[2] * direction[:, 2]
    datasets = make_mr_series(flipped, SPACING, top, direction @ np.diag([1, 1, 1]))
    for ds, k in zip(datasets, range(truth.shape[0]), strict=True):
        ds.ImagePositionPatient = [float(v) for v in top - k * SPACING[2] * direction[:, 2]]
    volume = load_series(datasets)
    _assert_same_world(volume, truth, direction)


def test_matches_simpleitk_series_reader(tmp_path: Path, truth: NDArray[np.uint16]) -> None:
    """An independent reader (ITK/GDCM) agrees on geometry and voxels."""
    direction = rotation("y", 15.0) @ PLANES["coronal"]
    paths = write_series(
        make_mr_series(truth, SPACING, ORIGIN, direction, shuffle_seed=3), tmp_path
    )
    ours = load_series(paths)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    itk = reader.Execute()
    assert np.allclose(itk.GetOrigin(), ours.origin, atol=1e-4)
    assert np.allclose(np.asarray(itk.GetDirection()).reshape(3, 3), ours.direction, atol=1e-5)
    assert np.allclose(itk.GetSpacing(), ours.spacing, atol=1e-4)
    assert np.array_equal(sitk.GetArrayFromImage(itk).astype(np.float32), ours.array)
    # and our SimpleITK export maps indices to the same points
    image = ours.to_sitk()
    for index in [(0, 0, 0), (5, 7, 3), (19, 15, 8)]:
        assert np.allclose(
            image.TransformIndexToPhysicalPoint(index), ours.world(np.asarray(index))[0], atol=1e-6
        )


@pytest.mark.parametrize(
    "syntax", [JPEG2000Lossless, RLELossless, JPEGLSLossless], ids=["j2k", "rle", "jpegls"]
)
def test_compressed_transfer_syntaxes_decode(tmp_path: Path, syntax: str) -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4000, size=(4, 64, 64)).astype(np.uint16)
    paths = write_series(make_mr_series(truth, SPACING, ORIGIN), tmp_path, syntax)
    volume = load_series(paths)
    assert np.array_equal(volume.array, truth.astype(np.float32))


def test_rescale_slope_intercept_applied(truth: NDArray[np.uint16]) -> None:
    datasets = make_mr_series(
        truth, SPACING, ORIGIN, header={"RescaleSlope": 0.5, "RescaleIntercept": -10}
    )
    volume = load_series(datasets)
    assert np.allclose(volume.array, truth.astype(np.float32) * 0.5 - 10)


def test_enhanced_multiframe_with_shuffled_frames(truth: NDArray[np.uint16]) -> None:
    direction = PLANES["oblique"]
    ds = make_enhanced_mr(truth, SPACING, ORIGIN, direction, frame_order_seed=5)
    volume = load_series([ds])
    assert volume.shape == truth.shape
    _assert_same_world(volume, truth, direction)


def test_missing_slice_is_a_clear_error(truth: NDArray[np.uint16]) -> None:
    datasets = make_mr_series(truth, SPACING, ORIGIN)
    del datasets[4]
    with pytest.raises(VolumeGeometryError, match=r"missing slice.*1 slice\(s\) missing"):
        load_series(datasets)


def test_non_uniform_spacing_is_a_clear_error(truth: NDArray[np.uint16]) -> None:
    datasets = make_mr_series(truth, SPACING, ORIGIN)
    position = list(datasets[5].ImagePositionPatient)
    position[2] += 0.9
    datasets[5].ImagePositionPatient = position
    with pytest.raises(VolumeGeometryError, match="non-uniform slice spacing"):
        load_series(datasets)


def test_mixed_orientations_and_duplicates_are_errors(truth: NDArray[np.uint16]) -> None:
    datasets = make_mr_series(truth, SPACING, ORIGIN)
    datasets[2].ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    with pytest.raises(VolumeGeometryError, match="ImageOrientationPatient"):
        load_series(datasets)
    datasets = make_mr_series(truth, SPACING, ORIGIN)
    datasets[3].ImagePositionPatient = list(datasets[2].ImagePositionPatient)
    with pytest.raises(VolumeGeometryError, match="share ImagePositionPatient"):
        load_series(datasets)


def test_two_series_and_unreadable_files_are_errors(
    tmp_path: Path, truth: NDArray[np.uint16]
) -> None:
    a = make_mr_series(truth[:2], SPACING, ORIGIN)
    b = make_mr_series(truth[:2], SPACING, ORIGIN)
    with pytest.raises(SeriesError, match="SeriesInstanceUID"):
        load_series(a + b)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom")
    with pytest.raises(SeriesError, match=r"junk\.dcm"):
        load_series([junk])


def test_orientation_codes() -> None:
    data = np.zeros((3, 8, 8), np.uint16)
    assert load_series(make_mr_series(data, direction=PLANES["axial"])).orientation == "LPS"
    assert load_series(make_mr_series(data, direction=PLANES["coronal"])).orientation == "LIP"
    assert load_series(make_mr_series(data, direction=PLANES["sagittal"])).orientation == "PIR"


def test_positions_off_the_normal_are_an_error(truth: NDArray[np.uint16]) -> None:
    """Gantry tilt or mixed stacks: positions drift in-plane from slice to slice."""
    datasets = make_mr_series(truth, SPACING, ORIGIN)
    for k, ds in enumerate(datasets):
        position = list(ds.ImagePositionPatient)
        position[1] += 0.8 * k
        ds.ImagePositionPatient = position
    with pytest.raises(VolumeGeometryError, match="off the slice normal"):
        load_series(datasets)


def test_single_slice_uses_slice_thickness() -> None:
    data = np.arange(64, dtype=np.uint16).reshape(1, 8, 8)
    volume = load_series(make_mr_series(data, (0.5, 0.5, 3.0)))
    assert volume.shape == (1, 8, 8) and volume.spacing == (0.5, 0.5, 3.0)
