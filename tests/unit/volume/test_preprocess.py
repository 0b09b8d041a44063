"""Shared preprocessing: exact spec serialisation, orientation, head centring, intensity."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from pydantic import ValidationError

from pipeline.dicom_fixtures import PLANES, make_mr_series
from pipeline.preprocess import PreprocessSpec, preprocess
from pipeline.volume import Volume, load_series

SMALL = PreprocessSpec(
    spacing_mm=(4.0, 4.0, 4.0), crop_mm=(160.0, 160.0, 160.0), output_shape=(40, 40, 40)
)


def _head(
    shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float
) -> NDArray[np.uint16]:
    """A bright ball ("head") with a brighter marker on its +i (left) side, in (k, j, i)."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    ball = (i - centre[0]) ** 2 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2 <= radius**2
    data = np.where(ball, 800, 0).astype(np.uint16)
    marker = ball & (i > centre[0] + radius * 0.5)
    data[marker] = 1600
    return data


@pytest.fixture(scope="module")
def offcentre_axial() -> Volume:
    # 4 mm voxels, ball of radius 60 mm centred well off the middle of the field of view
    data = _head((40, 60, 60), centre=(18, 40, 22), radius=15)
    return load_series(make_mr_series(data, (4.0, 4.0, 4.0), origin=(-120, -120, -80)))


def test_spec_serialises_exactly_and_rejects_unknown_fields() -> None:
    spec = PreprocessSpec(orientation="ras", output_shape=(96, 96, 96))
    text = spec.model_dump_json()
    again = PreprocessSpec.model_validate_json(text)
    assert again == spec and again.model_dump_json() == text
    assert again.orientation == "RAS"
    assert PreprocessSpec().model_dump()["output_shape"] == (120, 120, 120)
    with pytest.raises(ValidationError):
        PreprocessSpec.model_validate_json('{"spacing": [1, 1, 1]}')
    with pytest.raises(ValidationError):
        PreprocessSpec(orientation="LLS")
    with pytest.raises(ValidationError):
        PreprocessSpec(spacing_mm=(1.0, 0.0, 1.0))


def test_head_is_centred_and_intensity_normalised(offcentre_axial: Volume) -> None:
    out = preprocess(offcentre_axial, SMALL)
    assert out.shape == (1, 40, 40, 40) and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 5.0
    head = out[0] > -0.99
    centre = np.argwhere(head).mean(axis=0)
    # centred left-right and anterior-posterior
    assert np.allclose(centre[:2], (19.5, 19.5), atol=1.5)
    # superior-inferior: the vertex sits vertex_margin_mm (8 mm = 2 voxels) below the top
    top = int(np.flatnonzero(head.any(axis=(0, 1))).max())
    assert 36 <= top <= 38
    # z-score inside the head: mean about 0 there
    assert abs(float(out[0][head].mean())) < 0.3


def test_a_bright_lesion_does_not_move_the_crop() -> None:
    """A lesion far brighter than the head (a FLAIR tumour) must not shrink the head mask.

    With a threshold relative to the brightest voxels the mask became the lesion, the
    box was centred on it and the head was cut off, on exactly the abnormal studies.
    """
    plain = _head((40, 60, 60), centre=(30, 30, 22), radius=15)
    lesion = plain.copy()
    lesion[18:22, 36:40, 20:24] = 20000  # small, 25x brighter than the head
    spec = SMALL.model_copy(update={"output_shape": (40, 40, 40)})
    outs = [
        preprocess(load_series(make_mr_series(d, (4.0,) * 3, origin=(-120, -120, -80))), spec)
        for d in (plain, lesion)
    ]
    heads = [np.argwhere(o[0] > o[0].min() + 1e-3).mean(axis=0) for o in outs]
    assert np.allclose(heads[0], heads[1], atol=0.6)


def test_vertex_anchoring_ignores_the_inferior_coverage() -> None:
    """The same head with and without a neck below it lands at the same place."""
    head = _head((50, 60, 60), centre=(30, 30, 32), radius=15)
    neck = head.copy()
    k, j, i = np.meshgrid(*(np.arange(n) for n in head.shape), indexing="ij")
    neck[((i - 30) ** 2 + (j - 30) ** 2 <= 36) & (k < 25)] = 800  # a column below the ball
    spec = SMALL
    outs = [
        preprocess(load_series(make_mr_series(d, (4.0,) * 3, origin=(-120, -120, -100))), spec)
        for d in (head, neck)
    ]
    tops = [int(np.flatnonzero((o[0] > -0.99).any(axis=(0, 1))).max()) for o in outs]
    assert tops[0] == tops[1]
    # the neck is there (more head below), yet the vertex did not move
    lows = [int(np.flatnonzero((o[0] > -0.99).any(axis=(0, 1))).min()) for o in outs]
    assert lows[1] < lows[0]


