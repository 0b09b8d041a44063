"""The event-driven association reactors (dicom_node.scp.reactors) with a real pynetdicom peer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pynetdicom import AE, _config, evt
from pynetdicom.sop_class import Verification

from dicom_node.scp import reactors

pytestmark = pytest.mark.skipif(not reactors.supported(), reason="pynetdicom version not mirrored")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    def __init__(self, network_timeout: float | None = 60) -> None:
        self.stored: list[str] = []
        self.released = threading.Event()
        self.aborted = threading.Event()
        self.ae = AE(ae_title="NODE")
        self.ae.add_supported_context(Verification)
        self.ae.add_supported_context(MRImageStorage, ExplicitVRLittleEndian)
        self.ae.network_timeout = network_timeout
        self.port = _free_port()
        handlers = [
            (evt.EVT_CONN_OPEN, lambda event: reactors.install(event.assoc)),
            (evt.EVT_C_STORE, self._store),
            (evt.EVT_RELEASED, lambda event: self.released.set()),
            (evt.EVT_ABORTED, lambda event: self.aborted.set()),
        ]
        self.server = self.ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=handlers
        )

    def _store(self, event: Any) -> int:
        self.stored.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture()
def server() -> Iterator[_Server]:
    _config.LOG_HANDLER_LEVEL = "none"
    srv = _Server()
    yield srv
    srv.close()


def _client() -> AE:
    ae = AE(ae_title="SCU")
    ae.add_requested_context(Verification)
    ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    return ae


def _instance() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MR"
    return ds


def test_echo_store_and_release(server: _Server) -> None:
    assoc = _client().associate("127.0.0.1", server.port, ae_title="NODE")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    sent = [_instance() for _ in range(20)]
    statuses = [assoc.send_c_store(ds).Status for ds in sent]
    assoc.release()
    assert statuses == [0x0000] * 20
    assert server.stored == [str(ds.SOPInstanceUID) for ds in sent]
    assert server.released.wait(5)


def test_peer_abort_ends_the_association(server: _Server) -> None:
    assoc = _client().associate("127.0.0.1", server.port, ae_title="NODE")
    assert assoc.is_established
    assoc.abort()
    assert server.aborted.wait(5)


_IDLE_CLIENT = """
import sys, time
from pynetdicom import AE
from pynetdicom.sop_class import Verification
ae = AE(ae_title="SCU")
ae.add_requested_context(Verification)
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="NODE")
print("up" if assoc.is_established else "refused", flush=True)
time.sleep(float(sys.argv[2]))
assoc.release()
"""


def test_idle_association_does_not_poll() -> None:
    """pynetdicom's own loops cost ~17 % of a core per idle association (measured here)."""
    _config.LOG_HANDLER_LEVEL = "none"
    srv = _Server()
    client = subprocess.Popen(
        [sys.executable, "-c", _IDLE_CLIENT, str(srv.port), "3.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "up"
        time.sleep(0.3)
        start_cpu, start = time.process_time(), time.monotonic()
        time.sleep(2.0)
        share = (time.process_time() - start_cpu) / (time.monotonic() - start)
        assert client.wait(10) == 0
        assert srv.released.wait(5)
    finally:
        client.kill()
        srv.close()
    assert share < 0.04, f"idle association used {share:.0%} of a core"


def test_network_timeout_still_fires() -> None:
    _config.LOG_HANDLER_LEVEL = "none"
    srv = _Server(network_timeout=0.5)
    try:
        assoc = _client().associate("127.0.0.1", srv.port, ae_title="NODE")
        assert assoc.is_established
        assert srv.aborted.wait(5), "idle timeout did not end the association"
        deadline = time.monotonic() + 5
        while assoc.is_established and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not assoc.is_established
    finally:
        srv.close()


def test_associations_leave_no_descriptor_behind(server: _Server) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    ae = _client()
    assoc = ae.associate("127.0.0.1", server.port, ae_title="NODE")  # warm-up
    assoc.release()
    time.sleep(0.2)
    before = open_fds()
    for _ in range(15):
        assoc = ae.associate("127.0.0.1", server.port, ae_title="NODE")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
    deadline = time.monotonic() + 5
    while open_fds() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds() <= before  # each association's wake-up pipe is closed
