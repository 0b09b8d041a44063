"""pynetdicom event handlers of the SCP: association gate, C-ECHO, C-STORE, logging.

Handlers never raise into pynetdicom: every outcome is one of the named
statuses of :mod:`dicom_node.scp.status`. C-STORE uses pynetdicom's chunked
receive (``_config.STORE_RECV_CHUNKED_DATASET``): the P-DATA stream is written
straight to a temporary file (File Meta + the dataset bytes as received) in the
storage filesystem's incoming area, so the handler only reads a few UIDs,
fsyncs, renames and registers. Log lines carry UIDs, AE titles and addresses,
never patient data.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pynetdicom import evt

from dicom_node.config import NodeSettings
from dicom_node.errors import DicomNodeError, StorageError
from dicom_node.ingest import HeaderError, InstanceHeader, Registrar, read_header
from dicom_node.scp import status
from dicom_node.scp.gate import REJECT_LOCAL_LIMIT, AssociationGate, Rejection
from dicom_node.storage import DurableStore, free_disk_mb

logger = logging.getLogger(__name__)


def _wait_quietly(synced: Future[None]) -> None:
    """Let an fsync started on a file that is now refused finish (its errors do not matter)."""
    with contextlib.suppress(OSError):
        synced.result()


def _describe_assoc(assoc: Any) -> str:
    try:
        calling = assoc.requestor.primitive.calling_ae_title
    except AttributeError:
        calling = assoc.requestor.ae_title
    return f"{str(calling).strip()!r}@{assoc.requestor.address}:{assoc.requestor.port}"


@dataclass
class _AssocStats:
    opened: float
    stored: int = 0
    failed: int = 0
    handler_seconds: float = 0.0
    #: Seconds spent per step: parse, store (fsync + rename + directory fsync), register.
    steps: dict[str, float] = field(
        default_factory=lambda: {"parse": 0.0, "store": 0.0, "register": 0.0}
    )

    def add(self, step: str, since: float) -> float:
        now = time.monotonic()
        self.steps[step] += now - since
        return now


@dataclass
class ScpHandlers:
    """The event handlers of one SCP process.

    Args:
        settings: node settings (AE title, allow-list, storage, watermark).
        store: durable storage of this process.
        registrar: registry writer of this process.
        is_busy: tells whether the connection from ``(ip, port)`` must be refused
            because the node has reached ``max_associations``.
    """

    settings: NodeSettings
    store: DurableStore
    registrar: Registrar
    is_busy: Callable[[str, int], bool] = lambda _ip, _port: False
    gate: AssociationGate = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _stats: dict[int, _AssocStats] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.gate = AssociationGate.from_settings(self.settings)

    def bindings(self) -> list[Any]:
        """``(event, handler)`` pairs for the association server."""
        return [
            (evt.EVT_CONN_OPEN, self.on_conn_open),
            (evt.EVT_CONN_CLOSE, self.on_conn_close),
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_C_ECHO, self.on_c_echo),
            (evt.EVT_C_STORE, self.on_c_store),
        ]

    # Connection and association --------------------------------------
    def on_conn_open(self, event: Any) -> None:
        host, port = event.address[0], event.address[1]
        logger.info("connection from %s:%s", host, port)
        with self._lock:
            self._stats[id(event.assoc)] = _AssocStats(opened=time.monotonic())

    def on_conn_close(self, event: Any) -> None:
        with self._lock:
            stats = self._stats.pop(id(event.assoc), None)
        if stats is None or not (stats.stored or stats.failed):
            logger.info("connection from %s:%s closed", event.address[0], event.address[1])
            return
        elapsed = time.monotonic() - stats.opened
        count = max(1, stats.stored + stats.failed)
        logger.info(
            "connection from %s:%s closed: %d instance(s) stored, %d refused in %.2f s "
            "(%.1f/s); per instance %.2f ms in the store handler (%s)",
            event.address[0],
            event.address[1],
            stats.stored,
            stats.failed,
            elapsed,
            stats.stored / elapsed if elapsed > 0 else 0.0,
            1000 * stats.handler_seconds / count,
            ", ".join(f"{step} {1000 * spent / count:.2f}" for step, spent in stats.steps.items()),
        )

    def on_requested(self, event: Any) -> None:
        """EVT_REQUESTED: refuse unknown callers with a proper A-ASSOCIATE-RJ."""
        assoc = event.assoc
        try:
            request = assoc.requestor.primitive
            calling = str(request.calling_ae_title)
            called = str(request.called_ae_title)
            peer_ip, peer_port = str(assoc.requestor.address), int(assoc.requestor.port)
            rejection = self.gate.check(calling, called, peer_ip)
            if rejection is None and self.is_busy(peer_ip, peer_port):
                rejection = Rejection(
                    *REJECT_LOCAL_LIMIT,
                    why=f"max_associations={self.settings.max_associations} reached",
                )
            if rejection is None:
                logger.info("association from %s accepted", _describe_assoc(assoc))
                return
            logger.warning(
                "association from %r@%s:%s to %r rejected: %s",
                calling.strip(),
                peer_ip,
                peer_port,
                called.strip(),
                rejection.why,
            )
            assoc.acse.send_reject(rejection.result, rejection.source, rejection.reason)
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()
        except Exception:
            logger.exception("association gate failed; aborting the association")
            assoc.abort()

    # Services -----------------------------------------------------------
    def on_c_echo(self, event: Any) -> int:
        return status.SUCCESS

    def on_c_store(self, event: Any) -> int:
        """EVT_C_STORE: durable store then register, then Success."""
        started = time.monotonic()
        temp: Path | None = None
        result = status.PROCESSING_FAILURE
        try:
            temp = Path(event.dataset_path)
            result = self._store(event, temp)
        except Exception:
            logger.exception(
                "C-STORE from %s: unexpected error for SOPInstanceUID %s",
                _describe_assoc(event.assoc),
                getattr(event.request, "AffectedSOPInstanceUID", "?"),
            )
        finally:
            if temp is not None:
                temp.unlink(missing_ok=True)
            stats = self._stats.get(id(event.assoc))
            if stats is not None:
                stats.handler_seconds += time.monotonic() - started
                if result == status.SUCCESS:
                    stats.stored += 1
                else:
                    stats.failed += 1
        return result

    def _store(self, event: Any, temp: Path) -> int:
        request = event.request
        stats = self._stats.get(id(event.assoc)) or _AssocStats(opened=0.0)
        started = time.monotonic()
        # The file's fsync runs while its header is parsed; the rename waits for it.
        synced = self.store.start_sync(temp)
        try:
            header = read_header(temp, transfer_syntax=str(event.context.transfer_syntax))
            stats.add("parse", started)
        except HeaderError as exc:
            _wait_quietly(synced)
            uids = dict(exc.uids)
            uids.setdefault("AffectedSOPInstanceUID", str(request.AffectedSOPInstanceUID))
            uids.setdefault("AffectedSOPClassUID", str(request.AffectedSOPClassUID))
            logger.error(
                "C-STORE from %s refused: %s (%s)",
                _describe_assoc(event.assoc),
                exc,
                ", ".join(f"{key}={value}" for key, value in uids.items()),
            )
            return (
                status.CANNOT_UNDERSTAND_MISSING_UID
                if exc.missing_uid
                else status.CANNOT_UNDERSTAND
            )
        affected = str(request.AffectedSOPInstanceUID or "").strip()
        if affected != header.sop_instance_uid:
            logger.error(
                "C-STORE from %s refused: study %s: dataset SOPInstanceUID %s differs from "
                "the command's AffectedSOPInstanceUID %s",
                _describe_assoc(event.assoc),
                header.study_uid,
                header.sop_instance_uid,
                affected,
            )
            _wait_quietly(synced)
            return status.CANNOT_UNDERSTAND_UID_MISMATCH
        free = free_disk_mb(self.store.storage_dir)
        if free < self.settings.min_free_disk_mb:
            logger.error(
                "C-STORE refused (out of resources): study %s, SOPInstanceUID %s: free disk "
                "%.0f MiB is below min_free_disk_mb=%d",
                header.study_uid,
                header.sop_instance_uid,
                free,
                self.settings.min_free_disk_mb,
            )
            _wait_quietly(synced)
            return status.OUT_OF_RESOURCES
        return self._commit(event, temp, header, stats, synced)

    def _commit(
        self,
        event: Any,
        temp: Path,
        header: InstanceHeader,
        stats: _AssocStats,
        synced: Future[None],
    ) -> int:
        started = time.monotonic()
        try:
            final, size = self.store.commit(
                temp, header.study_uid, header.series_uid, header.sop_instance_uid, synced
            )
            started = stats.add("store", started)
        except StorageError as exc:
            logger.error("C-STORE from %s failed: %s", _describe_assoc(event.assoc), exc)
            return status.OUT_OF_RESOURCES_WRITE_FAILED
        calling = str(event.assoc.requestor.ae_title).strip() or None
        try:
            is_new = self.registrar.register(header, final, size, calling_ae=calling)
            stats.add("register", started)
        except DicomNodeError as exc:
            logger.error(
                "C-STORE from %s: study %s: stored at %s but not registered (reconcile will "
                "register it at the next start): %s",
                _describe_assoc(event.assoc),
                header.study_uid,
                final,
                exc,
            )
            return status.PROCESSING_FAILURE
        logger.debug(
            "study %s: %s SOPInstanceUID %s (%d bytes)",
            header.study_uid,
            "stored" if is_new else "re-stored",
            header.sop_instance_uid,
            size,
        )
        return status.SUCCESS
