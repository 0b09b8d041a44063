"""Association acceptance (echoscu, allow-list) and failure statuses (watermark, bad data)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import MRImageStorage
from sqlalchemy import func, select

from dicom_node.registry import Instance, create_registry_engine
from dicom_node.scp import status
from dicom_node.scp.service import ScpService
from tests.conftest import require_tool
from tests.integration.scp.conftest import DCMTK_ENV, build_mr_study

pytestmark = pytest.mark.integration


def echoscu(
    port: int, calling: str, called: str = "NEUROTRIAGE"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("echoscu"), "-v", "-aet", calling, "-aec", called, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        env=DCMTK_ENV,
        timeout=60,
    )


def test_echo_allow_list_and_rejections(scp_factory: Callable[..., ScpService]) -> None:
    service = scp_factory()
    accepted = echoscu(service.port, "ECHOSCU")
    assert accepted.returncode == 0, accepted.stderr
    assert "Received Echo Response (Success)" in accepted.stderr

    unknown = echoscu(service.port, "INTRUDER")
    assert unknown.returncode != 0
    assert "Association Rejected" in unknown.stderr
    assert "Rejected Permanent, Source: Service User" in unknown.stderr
    assert "Calling AE Title Not Recognized" in unknown.stderr

    wrong_called = echoscu(service.port, "ECHOSCU", called="SOMEONEELSE")
    assert wrong_called.returncode != 0
    assert "Called AE Title Not Recognized" in wrong_called.stderr

    # The node keeps serving after rejections.
    assert echoscu(service.port, "ECHOSCU").returncode == 0


def test_host_pinned_caller_from_the_wrong_host_is_rejected(
    scp_factory: Callable[..., ScpService],
) -> None:
    service = scp_factory(allow=["ECHOSCU@192.0.2.10", "LOCAL@127.0.0.1"])
    pinned = echoscu(service.port, "ECHOSCU")
    assert pinned.returncode != 0
    assert "Calling AE Title Not Recognized" in pinned.stderr
    assert echoscu(service.port, "LOCAL").returncode == 0


def test_allow_any_accepts_unknown_callers(scp_factory: Callable[..., ScpService]) -> None:
    service = scp_factory(allow=[], allow_any=True)
    result = echoscu(service.port, "ANYONE")
    assert result.returncode == 0, result.stderr


def _send(port: int, path: Path) -> int:
    """C-STORE one file as it is on disk (chunked send: no re-encoding); return the status."""
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(MRImageStorage, DeflatedExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="NEUROTRIAGE")
    assert assoc.is_established
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        response = assoc.send_c_store(path)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
        assoc.release()
    return int(response.Status)


def _registered(service: ScpService) -> int:
    engine = create_registry_engine(service.settings.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count(Instance.id))).scalar_one())
    finally:
        engine.dispose()


def test_below_the_disk_watermark_store_is_refused_with_a700(
    tmp_path: Path, scp_factory: Callable[..., ScpService], capfd: pytest.CaptureFixture[str]
) -> None:
    files = build_mr_study(tmp_path / "study", copies=1)
    ds = dcmread(files[0])
    service = scp_factory(min_free_disk_mb=1 << 40, scp_processes=1)
    assert _send(service.port, files[0]) == status.OUT_OF_RESOURCES == 0xA700
    log = capfd.readouterr().err
    assert f"out of resources): study {ds.StudyInstanceUID}" in log
    assert str(ds.PatientName) not in log and ds.PatientID not in log
    assert not list(service.settings.storage_dir.glob("*/*/*.dcm"))
    assert not any(service.settings.storage_dir.joinpath(".incoming").iterdir())
    assert _registered(service) == 0


def _file_with_dataset(path: Path, dataset: bytes, sop_uid: str, syntax: str) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = syntax
    with path.open("wb") as handle:
        handle.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(handle, meta)
        handle.write(dataset)
    return path


def test_unparseable_or_uidless_datasets_fail_with_cxxx_and_the_node_keeps_serving(
    tmp_path: Path, scp_factory: Callable[..., ScpService], capfd: pytest.CaptureFixture[str]
) -> None:
    service = scp_factory(scp_processes=1)
    # Deflated transfer syntax whose payload is not a zlib stream: nothing parses.
    garbage = _file_with_dataset(
        tmp_path / "garbage.dcm",
        b"\xde\xad\xbe\xef" * 40,
        generate_uid(),
        DeflatedExplicitVRLittleEndian,
    )
    assert _send(service.port, garbage) == status.CANNOT_UNDERSTAND == 0xC000

    good = build_mr_study(tmp_path / "study", copies=1)[0]
    ds = dcmread(good)
    del ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    uidless = tmp_path / "uidless.dcm"
    ds.save_as(uidless, enforce_file_format=False)
    assert _send(service.port, uidless) == status.CANNOT_UNDERSTAND_MISSING_UID
    log = capfd.readouterr().err
    assert "C-STORE from 'PYNETDICOM'@127.0.0.1:" in log
    assert "dataset does not parse" in log
    assert f"SOPInstanceUID is missing (SOPClassUID={ds.SOPClassUID}" in log
    assert f"StudyInstanceUID={ds.StudyInstanceUID}" in log
    assert str(ds.PatientName) not in log

    # A new association with a valid instance still succeeds.
    assert _send(service.port, good) == status.SUCCESS
    assert _registered(service) == 1
    assert service.is_alive()


def test_max_associations_refuses_the_extra_caller_transiently(
    scp_factory: Callable[..., ScpService],
) -> None:
    service = scp_factory(max_associations=1, scp_processes=2)
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context("1.2.840.10008.1.1")
    held = ae.associate("127.0.0.1", service.port, ae_title="NEUROTRIAGE")
    assert held.is_established
    try:
        extra = echoscu(service.port, "ECHOSCU")
        assert extra.returncode != 0
        assert "Rejected Transient" in extra.stderr
        assert "Local Limit Exceeded" in extra.stderr
    finally:
        held.release()
    deadline = time.monotonic() + 10
    while echoscu(service.port, "ECHOSCU").returncode != 0:
        assert time.monotonic() < deadline, "the slot was not given back"
        time.sleep(0.2)
