"""One SCP worker process: serves the associations the dispatcher hands it.

The parent (:class:`dicom_node.scp.service.ScpService`) owns the listening
socket, accepts connections and passes each accepted socket over a Unix
``SOCK_SEQPACKET`` control channel to the least-busy worker. A worker runs
pynetdicom's association machinery for it in a thread, and reports back when
the association ends. Several processes get round the GIL: each association's
receive, fsync and registry work runs in parallel with the others.

Control messages: parent -> worker ``A`` (accept; with an fd), ``B`` (refuse
as busy; with an fd), ``S`` (stop gracefully); worker -> parent ``R`` (ready),
``-`` (an association ended). The worker exits at once when the parent dies.

Run as ``python -m dicom_node.scp.worker --control-fd N --index I``; the
settings arrive as JSON in the ``NT_SCP_WORKER_SETTINGS`` environment variable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
from typing import Any

from pynetdicom import AE, _config, evt
from pynetdicom.transport import AssociationServer, RequestHandler

from dicom_node.config import NodeSettings
from dicom_node.ingest import Registrar
from dicom_node.logging_setup import configure_logging
from dicom_node.registry import create_registry_engine
from dicom_node.scp import reactors
from dicom_node.scp.contexts import add_scp_contexts
from dicom_node.scp.handlers import ScpHandlers
from dicom_node.scp.tuning import LoopDelays
from dicom_node.storage import DurableStore

logger = logging.getLogger(__name__)

SETTINGS_ENV = "NT_SCP_WORKER_SETTINGS"
#: Largest PDU the node accepts: fewer, larger P-DATA fragments per instance.
MAX_PDU_SIZE = 1024 * 1024


#: Per-process tuning of pynetdicom's polling loops, used only where the
#: event-driven loops of :mod:`dicom_node.scp.reactors` do not support the
#: installed pynetdicom.
LOOP_DELAYS = LoopDelays()


class _JoiningRequestHandler(RequestHandler):
    """pynetdicom's request handler, but waits for the association to finish."""

    def handle(self) -> None:
        assoc = self._create_association()
        live: dict[threading.Thread, Any] = getattr(self.server, "live_associations", {})
        live[threading.current_thread()] = assoc
        evt.trigger(assoc, evt.EVT_CONN_OPEN, {"address": self.client_address})
        pipe = reactors.install(assoc) if reactors.supported() else None
        if pipe is None:
            LOOP_DELAYS.opened(assoc)
        try:
            assoc.start()
            assoc.join()
        finally:
            if pipe is None:
                LOOP_DELAYS.closed(assoc)
            elif not assoc.dul.is_alive():
                # A DUL loop that ran closed it already; one that never started did not.
                # (A live loop still reads the pipe's fds: it closes them when it ends.)
                pipe.close()
            live.pop(threading.current_thread(), None)


class PassedSocketServer(AssociationServer):
    """An :class:`AssociationServer` that never binds: sockets are handed to it."""

    #: connection thread -> its pynetdicom Association (to stop idle ones at shutdown)
    live_associations: dict[threading.Thread, Any]

    def server_bind(self) -> None:
        """No listening socket here; the dispatcher process listens."""

    def server_activate(self) -> None:
        """Nothing to listen on."""

    def server_close(self) -> None:
        if self.socket is not None:
            self.socket.close()


def build_ae(settings: NodeSettings) -> AE:
    """The pynetdicom application entity of the node (contexts, limits, timeouts)."""
    ae = AE(ae_title=settings.ae_title)
    add_scp_contexts(ae)
    ae.maximum_pdu_size = MAX_PDU_SIZE
    # The dispatcher enforces max_associations for the whole node.
    ae.maximum_associations = max(64, settings.max_associations * 2)
    ae.network_timeout = 60
    ae.acse_timeout = 30
    ae.dimse_timeout = 60
    return ae


