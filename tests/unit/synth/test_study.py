"""Synthetic studies: structure, vendor headers, geometry truth, determinism."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest
from pydicom.tag import Tag

from dicom_node.errors import ConfigError
from training.synth import FINDINGS, SEQUENCES, SITES, SyntheticStudy, generate_study
from training.synth.sites import get_site

StudyFactory = Callable[..., SyntheticStudy]

PRIVATE_B = {"siemens": (0x0019, 0x0C), "ge": (0x0043, 0x39), "philips": (0x2001, 0x03)}


def test_at_least_three_sites_of_three_vendors() -> None:
    assert len(SITES) >= 3
    assert len({get_site(s).manufacturer for s in SITES}) >= 3


@pytest.mark.parametrize("site", SITES)
def test_every_sequence_class_present_with_datasets(small_study: StudyFactory, site: str) -> None:
    study = small_study(1, site, {"tumour": True})
    assert study.site == site
    assert {s.sequence for s in study.series} == set(SEQUENCES)
    sop_uids: set[str] = set()
    for series in study.series:
        datasets = series.datasets
        assert len(datasets) == len(series.frames) > 0
        for ds in datasets:
            assert ds.StudyInstanceUID == study.study_uid
            assert ds.SeriesInstanceUID == series.series_uid
            assert ds.AccessionNumber == study.accession
            assert str(ds.PatientName).startswith("SYNTHETIC^")
            assert ds.Manufacturer == get_site(site).manufacturer
            assert ds.SeriesDescription == series.description
            assert ds.Modality == "MR"
            assert len(ds.PixelData) == ds.Rows * ds.Columns * 2
            sop_uids.add(ds.SOPInstanceUID)
    assert len(sop_uids) == sum(len(s.frames) for s in study.series)


@pytest.mark.parametrize("site", SITES)
def test_image_plane_matches_truth_geometry(small_study: StudyFactory, site: str) -> None:
    study = small_study(1, site, {"tumour": True})
    for series in study.series:
        for frame, ds in zip(series.frames, series.datasets, strict=True):
            geom = frame.geometry
            np.testing.assert_allclose(
                [float(v) for v in ds.ImageOrientationPatient], geom.iop(), atol=1e-5
            )
            np.testing.assert_allclose(
                [float(v) for v in ds.ImagePositionPatient],
                geom.slice_position(frame.index),
                atol=1e-3,
            )
            np.testing.assert_allclose(
                [float(v) for v in ds.PixelSpacing], [geom.row_spacing, geom.col_spacing], rtol=1e-5
            )
            assert float(ds.SpacingBetweenSlices) == pytest.approx(geom.slice_spacing, rel=1e-5)
        direction = series.direction
        np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-9)
        assert np.linalg.det(direction) == pytest.approx(1.0)


@pytest.mark.parametrize("site", SITES)
def test_diffusion_b_values_where_the_vendor_puts_them(
    small_study: StudyFactory, site: str
) -> None:
    profile = get_site(site)
    study = small_study(1, site, {"tumour": True})
    dwi = study.series_of("DWI")
    assert sorted({b for s in dwi for b in s.b_values}) == [0.0, 1000.0]
    for series in dwi:
        for frame, ds in zip(series.frames, series.datasets, strict=True):
            group, offset = PRIVATE_B[profile.diffusion.private_b]
            block = ds.private_block(
                group,
                {
                    "siemens": "SIEMENS MR HEADER",
                    "ge": "GEMS_PARM_01",
                    "philips": "Philips Imaging DD 001",
                }[profile.diffusion.private_b],
            )
            value = block[offset].value
            first = (
                value[0] if isinstance(value, list | tuple) or hasattr(value, "__len__") else value
            )
            assert float(first) % 1_000_000_000 == frame.b_value
            assert (Tag(0x0018, 0x9087) in ds) == profile.diffusion.standard_b_tag
    adc = study.series_of("ADC")[0]
    assert adc.datasets[0].ImageType[0] == "DERIVED"
    assert "ADC" in adc.datasets[0].ImageType


@pytest.mark.parametrize("site", SITES)
def test_contrast_agent_filled_only_by_sites_that_do(small_study: StudyFactory, site: str) -> None:
    profile = get_site(site)
    study = small_study(1, site, {"tumour": True})
    for series in study.series:
        ds = series.datasets[0]
        expected = series.sequence == "T1C" and bool(profile.contrast_agent)
        assert ("ContrastBolusAgent" in ds) == expected, series.description


def test_deterministic_by_seed_and_different_between_seeds(small_study: StudyFactory) -> None:
    def digest(study: SyntheticStudy) -> str:
        h = hashlib.sha256(study.report.text.encode())
        for series in study.series:
            h.update(series.series_uid.encode())
            for frame in series.frames:
                h.update(frame.pixels.tobytes())
        return h.hexdigest()

    only = ("T2", "DWI")
    a = small_study(1, "ge_b", {"tumour": True}, only=only)
    every = [s for s in SEQUENCES if s != "LOCALIZER"]
    b = generate_study(
        1, "ge_b", findings={"tumour": True}, size="small", sequences=every, restrict_to=only
    )
    assert digest(a) == digest(b)
    # restrict_to leaves the rendered series unchanged
    full = small_study(1, "ge_b", {"tumour": True})
    for series in a.series:
        same = [s for s in full.series if s.description == series.description]
        assert [f.pixels.tobytes() for f in same[0].frames] == [
            f.pixels.tobytes() for f in series.frames
        ]
    c = small_study(2, "ge_b", {"tumour": True}, only=only)
    assert digest(a) != digest(c)
    assert a.study_uid != c.study_uid


def test_forced_findings_give_truth_and_masks(small_study: StudyFactory) -> None:
    study = small_study(3, "philips_c", {"meningioma": True, "haemorrhage": True})
    assert {f for f, v in study.findings.items() if v} == {"meningioma", "haemorrhage"}
    assert set(study.masks) == {"meningioma", "haemorrhage"}
    assert study.report.positive_findings() == {"meningioma", "haemorrhage"}
    for mask in study.masks.values():
        points = mask.world_points()
        assert len(points) > 0
        # inside a head-sized region around the subject's brain centre
        centre = (study.pose @ np.array([0.0, 12.0, 14.0, 1.0]))[:3]
        assert np.linalg.norm(points - centre, axis=1).max() < 120


def test_random_findings_are_about_forty_percent_normal() -> None:
    from training.synth.study import draw_findings

    rng = np.random.default_rng(0)
    draws = [draw_findings(rng) for _ in range(2000)]
    normal = np.mean([not any(d.values()) for d in draws])
    assert 0.36 < normal < 0.44
    counts = [sum(d.values()) for d in draws]
    assert set(counts) == {0, 1, 2}
    assert all(sum(d[f] for d in draws) > 100 for f in FINDINGS)


def test_bad_arguments_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="nowhere"):
        generate_study(0, "nowhere", size="small")
    with pytest.raises(ConfigError, match="gout"):
        generate_study(0, "ge_b", findings={"gout": True}, size="small")
    with pytest.raises(ConfigError, match="huge"):
        generate_study(0, "ge_b", size="huge")  # type: ignore[arg-type]
