"""Lesions show on the right sequences: mean in the mask vs the mirrored contralateral region."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import ndimage as ndi

from training.synth import SyntheticSeries, SyntheticStudy
from training.synth.anatomy import make_subject
from training.synth.geometry import resample_mask

StudyFactory = Callable[..., SyntheticStudy]

# (finding, sequence, ratio must be above (>1) or below (<1) this bound)
EXPECTED = [
    ("acute_infarct", "DWI", 1.3),
    ("acute_infarct", "ADC", 0.8),
    ("acute_infarct", "FLAIR", 1.1),
    ("haemorrhage", "SWI", 0.5),
    ("meningioma", "T1C", 1.3),
    ("demyelination", "FLAIR", 1.2),  # small plaques, thick slices: partial volume
    ("demyelination", "T2", 1.1),
    ("tumour", "T1C", 1.3),
    ("tumour", "FLAIR", 1.1),
]
SEEDS = {"siemens_a": 100, "ge_b": 101, "philips_c": 102}


def lesion_vs_mirror(
    study: SyntheticStudy, finding: str, series: SyntheticSeries
) -> tuple[float, float, int]:
    """(mean in the lesion, mean in its mirror image across the mid-sagittal plane, voxels)."""
    mask = study.masks[finding]
    b_value = max(series.b_values) if series.b_values else None
    pixels = series.pixels(b_value).astype(np.float32)
    geom = series.geometry
    frac = resample_mask(mask.array, mask.affine_lps, geom)
    # voxels mostly inside the lesion (thick slices dilute small lesions at the edges)
    inside = frac > 0.75
    if inside.sum() < 5:
        inside = frac > 0.5
    idx = np.argwhere(inside).astype(np.float64)  # (k, j, i)
    ijk1 = np.c_[idx[:, ::-1], np.ones(len(idx))].T
    to_world = geom.index_to_world()
    mirrored = np.linalg.inv(to_world) @ study.mirror_matrix() @ to_world @ ijk1
    mirror_values = ndi.map_coordinates(pixels, mirrored[2::-1], order=1)
    return float(pixels[inside].mean()), float(mirror_values.mean()), int(inside.sum())


@pytest.mark.parametrize("site", sorted(SEEDS))
@pytest.mark.parametrize(("finding", "sequence", "bound"), EXPECTED)
def test_lesion_contrast_has_expected_sign(
    small_study: StudyFactory, site: str, finding: str, sequence: str, bound: float
) -> None:
    needed = tuple(sorted({seq for f, seq, _ in EXPECTED if f == finding}))
    study = small_study(SEEDS[site], site, {finding: True}, only=needed)
    series = [s for s in study.series_of(sequence) if s.role not in {"phase", "b0"}]
    assert series, f"{sequence} missing"
    lesion, mirror, n = lesion_vs_mirror(study, finding, series[0])
    assert n >= 5, f"lesion covers {n} voxels of {series[0].description}"
    ratio = lesion / max(mirror, 1e-3)
    if bound > 1:
        assert ratio > bound, f"{finding} on {sequence}: {ratio:.2f}"
    else:
        assert ratio < bound, f"{finding} on {sequence}: {ratio:.2f}"


def test_hydrocephalus_enlarges_the_ventricles(small_study: StudyFactory) -> None:
    normal = make_subject(np.random.default_rng(5), grid_mm=2.0, age=40, ventricle_expansion=0.0)
    hydro = make_subject(np.random.default_rng(5), grid_mm=2.0, age=40, ventricle_expansion=0.65)
    assert hydro.ventricles().sum() > 1.6 * normal.ventricles().sum()
    study = small_study(7, "siemens_a", {"hydrocephalus": True}, only=("FLAIR",))
    mask = study.masks["hydrocephalus"]
    volume_ml = mask.array.sum() * abs(np.linalg.det(mask.affine_lps[:3, :3])) / 1000
    assert volume_ml > 40  # normal adult lateral ventricles are ~ 10-25 ml
    flair = study.series_of("FLAIR")[0]
    lesion, mirror, _ = lesion_vs_mirror(study, "hydrocephalus", flair)
    assert lesion < mirror * 1.2  # CSF is dark on FLAIR, whatever it is mirrored onto


@pytest.mark.parametrize(
    ("seed", "finding"),
    [(200, "acute_infarct"), (201, "haemorrhage"), (202, "tumour"), (203, "meningioma")],
)
def test_report_side_and_size_agree_with_the_mask(
    small_study: StudyFactory, seed: int, finding: str
) -> None:
    study = small_study(seed, "siemens_a", {finding: True}, only=("T2",))
    descriptor = study.descriptors[finding]
    mask = study.masks[finding]
    # the mask's centre in the subject's own (template) frame: +x is the patient's left
    centre = mask.world_points().mean(axis=0)
    x_subject = (np.linalg.inv(study.pose) @ np.append(centre, 1.0))[0]
    side = descriptor.side  # type: ignore[attr-defined]
    if side == "left":
        assert x_subject > 0
    elif side == "right":
        assert x_subject < 0
    assert side in study.report.text.lower() or side == "midline"
    # the stated size is the mask's largest extent (within a voxel or two)
    extent = np.ptp(mask.world_points() @ np.linalg.inv(study.pose[:3, :3]).T, axis=0).max()
    assert abs(descriptor.size_mm - extent) <= 4.5  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [202, 206])
def test_a_tumours_extent_holds_its_core_and_its_oedema(
    small_study: StudyFactory, seed: int
) -> None:
    study = small_study(seed, "siemens_a", {"tumour": True}, only=("T2",))
    core, whole = study.masks["tumour"], study.extents["tumour"]
    assert np.array_equal(core.affine_lps, whole.affine_lps)
    assert not (core.array & ~whole.array).any()  # the core lies inside the extent
    oedema = study.descriptors["tumour"].attributes["oedema"]  # type: ignore[attr-defined]
    if oedema:  # the oedema reaches well beyond the core (1.2-1.6 radii for these variants)
        assert whole.array.sum() > 1.5 * core.array.sum()
    else:
        assert whole.array.sum() < 1.5 * core.array.sum()
