"""Stopping the SCP is prompt even when a peer connected without associating."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from dicom_node.scp.service import ScpService

pytestmark = pytest.mark.integration


def test_stop_is_prompt_after_a_bare_tcp_probe(scp_factory: Callable[..., ScpService]) -> None:
    scp = scp_factory(allow_any=True)
    # A load-balancer style probe: connect, send nothing, hang up.
    probe = socket.create_connection(("127.0.0.1", scp.port))
    time.sleep(0.3)
    probe.close()
    # The node still serves real associations.
    ae = AE(ae_title="PROBE")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=scp.settings.ae_title)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()

    started = time.monotonic()
    scp.stop(timeout=20.0)
    elapsed = time.monotonic() - started
    # pynetdicom alone would wait out its 30 s ACSE timeout for the probe.
    assert elapsed < 8.0, f"stop took {elapsed:.1f} s"
    assert not scp.is_alive()
