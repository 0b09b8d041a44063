"""The SCP service: a dispatcher and ``scp_processes`` worker processes.

:class:`ScpService` listens on ``bind:port``, accepts TCP connections and hands
each accepted socket to the worker process with the fewest open associations
(see :mod:`dicom_node.scp.worker`). Past ``max_associations`` open
associations, the connection is still handed over but the worker refuses the
association with A-ASSOCIATE-RJ (transient, local limit exceeded). A worker
that dies is restarted. Before accepting anything, :meth:`ScpService.start`
creates the registry tables and runs :func:`dicom_node.storage.reconcile`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import cast

from dicom_node.config import NodeSettings
from dicom_node.errors import DicomNodeError
from dicom_node.registry import create_registry_engine, init_registry
from dicom_node.scp.worker import SETTINGS_ENV
from dicom_node.storage import DurableStore, reconcile

logger = logging.getLogger(__name__)

_START_TIMEOUT = 60.0
_RESTART_PAUSE = 1.0


class ScpError(DicomNodeError):
    """The SCP could not start (port in use, worker failed to start)."""


@dataclass
class _WorkerHandle:
    index: int
    process: subprocess.Popen[bytes]
    control: socket.socket
    active: int = 0


class ScpService:
    """Receives DICOM associations with ``settings.scp_processes`` worker processes.

    Args:
        settings: node settings (ae_title, port, bind, storage, database, allow-list,
            max_associations, scp_processes, min_free_disk_mb).
        reconcile_on_start: register files on disk missing from the registry in
            :meth:`start` (default ``True``).
    """

    def __init__(self, settings: NodeSettings, reconcile_on_start: bool = True) -> None:
        self.settings = settings
        self.reconcile_on_start = reconcile_on_start
        self._listener: socket.socket | None = None
        self._workers: list[_WorkerHandle] = []
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._next = 0
        self.port: int = settings.port

    # Life cycle ------------------------------------------------------------
    def start(self) -> None:
        """Reconcile, start the workers, listen; return once associations are accepted."""
        if self._thread is not None:
            raise ScpError("SCP service already started")
        DurableStore(self.settings.storage_dir).prepare()
        engine = create_registry_engine(self.settings.database_url)
        try:
            init_registry(engine)
        finally:
            engine.dispose()
        if self.reconcile_on_start:
            # No worker of this service runs yet: every incoming file is abandoned.
            reconcile(self.settings, incoming_older_than=0)
        self._listener = self._listen()
        try:
            for index in range(self.settings.scp_processes):
                self._workers.append(self._spawn(index))
            for worker in self._workers:
                self._wait_ready(worker)
        except BaseException:
            self._kill_workers()
            self._listener.close()
            raise
        self._thread = threading.Thread(target=self._dispatch, name="scp-dispatcher", daemon=True)
        self._thread.start()
        logger.info(
            "SCP %s listening on %s:%d with %d process(es); storage %s",
            self.settings.ae_title,
            self.settings.bind,
            self.port,
            len(self._workers),
            self.settings.storage_dir,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let open associations finish (up to ``timeout`` s), stop workers."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout)
        if self._listener is not None:
            self._listener.close()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.control.send(b"S")
        for worker in self._workers:
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("SCP worker %d did not stop in time; killing it", worker.index)
        self._kill_workers()
        logger.info("SCP %s stopped", self.settings.ae_title)

    def is_alive(self) -> bool:
        """True while the dispatcher runs and every worker process is alive."""
        return (
            self._thread is not None
            and self._thread.is_alive()
            and all(worker.process.poll() is None for worker in self._workers)
        )

    # Internals ---------------------------------------------------------------
    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.settings.bind else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.settings.bind, self.settings.port))
        except OSError as exc:
            listener.close()
            raise ScpError(
                f"cannot listen on bind={self.settings.bind!r} port={self.settings.port}: "
                f"{exc.strerror or exc}"
            ) from exc
        listener.listen(128)
        self.port = int(listener.getsockname()[1])
        return listener

    def _spawn(self, index: int) -> _WorkerHandle:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        settings = self.settings.model_copy(update={"port": self.port})
        env = dict(os.environ)
        env[SETTINGS_ENV] = json.dumps(settings.model_dump(mode="json"))
        command = [
            sys.executable,
            "-m",
            "dicom_node.scp.worker",
            "--control-fd",
            str(child_end.fileno()),
            "--index",
            str(index),
            "--log-level",
            str(logging.getLogger().getEffectiveLevel()),
        ]
        try:
            process = subprocess.Popen(command, env=env, pass_fds=(child_end.fileno(),))
        finally:
            child_end.close()
        return _WorkerHandle(index=index, process=process, control=parent_end)

    def _wait_ready(self, worker: _WorkerHandle) -> None:
        worker.control.settimeout(_START_TIMEOUT)
        try:
            message = worker.control.recv(16)
        except TimeoutError:
            message = b""
        finally:
            worker.control.settimeout(None)
        if message != b"R":
            raise ScpError(
                f"SCP worker {worker.index} did not start (exit code {worker.process.poll()})"
            )

    def _kill_workers(self) -> None:
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(5)
            worker.control.close()

    def _pick(self) -> _WorkerHandle:
        """The worker with the fewest open associations (round robin among equals)."""
        count = len(self._workers)
        order = [self._workers[(self._next + i) % count] for i in range(count)]
        chosen = min(order, key=lambda worker: worker.active)
        self._next = (chosen.index + 1) % count
        return chosen

    def _dispatch(self) -> None:
        listener = cast(socket.socket, self._listener)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, "listen")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        for worker in self._workers:
            selector.register(worker.control, selectors.EVENT_READ, worker)
        try:
            while not self._stopping.is_set():
                for key, _mask in selector.select(timeout=1.0):
                    if key.data == "listen":
                        self._accept()
                    elif isinstance(key.data, _WorkerHandle):
                        self._from_worker(selector, key.data)
        except Exception:
            logger.exception("SCP dispatcher failed")
        finally:
            selector.close()

    def _accept(self) -> None:
        listener = cast(socket.socket, self._listener)
        try:
            conn, address = listener.accept()
        except OSError:
            return
        with conn:
            busy = sum(worker.active for worker in self._workers) >= (
                self.settings.max_associations
            )
            worker = self._pick()
            try:
                socket.send_fds(worker.control, [b"B" if busy else b"A"], [conn.fileno()])
            except OSError:
                logger.error(
                    "SCP worker %d unreachable; dropping connection from %s", worker.index, address
                )
                return
            worker.active += 1

    def _from_worker(self, selector: selectors.BaseSelector, worker: _WorkerHandle) -> None:
        try:
            message = worker.control.recv(16)
        except OSError:
            message = b""
        if message == b"-":
            worker.active = max(0, worker.active - 1)
            return
        if message:
            return
        selector.unregister(worker.control)
        worker.control.close()
        code = worker.process.wait()
        if self._stopping.is_set():
            return
        logger.error("SCP worker %d exited with code %s; restarting it", worker.index, code)
        time.sleep(_RESTART_PAUSE)
        replacement = self._spawn(worker.index)
        try:
            self._wait_ready(replacement)
        except ScpError:
            logger.exception("SCP worker %d could not be restarted", worker.index)
            return
        self._workers[worker.index] = replacement
        selector.register(replacement.control, selectors.EVENT_READ, replacement)
