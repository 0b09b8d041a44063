"""Every series of the synthetic studies of every site is classified correctly, selected
series load with their truth geometry, and ``dicom-node inspect`` reports it all."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.series import SequenceClass, select_series
from pipeline.series.dwi import diffusion_volumes
from pipeline.volume import load_series
from training.synth import SITES, SyntheticStudy, generate_study, write_study

pytestmark = pytest.mark.slow

SEEDS = (11, 12)


@pytest.fixture(scope="module")
def studies() -> list[SyntheticStudy]:
    return [generate_study(seed, site, size="small") for site in SITES for seed in SEEDS]


def test_every_series_of_every_site_classified_correctly(
    studies: list[SyntheticStudy], capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = []
    total = 0
    for study in studies:
        selection = select_series([ds for s in study.series for ds in s.datasets])
        got = {e.series_uid: e.classification for e in selection.series}
        for series in study.series:
            total += 1
            result = got[series.series_uid]
            if result.sequence.value != series.sequence:
                wrong.append(
                    f"{study.site} seed {study.seed} {series.description!r}: truth "
                    f"{series.sequence}, got {result.sequence.value} ({result.reason})"
                )
    with capsys.disabled():
        print(
            f"\nsynthetic studies: {total - len(wrong)}/{total} series correct "
            f"({len(studies)} studies, sites {', '.join(SITES)})"
        )
    assert not wrong, "\n".join(wrong)


def test_selected_series_load_with_truth_geometry(studies: list[SyntheticStudy]) -> None:
    for study in studies[:: len(SEEDS)]:  # one study per site
        selection = select_series([ds for s in study.series for ds in s.datasets])
        truth = {s.series_uid: s for s in study.series}
        assert selection.study_uid == study.study_uid
        for sequence, chosen in selection.chosen.items():
            series = truth[chosen.series_uid]
            assert series.sequence == sequence.value
            assert series.role not in ("phase",)
            if sequence is SequenceClass.DWI:
                dwi = diffusion_volumes(list(chosen.files))
                volume = dwi.trace
                assert dwi.b_value == pytest.approx(1000.0)
                expected = series.pixels(b_value=dwi.b_value)
            else:
                volume = load_series(chosen.files)
                expected = series.pixels()
            assert np.allclose(volume.spacing, series.spacing, atol=1e-3), sequence
            # compare through world coordinates: the truth stack may run either way
            if np.dot(volume.direction[:, 2], series.direction[:, 2]) < 0:
                expected = expected[::-1]
            assert np.allclose(volume.direction[:, :2], series.direction[:, :2], atol=1e-4)
            assert volume.shape == expected.shape
            assert np.allclose(volume.array, expected.astype(np.float32) * _slope(chosen))


def _slope(chosen: object) -> float:
    files = chosen.files  # type: ignore[attr-defined]
    first = files[0]
    slope = getattr(first, "RescaleSlope", None)
    return float(slope) if slope is not None else 1.0


def test_inspect_cli_on_a_written_study(tmp_path: Path, studies: list[SyntheticStudy]) -> None:
    study = studies[0]
    folder = write_study(study, tmp_path)
    exe = shutil.which("dicom-node", path=str(Path(sys.executable).parent))
    assert exe is not None, "the dicom-node console script is not installed in the venv"
    run = subprocess.run(
        [exe, "inspect", str(folder), "--json"], capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["study_uid"] == study.study_uid
    truth = {s.series_uid: s for s in study.series}
    assert {row["series_uid"] for row in report["series"]} == set(truth)
    for row in report["series"]:
        assert row["class"] == truth[row["series_uid"]].sequence
        assert row["reason"]
    for sequence, chosen in report["chosen"].items():
        row = next(r for r in report["series"] if r["series_uid"] == chosen["series_uid"])
        assert sequence in row["selected_for"]
        if row["class"] not in ("LOCALIZER", "OTHER"):
            assert len(row["volume"]["shape"]) == 3, row
    text = subprocess.run(
        [exe, "inspect", str(folder)], capture_output=True, text=True, timeout=240
    )
    assert text.returncode == 0 and "Chosen:" in text.stdout and "why:" in text.stdout
