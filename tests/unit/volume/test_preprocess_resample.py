"""The fast resampling gives MONAI ``Spacing``'s grid and values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data.meta_tensor import MetaTensor
from monai.transforms.spatial.array import Orientation, Spacing

from pipeline.preprocess import PreprocessSpec, resample_to_spacing


def _volume(angle: float, spacing: tuple[float, float, float], flip: bool) -> MetaTensor:
    rng = np.random.default_rng(3)
    data = rng.random((1, 64, 56, 12)).astype(np.float32) * 1000
    data[0, 20:30, 10:40, 3:8] += 3000  # a bright block: edges make interpolation errors visible
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    if flip:
        rotation = rotation @ np.diag([1.0, -1.0, -1.0])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = [-40.0, 25.0, -30.0]
    image = MetaTensor(torch.from_numpy(data), affine=torch.from_numpy(affine))
    oriented: MetaTensor = Orientation(axcodes="LPS", labels=(("L", "R"), ("P", "A"), ("I", "S")))(
        image
    )
    return oriented


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize(
    ("angle", "spacing", "flip", "target"),
    [
        (0.0, (0.9, 0.9, 5.0), False, 1.0),  # axial 2D slab, axis-aligned
        (0.3, (0.94, 0.94, 4.0), True, 1.0),  # oblique, flipped slice order
        (0.15, (1.2, 1.0, 3.0), False, 2.0),  # coarser output grid
    ],
)
def test_same_grid_and_values_as_monai_spacing(
    mode: str, angle: float, spacing: tuple[float, float, float], flip: bool, target: float
) -> None:
    image = _volume(angle, spacing, flip)
    spec = PreprocessSpec(spacing_mm=(target,) * 3, resample_mode=mode)  # type: ignore[arg-type]
    reference = Spacing(pixdim=spec.spacing_mm, mode=mode)(image)
    fast, affine = resample_to_spacing(image, spec)
    expected = np.asarray(reference.numpy(), dtype=np.float32)
    assert fast.shape == expected.shape and fast.dtype == np.float32
    np.testing.assert_allclose(affine, np.asarray(reference.affine), atol=1e-9)
    diff = np.abs(fast - expected)
    if mode == "bilinear":
        # float32 grid vs MONAI's float64: a tiny fraction of the 4,000 intensity range
        assert diff.max() < 0.05
    else:
        # sample points exactly half-way between two source voxels (1 mm steps over
        # 4 mm slices) may round to the other neighbour: still a source value
        assert np.mean(diff > 1e-3) < 0.05
        assert np.isin(fast, np.asarray(image.numpy())).all()
    correlation = np.corrcoef(fast.ravel(), expected.ravel())[0, 1]
    assert np.abs(expected).sum() > 0 and correlation > (0.999 if mode == "bilinear" else 0.95)
