"""``dicom-node echo`` and ``dicom-node send`` against the node's SCP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread

from dicom_node.cli import main
from dicom_node.scp.service import ScpService
from dicom_node.storage import instance_path
from tests.integration.scp.conftest import build_mr_study, dataset_bytes

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