class Worker:
    """The worker's control loop."""

    def __init__(self, settings: NodeSettings, control: socket.socket, index: int) -> None:
        self.settings = settings
        self.control = control
        self.index = index
        self._send_lock = threading.Lock()
        self._busy_peers: set[tuple[str, int]] = set()
        self._threads: dict[threading.Thread, socket.socket] = {}
        self._threads_lock = threading.Lock()
        store = DurableStore(settings.storage_dir)
        store.prepare()
        # pynetdicom's chunked receive writes to tempfile.gettempdir(): make that the
        # incoming area of the storage tree, so the final rename stays on one filesystem.
        tempfile.tempdir = str(store.incoming)
        _config.STORE_RECV_CHUNKED_DATASET = True
        # pynetdicom's default notification handlers format every PDU and DIMSE message
        # for its own log, even when nothing is logged; the node logs what it needs.
        _config.LOG_HANDLER_LEVEL = "none"
        self.engine = create_registry_engine(settings.database_url)
        self.handlers = ScpHandlers(
            settings=settings,
            store=store,
            registrar=Registrar(self.engine),
            is_busy=self._is_busy,
        )
        self.ae = build_ae(settings)
        self.server = PassedSocketServer(
            self.ae,
            (settings.bind, settings.port),
            settings.ae_title,
            self.ae.supported_contexts,
            evt_handlers=self.handlers.bindings(),
            request_handler=_JoiningRequestHandler,
        )
        self.server.live_associations = {}

    def _is_busy(self, ip: str, port: int) -> bool:
        return (ip, port) in self._busy_peers

    def _send(self, message: bytes) -> None:
        # OSError: parent gone; the watchdog ends this process
        with self._send_lock, contextlib.suppress(OSError):
            self.control.send(message)

    def run(self) -> None:
        self._send(b"R")
        threading.Thread(target=self._watch_parent, name="parent-watchdog", daemon=True).start()
        while True:
            try:
                message, fds, _flags, _addr = socket.recv_fds(self.control, 16, 4)
            except OSError:
                message, fds = b"", []
            if not message:
                logger.warning("SCP worker %d: dispatcher gone; exiting", self.index)
                os._exit(1)
            if message == b"S":
                self._drain()
                return
            for fd in fds:
                conn = socket.socket(fileno=fd)
                self._serve(conn, busy=message == b"B")

    def _serve(self, conn: socket.socket, busy: bool) -> None:
        try:
            peer = conn.getpeername()
        except OSError:
            conn.close()
            self._send(b"-")
            return
        key = (str(peer[0]), int(peer[1]))
        if busy:
            self._busy_peers.add(key)
        thread = threading.Thread(
            target=self._serve_thread, args=(conn, peer, key), name=f"conn-{key[0]}:{key[1]}"
        )
        with self._threads_lock:
            self._threads[thread] = conn
        thread.start()

    def _serve_thread(self, conn: socket.socket, peer: Any, key: tuple[str, int]) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.server.finish_request(conn, peer)
        except Exception:
            logger.exception("SCP worker %d: connection from %s failed", self.index, key)
        finally:
            self._busy_peers.discard(key)
            with contextlib.suppress(OSError):
                conn.close()
            with self._threads_lock:
                self._threads.pop(threading.current_thread(), None)
            self._send(b"-")

    def _drain(self, timeout: float = 10.0) -> None:
        """Let established associations finish (up to ``timeout``), then cut the rest.

        A connection that has not (yet) negotiated an association, e.g. a TCP
        health probe, is closed at once: pynetdicom would otherwise wait out its
        ACSE timeout. Anything cut off was not acknowledged, so the sender keeps it.
        """
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = dict(self._threads)
        for thread, conn in threads.items():
            assoc = self.server.live_associations.get(thread)
            if assoc is None or not assoc.is_established:
                _shutdown(conn)
                if assoc is not None:
                    # pynetdicom's acceptor waits up to the ACSE timeout for an
                    # A-ASSOCIATE-RQ; an empty item is how its own timeout ends it.
                    assoc.dul.to_user_queue.put(None)
        for thread, conn in threads.items():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("SCP worker %d: cutting off %s at shutdown", self.index, thread.name)
                _shutdown(conn)
                thread.join(2.0)
        self.engine.dispose()

    def _watch_parent(self) -> None:
        parent = os.getppid()
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                logger.warning("SCP worker %d: dispatcher process died; exiting", self.index)
                os._exit(1)


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--log-level", type=int, default=logging.INFO)
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group; the dispatcher decides
    # when workers stop (it sends "S" and lets open associations finish).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Log records name the worker (LOG_FORMAT uses %(processName)s).
    multiprocessing.current_process().name = f"scp-worker-{args.index}"
    configure_logging(0)
    logging.getLogger().setLevel(args.log_level)
    settings = NodeSettings.model_validate(json.loads(os.environ[SETTINGS_ENV]))
    control = socket.socket(fileno=args.control_fd)
    Worker(settings, control, args.index).run()


if __name__ == "__main__":
    main()
