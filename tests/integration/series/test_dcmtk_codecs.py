"""Images compressed by an independent encoder (dcmtk) decode to the same volume."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from pipeline.dicom_fixtures import PLANES, make_mr_series, write_series
from pipeline.volume import load_series
from tests.conftest import require_tool

pytestmark = pytest.mark.integration

TOOLS = {
    "dcmcjpeg": (["+e1"], "1.2.840.10008.1.2.4.70"),
    "dcmcjpls": ([], "1.2.840.10008.1.2.4.80"),
    "dcmcrle": ([], "1.2.840.10008.1.2.5"),
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_dcmtk_compressed_series_loads_bit_exact(tmp_path: Path, tool: str) -> None:
    exe = require_tool(tool)
    args, syntax = TOOLS[tool]
    rng = np.random.default_rng(9)
    truth = rng.integers(0, 4095, size=(5, 48, 40)).astype(np.uint16)
    plain = write_series(
        make_mr_series(truth, (0.8, 0.8, 3.0), (10, 20, 30), PLANES["oblique"], shuffle_seed=2),
        tmp_path / "plain",
    )
    packed = []
    for path in plain:
        out = tmp_path / "packed" / path.name
        out.parent.mkdir(exist_ok=True)
        subprocess.run([exe, *args, str(path), str(out)], check=True, timeout=60)
        assert pydicom.dcmread(out, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
        packed.append(out)
    reference = load_series(plain)
    volume = load_series(packed)
    assert np.array_equal(volume.array, reference.array)
    assert volume.origin == reference.origin and volume.spacing == reference.spacing
