"""Fixtures for the SCP tests: studies built from pydicom's MR files, a running SCP, storescu."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from dicom_node.config import NodeSettings
from dicom_node.scp.service import ScpService
from tests.conftest import free_port, require_tool

#: storescu option that makes it propose each transfer syntax (plus the uncompressed ones).
STORESCU_PROPOSE = {
    str(ExplicitVRLittleEndian): "-xe",
    str(ImplicitVRLittleEndian): "-xi",
    str(ExplicitVRBigEndian): "-xb",
    str(DeflatedExplicitVRLittleEndian): "-xd",
    str(JPEGLosslessSV1): "-xs",
    str(JPEG2000Lossless): "-xv",
    str(JPEGLSLossless): "-xt",
    str(RLELossless): "-xr",
}

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def dataset_bytes(path: Path) -> bytes:
    """The bytes of a DICOM file after its File Meta Information (group length based)."""
    data = path.read_bytes()
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        raise ValueError(f"{path} has no File Meta group length")
    group_length = int.from_bytes(data[140:144], "little")
    return data[144 + group_length :]


def restamp(source: Path, dest: Path, study_uid: str, series_uid: str, number: int) -> Path:
    ds = dcmread(source)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = number
    ds.SeriesNumber = int(series_uid.rsplit(".", 1)[-1]) % 1000
    # dcmtk drops Data Set Trailing Padding when it sends; without it storescu sends
    # the dataset as stored, so the received bytes can be compared one to one.
    if "DataSetTrailingPadding" in ds:
        del ds.DataSetTrailingPadding
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds["PixelData"].VR = "OB"  # PS3.5 A.4 (some bundled files say OW; dcmtk fixes it)
    ds.save_as(dest, enforce_file_format=True)
    return dest


def build_mr_study(folder: Path, copies: int = 2) -> list[Path]:
    """A multi-series MR study from pydicom's bundled files, with fresh UIDs.

    Series 1: explicit LE; series 2: implicit LE + explicit big endian + deflated;
    series 3: RLE, JPEG 2000 lossless, JPEG-LS lossless and JPEG lossless SV1 (dcmcjpeg).
    """
    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    series = [generate_uid() for _ in range(3)]
    plan: list[tuple[str, int]] = [
        ("MR_small.dcm", 0),
        ("MR_small_implicit.dcm", 1),
        ("MR_small_bigendian.dcm", 1),
        ("MR_small_RLE.dcm", 2),
        ("MR_small_jp2klossless.dcm", 2),
        ("MR_small_jpeg_ls_lossless.dcm", 2),
    ]
    files: list[Path] = []
    number = 0
    for name, series_index in plan:
        source = Path(str(get_testdata_file(name)))
        for _ in range(copies):
            number += 1
            dest = folder / f"im{number:04d}.dcm"
            files.append(restamp(source, dest, study, series[series_index], number))
    # Deflated: re-encode an explicit LE copy (pydicom deflates on write).
    for _ in range(copies):
        number += 1
        ds = dcmread(files[0])
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series[1]
        ds.InstanceNumber = number
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        dest = folder / f"im{number:04d}.dcm"
        ds.save_as(dest, enforce_file_format=True)
        files.append(dest)
    # JPEG lossless, process 14 selection value 1, by dcmtk.
    require_tool("dcmcjpeg")
    for _ in range(copies):
        number += 1
        plain = restamp(files[0], folder / "plain.tmp", study, series[2], number)
        dest = folder / f"im{number:04d}.dcm"
        subprocess.run(["dcmcjpeg", "+e1", str(plain), str(dest)], check=True, env=DCMTK_ENV)
        plain.unlink()
        files.append(dest)
    return files


def storescu(
    files: list[Path],
    port: int,
    calling_ae: str = "STORESCU",
    called_ae: str = "NEUROTRIAGE",
    extra: tuple[str, ...] = (),
    timeout: float = 120,
) -> list[subprocess.CompletedProcess[str]]:
    """Send ``files`` with dcmtk storescu, one association per transfer syntax."""
    require_tool("storescu")
    groups: dict[str, list[Path]] = {}
    for path in files:
        syntax = str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        groups.setdefault(syntax, []).append(path)
    results = []
    for syntax, paths in groups.items():
        command = [
            "storescu",
            "-v",
            "-aet",
            calling_ae,
            "-aec",
            called_ae,
            "-R",
            STORESCU_PROPOSE[syntax],
            *extra,
            "127.0.0.1",
            str(port),
            *map(str, paths),
        ]
        results.append(
            subprocess.run(command, capture_output=True, text=True, env=DCMTK_ENV, timeout=timeout)
        )
    return results


@pytest.fixture
def scp_factory(tmp_path: Path) -> Iterator[Callable[..., ScpService]]:
    """Start ScpService instances on free ports; all are stopped after the test."""
    services: list[ScpService] = []

    def start(**overrides: Any) -> ScpService:
        values: dict[str, Any] = {
            "port": free_port(),
            "bind": "127.0.0.1",
            "data_dir": tmp_path / "node",
            "allow": ["STORESCU", "ECHOSCU", "PYNETDICOM"],
            "scp_processes": 1,
            "min_free_disk_mb": 0,
        }
        values.update(overrides)
        service = ScpService(NodeSettings(**values))
        service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop(timeout=5)


@pytest.fixture
def dcmtk_tools() -> None:
    for tool in ("storescu", "echoscu", "dcmcjpeg"):
        require_tool(tool)
    if shutil.which("storescu") is None:  # pragma: no cover - require_tool fails first
        pytest.fail("dcmtk missing")
