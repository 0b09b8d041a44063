"""``dicom-node echo`` and ``dicom-node send`` against the node's SCP."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicom_node.cli import main
from dicom_node.cli.scu import collect_files, send_files
from dicom_node.config import Destination
from dicom_node.scp.service import ScpService
from dicom_node.storage import instance_path
from tests.conftest import require_tool
from tests.integration.scp.conftest import build_mr_study, dataset_bytes, restamp

pytestmark = pytest.mark.integration
AS_NTSCU = ("--calling-ae", "NTSCU")


def test_echo_command(scp_factory: Callable[..., ScpService]) -> None:
    service = scp_factory(allow=["NTSCU"])
    peer = f"NEUROTRIAGE@127.0.0.1:{service.port}"
    runner = CliRunner()
    ok = runner.invoke(main, ["echo", peer, "--calling-ae", "NTSCU"])
    assert ok.exit_code == 0, ok.output
    assert "0x0000 Success" in ok.output
    refused = runner.invoke(main, ["echo", peer, "--calling-ae", "STRANGER"])
    assert refused.exit_code == 1
    assert "association rejected" in refused.output
    assert "Calling AE title not recognised" in refused.output


def test_send_folder_bit_exact_with_per_file_status(
    tmp_path: Path, scp_factory: Callable[..., ScpService]
) -> None:
    folder = tmp_path / "study"
    files = build_mr_study(folder / "nested", copies=1)
    (folder / "README.txt").write_text("not DICOM")
    service = scp_factory(allow=["NTSCU"])
    result = CliRunner().invoke(
        main,
        ["send", str(folder), "--to", f"NEUROTRIAGE@127.0.0.1:{service.port}", *AS_NTSCU],
    )
    assert result.exit_code == 0, result.output
    assert f"sent {len(files)} of {len(files)} file(s)" in result.output
    assert "README.txt: skipped" in result.output
    for sent in files:
        assert f"{sent}: 0x0000 Success" in result.output
        ds = dcmread(sent, stop_before_pixels=True)
        stored = instance_path(
            service.settings.storage_dir,
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
        )
        # Every syntax, deflated included: the bytes on disk are the bytes sent.
        assert dataset_bytes(stored) == dataset_bytes(sent), sent.name


def test_send_reports_failures_with_exit_code_1(
    tmp_path: Path, scp_factory: Callable[..., ScpService]
) -> None:
    files = build_mr_study(tmp_path / "study", copies=1)
    service = scp_factory(allow=["NTSCU"], min_free_disk_mb=1 << 40, scp_processes=1)
    result = CliRunner().invoke(
        main,
        ["send", str(files[0]), "--to", f"NEUROTRIAGE@127.0.0.1:{service.port}", *AS_NTSCU],
    )
    assert result.exit_code == 1
    assert "0xA700 Refused: Out of Resources" in result.output
    assert "sent 0 of 1 file(s)" in result.output


def test_lossy_and_other_compressed_syntaxes_are_stored_as_received(
    tmp_path: Path, scp_factory: Callable[..., ScpService]
) -> None:
    """JPEG baseline / extended / process 14, JPEG-LS near-lossless, JPEG 2000 lossy (SC, MR)."""
    study, series = generate_uid(), generate_uid()
    folder = tmp_path / "send"
    folder.mkdir()
    files = [
        restamp(Path(str(get_testdata_file(name))), folder / name, study, series, number)
        for number, name in enumerate(
            [
                "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline (process 1)
                "JPGExtended.dcm",  # JPEG extended (process 2 and 4)
                "JPEGLSNearLossless_16.dcm",  # JPEG-LS near-lossless
                "JPEG2000.dcm",  # JPEG 2000 (lossy)
            ],
            start=1,
        )
    ]
    plain = restamp(
        Path(str(get_testdata_file("MR_small.dcm"))), tmp_path / "p.dcm", study, series, 9
    )
    process14 = folder / "process14.dcm"
    subprocess.run([require_tool("dcmcjpeg"), "+el", str(plain), str(process14)], check=True)
    files.append(process14)

    service = scp_factory(allow=["NTSCU"])
    peer = Destination(ae_title="NEUROTRIAGE", host="127.0.0.1", port=service.port)
    results = send_files(collect_files(folder)[0], peer, "NTSCU")
    assert [code for _, code, _ in results] == [0] * len(files), results
    syntaxes = set()
    for sent in files:
        ds = dcmread(sent, stop_before_pixels=True)
        syntaxes.add(str(ds.file_meta.TransferSyntaxUID))
        stored = instance_path(
            service.settings.storage_dir,
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
        )
        assert dataset_bytes(stored) == dataset_bytes(sent), sent.name
    assert syntaxes == {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.91",
    }
