"""kill -9 the node in the middle of a storescu send; every acknowledged instance survives."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import select

from dicom_node.registry import Instance, Study, create_registry_engine
from dicom_node.storage import instance_path
from tests.conftest import free_port, require_tool
from tests.integration.scp.conftest import DCMTK_ENV, dataset_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_SENT = re.compile(r"Sending file: (\S+)")
_OK = "Received Store Response (Success)"


def _instances(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    source = dcmread(str(get_testdata_file("MR_small.dcm")))
    del source.DataSetTrailingPadding
    source.StudyInstanceUID = generate_uid()
    source.SeriesInstanceUID = generate_uid()
    files = []
    for number in range(1, count + 1):
        source.SOPInstanceUID = generate_uid()
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        source.InstanceNumber = number
        path = folder / f"im{number:04d}.dcm"
        source.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def _start_node(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dicom_node.scp",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--data-dir",
            str(data_dir),
            "--allow",
            "STORESCU",
            "--min-free-disk-mb",
            "0",
            "--processes",
            "2",
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if node.poll() is not None:
            pytest.fail(f"node exited with {node.returncode} while starting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return node
        except OSError:
            time.sleep(0.1)
    node.kill()
    pytest.fail("node did not start listening")


def _acknowledged(storescu_log: str) -> list[Path]:
    """Files for which storescu received a Success response."""
    done: list[Path] = []
    current: str | None = None
    for line in storescu_log.splitlines():
        match = _SENT.search(line)
        if match:
            current = match.group(1)
        elif _OK in line and current is not None:
            done.append(Path(current))
            current = None
    return done


def test_kill_9_mid_send_keeps_every_acknowledged_instance(tmp_path: Path) -> None:
    require_tool("storescu")
    files = _instances(tmp_path / "send", 300)
    data_dir = tmp_path / "node"
    port = free_port()
    node = _start_node(data_dir, port)
    sender = subprocess.Popen(
        [
            "storescu",
            "-v",
            "-aet",
            "STORESCU",
            "-aec",
            "NEUROTRIAGE",
            "-R",
            "-xe",
            "127.0.0.1",
            str(port),
            *map(str, files),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=DCMTK_ENV,
    )
    storage = data_dir / "storage"
    try:
        deadline = time.monotonic() + 60
        while len(list(storage.glob("*/*/*.dcm"))) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        # The whole node (dispatcher and SCP workers) dies at once.
        os.killpg(node.pid, signal.SIGKILL)
        node.wait(10)
        log, _ = sender.communicate(timeout=60)
    finally:
        if sender.poll() is None:
            sender.kill()
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
    acknowledged = _acknowledged(log)
    assert len(acknowledged) >= 20
    assert len(acknowledged) < len(files), "the send finished before the kill"

    restarted = _start_node(data_dir, port)
    try:
        engine = create_registry_engine(f"sqlite:///{(data_dir / 'registry.sqlite').resolve()}")
        with engine.connect() as conn:
            registered = {row.sop_instance_uid: row.path for row in conn.execute(select(Instance))}
            study = conn.execute(select(Study)).one()
        engine.dispose()
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(30)
    on_disk = list(storage.glob("*/*/*.dcm"))
    for sent in acknowledged:
        ds = dcmread(sent, stop_before_pixels=True)
        stored = instance_path(
            storage, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        assert stored.is_file(), f"acknowledged {sent.name} lost"
        assert dataset_bytes(stored) == dataset_bytes(sent)
        assert registered.get(ds.SOPInstanceUID) == str(stored)
    # Everything on disk is registered (reconcile), nothing half-written is left.
    assert len(registered) == len(on_disk) == study.instance_count
    assert not list((storage / ".incoming").iterdir())