def test_orientation_is_canonical_whatever_the_acquisition_plane() -> None:
    """The same head acquired axially and sagittally preprocesses to the same array."""
    data = _head((40, 40, 40), centre=(20, 20, 20), radius=14)
    axial = load_series(make_mr_series(data, (4.0, 4.0, 4.0), origin=(-80, -80, -80)))
    # the same voxels written in the sagittal frame: array index (k, j, i) -> LPS via PLANES
    direction = PLANES["sagittal"]
    lps_to_sag = np.linalg.inv(direction)
    k, j, i = np.meshgrid(*(np.arange(40) for _ in range(3)), indexing="ij")
    world = np.stack([i, j, k], -1).reshape(-1, 3) * 4.0 + np.array([-80, -80, -80])
    # choose the sagittal origin so that its index cube covers the same world cube
    sag_origin = (world @ lps_to_sag.T).min(axis=0)
    sag_origin_world = direction @ sag_origin
    idx = np.rint((world - sag_origin_world) @ lps_to_sag.T / 4.0).astype(int)
    sag = np.zeros((40, 40, 40), np.uint16)
    sag[idx[:, 2], idx[:, 1], idx[:, 0]] = data.reshape(-1)
    sagittal = load_series(make_mr_series(sag, (4.0, 4.0, 4.0), sag_origin_world, direction))
    assert sagittal.orientation == "PIR"
    a = preprocess(axial, SMALL)
    b = preprocess(sagittal, SMALL)
    assert np.allclose(a, b, atol=1e-3)

    # the marker is on the patient's left: LPS output puts it at high indices of axis 0,
    # RAS output (axis 0 running towards the right) at low ones
    def marker_side(out: NDArray[np.float32]) -> float:
        return float(np.argwhere(out[0] > 1.0)[:, 0].mean() - 19.5)

    assert marker_side(a) > 5.0
    ras = preprocess(axial, SMALL.model_copy(update={"orientation": "RAS"}))
    assert marker_side(ras) < -5.0


@pytest.mark.slow
def test_default_align_recipe_shape(offcentre_axial: Volume) -> None:
    out = preprocess(offcentre_axial)
    assert out.shape == (1, 120, 120, 120)
    assert out.min() == pytest.approx(-1.0)


def test_empty_volume_is_an_error() -> None:
    from dicom_node.errors import SeriesError

    empty = load_series(make_mr_series(np.zeros((4, 8, 8), np.uint16)))
    with pytest.raises(SeriesError, match="empty"):
        preprocess(empty, SMALL)


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "PIR"])
def test_output_affine_maps_voxels_back_to_patient_space(orientation: str) -> None:
    """The affine of preprocess_with_affine puts a small bright cube back where it was."""
    from pipeline.preprocess import preprocess_with_affine

    data = _head((36, 40, 44), centre=(22, 20, 18), radius=14)
    data[data > 0] = 800
    data[12:14, 24:26, 28:30] = 3000
    volume = load_series(make_mr_series(data, (4.0, 4.0, 4.0), (-70, -90, -60), PLANES["oblique"]))
    k, j, i = np.nonzero(data == 3000)
    truth = volume.world(np.stack([i, j, k], axis=1).astype(float)).mean(axis=0)
    # a different grid from the source (3 mm, 150 mm box, 40^3): resampled and resized
    spec = PreprocessSpec(
        orientation=orientation,
        spacing_mm=(3.0, 3.0, 3.0),
        crop_mm=(150.0, 150.0, 150.0),
        output_shape=(40, 40, 40),
        clamp=(-1.0, 50.0),
    )
    out, affine = preprocess_with_affine(volume, spec)
    assert np.array_equal(out, preprocess(volume, spec))
    excess = np.clip(out[0] - np.median(out[0][out[0] > -0.9]), 0, None)
    excess[excess < 0.3 * excess.max()] = 0
    where = np.argwhere(excess > 0).astype(float)
    weights = excess[excess > 0]
    centre = (where * weights[:, None]).sum(axis=0) / weights.sum()
    world = affine[:3, :3] @ centre + affine[:3, 3]
    error = float(np.linalg.norm(world - truth))
    # output voxels are 3.75 mm: the cube comes back within a fraction of one
    assert error < 1.0, f"marker {error:.2f} mm away from where it was"
