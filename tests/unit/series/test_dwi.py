"""Diffusion: b-values per image from tags / private tags / description order; trace; ADC."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicom_node.errors import SeriesError
from pipeline.dicom_fixtures import make_enhanced_mr, make_mr_series
from pipeline.series import SequenceClass, classify_series, select_series
from pipeline.series.dwi import (
    compute_adc,
    description_b_values,
    diffusion_volumes,
    pick_high_b,
    split_b_values,
    study_diffusion,
)

B = 1000.0
SHAPE = (6, 12, 14)


@pytest.fixture(scope="module")
def tissue() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """S0 and a known ADC map (10^-6 mm²/s) of a small phantom."""
    rng = np.random.default_rng(3)
    s0 = rng.uniform(800, 1200, size=SHAPE)
    adc = rng.uniform(400, 3000, size=SHAPE)
    return s0, adc


def _interleaved(
    s0: NDArray[np.float64],
    adc: NDArray[np.float64],
    header: dict[str, object],
    tag: str | None,
    manufacturer: str = "SIEMENS",
) -> list[Dataset]:
    """A one-series DWI with b0 and b1000 at each position (instance numbers interleaved)."""
    sb = s0 * np.exp(-B * adc * 1e-6)
    stack = np.empty((2 * SHAPE[0], *SHAPE[1:]))
    stack[0::2], stack[1::2] = s0, sb
    b0 = make_mr_series(np.round(s0).astype(np.uint16), (1, 1, 3))
    b1 = make_mr_series(np.round(sb).astype(np.uint16), (1, 1, 3))
    series_uid = b0[0].SeriesInstanceUID
    datasets = []
    for k, (d0, d1) in enumerate(zip(b0, b1, strict=True)):
        for n, (ds, b) in enumerate(((d0, 0.0), (d1, B))):
            ds.SeriesInstanceUID = series_uid
            ds.StudyInstanceUID = b0[0].StudyInstanceUID
            ds.InstanceNumber = 2 * k + n + 1
            ds.Manufacturer = manufacturer
            for key, value in header.items():
                setattr(ds, key, value)
            if tag == "standard":
                ds.DiffusionBValue = b
            elif tag == "ge":
                ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
                ds.add_new((0x0043, 0x1039), "IS", [int(b) + 1_000_000_000, 8, 0, 0])
            elif tag == "philips":
                ds.add_new((0x2001, 0x0010), "LO", "Philips Imaging DD 001")
                ds.add_new((0x2001, 0x1003), "FL", b)
            datasets.append(ds)
    return datasets[::-1]  # storage order reversed: the split must not depend on it


@pytest.mark.parametrize(
    ("tag", "manufacturer", "description", "source"),
    [
        ("standard", "SIEMENS", "DWI", "tags"),
        ("ge", "GE MEDICAL SYSTEMS", "Ax DWI", "tags"),
        ("philips", "Philips Medical Systems", "DWI_SSh", "tags"),
        (None, "SIEMENS", "ep2d_diff_b0_1000", "description"),
        (None, "SIEMENS", "Ax DWI", "assumed"),
    ],
)
def test_split_by_b_value_and_compute_adc(
    tissue: tuple[NDArray[np.float64], NDArray[np.float64]],
    tag: str | None,
    manufacturer: str,
    description: str,
    source: str,
) -> None:
    s0, adc_truth = tissue
    header = {"SeriesDescription": description, "ScanningSequence": "EP", "EchoTime": 80}
    datasets = _interleaved(s0, adc_truth, header, tag, manufacturer)
    assert classify_series(datasets).sequence.value == "DWI"
    split = split_b_values(datasets)
    assert split.source == source
    assert sorted(split.groups) == [0.0, 1000.0]
    assert all(len(frames) == SHAPE[0] for frames in split.groups.values())
    dwi = diffusion_volumes(datasets)
    assert dwi.b_value == 1000.0
    assert dwi.trace.shape == SHAPE and dwi.b0 is not None and dwi.adc is not None
    # exactly the ADC of the stored integers, and close to the phantom's
    stored_s0 = np.round(s0)
    stored_sb = np.round(s0 * np.exp(-B * adc_truth * 1e-6))
    expected = np.log(stored_s0 / stored_sb) / B * 1e6
    assert np.allclose(dwi.adc.array, expected, atol=0.05)
    assert np.median(np.abs(dwi.adc.array - adc_truth)) < 5.0
    assert "computed from b=0 and b=1000" in dwi.explanation


def test_adc_taken_from_derived_map_when_present(
    tissue: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    s0, adc_truth = tissue
    dwi = _interleaved(s0, adc_truth, {"SeriesDescription": "DWI"}, "standard")
    adc_series = make_mr_series(np.round(adc_truth).astype(np.uint16), (1, 1, 3))
    result = diffusion_volumes(dwi, adc_map=adc_series)
    assert result.adc is not None
    assert np.array_equal(result.adc.array, np.round(adc_truth).astype(np.float32))
    assert "scanner's derived map" in result.explanation


def test_directional_images_average_to_trace() -> None:
    """Three directions at b1000 per position (GE style): geometric mean = trace."""
    rng = np.random.default_rng(5)
    dirs = [rng.uniform(100, 900, size=(4, 8, 8)) for _ in range(3)]
    series = [make_mr_series(np.round(d).astype(np.uint16), (1, 1, 4)) for d in dirs]
    datasets = []
    for n, stack in enumerate(series):
        for k, ds in enumerate(stack):
            ds.SeriesInstanceUID = series[0][0].SeriesInstanceUID
            ds.InstanceNumber = 3 * k + n + 1
            ds.DiffusionBValue = 1000.0
            datasets.append(ds)
    dwi = diffusion_volumes(datasets)
    expected = np.exp(np.mean([np.log(np.round(d)) for d in dirs], axis=0))
    assert np.allclose(dwi.trace.array, expected, rtol=1e-4)
    assert dwi.adc is None and "no ADC" in dwi.explanation


def test_canon_style_untagged_images_are_b0(
    tissue: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    s0, adc = tissue
    datasets = _interleaved(s0, adc, {"SeriesDescription": "DWI b=1000"}, "standard")
    for ds in datasets:
        if float(ds.DiffusionBValue) == 0.0:
            del ds.DiffusionBValue
    split = split_b_values(datasets)
    assert sorted(split.groups) == [0.0, 1000.0]


def test_enhanced_mr_diffusion_frames() -> None:
    rng = np.random.default_rng(2)
    data = rng.integers(100, 1000, size=(8, 10, 10)).astype(np.uint16)
    # frames 0..3 b0 and 4..7 b1000 at the same four positions
    ds = make_enhanced_mr(
        data,
        (1, 1, 4),
        header={"SeriesDescription": "DWI"},
        b_values=[0, 0, 0, 0, 1000, 1000, 1000, 1000],
    )
    for index, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        item.PlanePositionSequence[0].ImagePositionPatient = [0.0, 0.0, 4.0 * (index % 4)]
    assert classify_series([ds]).sequence.value == "DWI"
    split = split_b_values([ds])
    assert {b: len(f) for b, f in split.groups.items()} == {0.0: 4, 1000.0: 4}
    dwi = diffusion_volumes([ds])
    assert np.array_equal(dwi.trace.array, data[4:].astype(np.float32))


def test_description_b_values_and_pick() -> None:
    assert description_b_values("ep2d_diff_b0_1000") == [0.0, 1000.0]
    assert description_b_values("DWI b=0,1000") == [0.0, 1000.0]
    assert description_b_values("Ax DWI 1000b") == [1000.0]
    assert description_b_values("t2_tse_tra") == []
    data = np.zeros((2, 4, 4), np.uint16)
    frames = make_mr_series(data)
    for ds, b in zip(frames, (50, 800), strict=True):
        ds.DiffusionBValue = b
    for ds in frames:
        ds.ImagePositionPatient = [0.0, 0.0, 0.0]
    assert pick_high_b(split_b_values(frames)) == 800.0
    for ds in frames:
        ds.DiffusionBValue = 50
    with pytest.raises(SeriesError, match="no b-value between"):
        pick_high_b(split_b_values(frames))


def test_compute_adc_rejects_bad_input() -> None:
    data = np.ones((2, 3, 3), np.uint16)
    vol = diffusion_volumes(make_mr_series(data, header={"DiffusionBValue": 1000})).trace
    with pytest.raises(SeriesError, match="must be positive"):
        compute_adc(vol, vol, 0.0)


def test_study_diffusion_uses_a_separate_b0_series(
    tissue: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    """Philips-style: b0 and b1000 in two series, no ADC map: ADC computed across them."""
    s0, adc_truth = tissue
    study = generate_uid()
    b0 = make_mr_series(
        np.round(s0).astype(np.uint16),
        (1, 1, 3),
        header={"SeriesDescription": "DWI_b0", "SeriesNumber": 5, "DiffusionBValue": 0.0},
        study_uid=study,
    )
    sb = np.round(s0 * np.exp(-B * adc_truth * 1e-6)).astype(np.uint16)
    b1000 = make_mr_series(
        sb,
        (1, 1, 3),
        header={"SeriesDescription": "DWI_b1000", "SeriesNumber": 6, "DiffusionBValue": B},
        study_uid=study,
    )
    selection = select_series({"b0": b0, "b1000": b1000})
    chosen = selection.get(SequenceClass.DWI)
    assert chosen is not None and chosen.entry.header.series_number == 6
    dwi = study_diffusion(selection)
    assert dwi is not None and dwi.adc is not None and dwi.b0 is not None
    assert "separate series" in dwi.explanation
    assert np.median(np.abs(dwi.adc.array - adc_truth)) < 5.0
    # a study without a b≈1000 gives no diffusion volumes
    assert study_diffusion(select_series(b0)) is None
