"""Written synthetic DICOM: dciodvfy finds no error; SimpleITK reads correctly oriented volumes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from tests.conftest import require_tool
from training.synth import SITES, SyntheticSeries, SyntheticStudy

pytestmark = pytest.mark.integration


def _series_folder(study_dir: Path, series: SyntheticSeries) -> Path:
    matches = sorted(study_dir.glob(f"{series.series_number:03d}_*"))
    assert len(matches) == 1
    return matches[0]


def test_dciodvfy_reports_no_error_for_every_series_type_of_every_site(
    written_studies: list[tuple[SyntheticStudy, Path]],
) -> None:
    dciodvfy = require_tool("dciodvfy")
    checked: dict[tuple[str, str, str], Path] = {}
    for study, folder in written_studies:
        for series in study.series:
            key = (study.site, series.sequence, series.role)
            if key not in checked:
                checked[key] = sorted(_series_folder(folder, series).glob("*.dcm"))[0]
    # every site shows every class, and both diffusion layouts appear somewhere
    for site in SITES:
        assert {k[1] for k in checked if k[0] == site} >= {
            "T1", "T1C", "T2", "FLAIR", "DWI", "ADC", "SWI", "LOCALIZER"
        }  # fmt: skip
    for site in SITES:
        roles = {k[2] for k in checked if k[1] == "DWI" and k[0] == site}
        assert roles == {"b0+trace", "b0", "trace"}, site
    errors = []
    for key, path in checked.items():
        result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
        lines = (result.stdout + result.stderr).splitlines()
        bad = [line for line in lines if line.startswith("Error")]
        if bad:
            errors.append(f"{key}: {bad}")
    assert not errors, "\n".join(errors)


def _stacks(folder: Path, series: SyntheticSeries) -> list[tuple[list[str], int, float | None]]:
    """Files of each (plane, b-value) stack: (files sorted along the normal, stack index, b)."""
    out = []
    for g_index, geom in enumerate(series.geometries):
        for b in series.b_values or [None]:
            files = []
            for path in sorted(folder.glob("*.dcm")):
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                frame = series.frames[int(ds.InstanceNumber) - 1]
                if frame.geometry is geom and frame.b_value == b:
                    pos = np.array([float(v) for v in ds.ImagePositionPatient])
                    files.append((float(pos @ geom.normal), str(path)))
            out.append(([p for _, p in sorted(files)], g_index, b))
    return out


def test_simpleitk_reads_every_series_with_the_true_geometry(
    written_studies: list[tuple[SyntheticStudy, Path]],
) -> None:
    n = 0
    for study, folder in written_studies[:: len(written_studies) // len(SITES)]:
        for series in study.series:
            for files, g_index, b in _stacks(_series_folder(folder, series), series):
                geom = series.geometries[g_index]
                assert len(files) == geom.n_slices
                reader = sitk.ImageSeriesReader()
                reader.SetFileNames(files)
                image = reader.Execute()
                assert image.GetSize() == (geom.cols, geom.rows, geom.n_slices)
                np.testing.assert_allclose(
                    np.array(image.GetDirection()).reshape(3, 3), geom.direction(), atol=1e-4
                )
                np.testing.assert_allclose(image.GetOrigin(), geom.origin, atol=1e-3)
                np.testing.assert_allclose(image.GetSpacing(), geom.spacing(), rtol=1e-4)
                truth = (
                    series.pixels(b)
                    if len(series.geometries) == 1
                    else np.stack([f.pixels for f in series.frames if f.geometry is geom])
                )
                np.testing.assert_array_equal(sitk.GetArrayFromImage(image), truth)
                n += 1
    assert n >= 3 * 9
