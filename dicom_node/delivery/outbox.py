"""Durable delivery outbox: one registry row per (object, destination).

Producers call :func:`enqueue_delivery` in the same transaction that records
the object. The :class:`DeliverySweeper` thread (in the ``serve`` process)
finds rows that are due, leases them (``in_progress`` until ``lease_s``
seconds from now) and sends ``pipeline.tasks.deliver_object`` with the row id
and attempt number to the ``io`` queue. The worker calls
:func:`attempt_delivery`, which claims the attempt atomically (a duplicated or
stale message does nothing), sends by C-STORE and records the outcome:

* delivered -> ``delivered``;
* transient failure -> ``pending`` again after an exponential backoff
  (``delivery_backoff_base * 2**(attempts-1)``, capped at
  ``delivery_backoff_max``), ``failed`` after ``delivery_max_attempts``;
* permanent failure -> ``failed`` with the error (shown by ``dicom-node status``).

Everything lives in the registry, so retries survive restarts of the node, the
worker and the broker; a lease that expires (worker killed mid-send) makes the
row due again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from pydicom import dcmread
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.config import Destination, NodeSettings
from dicom_node.delivery.scu import AssociationRejectedPermanently, send_file
from dicom_node.dispatch import DELIVER_TASK, TaskSender
from dicom_node.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from dicom_node.registry import AnalysisJob, Delivery, DeliveryState, Study, StudyState
from dicom_node.registry.models import utcnow
from dicom_node.registry.transitions import transition

logger = logging.getLogger(__name__)

#: A permanent association rejection is retried this many times before the row fails.
PERMANENT_REJECT_TRIES = 3

#: send_file-compatible callable (path, destination, calling_ae=...)
FileSender = Callable[..., None]


def backoff_seconds(attempts: int, base: float, maximum: float) -> float:
    """Delay before the next try after ``attempts`` failed attempts."""
    return float(min(maximum, base * 2 ** max(0, attempts - 1)))


def enqueue_delivery(
    session: Session,
    study: Study,
    path: Path,
    destinations: Iterable[Destination | str],
    job: AnalysisJob | None = None,
) -> list[Delivery]:
    """Add outbox rows sending the DICOM file ``path`` to each destination.

    Idempotent: a row that exists for the same SOP Instance UID and destination
    is kept as it is. The caller commits. Returns the rows created.
    """
    header = dcmread(path, stop_before_pixels=True)
    sop_instance = str(header.SOPInstanceUID)
    existing = set(
        session.scalars(
            select(Delivery.destination).where(Delivery.sop_instance_uid == sop_instance)
        ).all()
    )
    created = []
    for destination in destinations:
        name = str(destination)
        if name in existing:
            continue
        row = Delivery(
            study=study,
            job_id=job.id if job is not None else None,
            path=str(Path(path).resolve()),
            sop_instance_uid=sop_instance,
            sop_class_uid=str(header.SOPClassUID),
            transfer_syntax_uid=str(header.file_meta.TransferSyntaxUID),
            destination=name,
            state=DeliveryState.PENDING,
            next_attempt_at=utcnow(),
        )
        session.add(row)
        created.append(row)
        existing.add(name)
    if created:
        logger.info(
            "study %s: SOP Instance %s queued for %s",
            study.study_uid,
            sop_instance,
            ", ".join(r.destination for r in created),
        )
    return created


def sweep_due(
    sessions: sessionmaker[Session],
    send: TaskSender,
    *,
    lease_s: float = 300.0,
    limit: int = 200,
    now: datetime | None = None,
) -> int:
    """Lease every due row and send its delivery task; returns the number sent."""
    now = now or utcnow()
    sent = 0
    with sessions() as session:
        rows = session.scalars(
            select(Delivery)
            .where(Delivery.state.in_([DeliveryState.PENDING, DeliveryState.IN_PROGRESS]))
            .where(Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        leased = []
        for row in rows:
            if row.state is DeliveryState.IN_PROGRESS:
                logger.warning("delivery %d: lease expired, sending again", row.id)
            row.state = DeliveryState.IN_PROGRESS
            row.next_attempt_at = now + timedelta(seconds=lease_s)
            leased.append((row.id, row.attempts))
        session.commit()
    for delivery_id, attempts in leased:
        try:
            send(DELIVER_TASK, {"delivery_id": delivery_id, "attempt": attempts})
            sent += 1
        except Exception:
            logger.exception("delivery %d: could not enqueue, back to pending", delivery_id)
            with sessions() as session:
                session.execute(
                    update(Delivery)
                    .where(Delivery.id == delivery_id)
                    .where(Delivery.state == DeliveryState.IN_PROGRESS)
                    .values(state=DeliveryState.PENDING, next_attempt_at=now)
                )
                session.commit()
    return sent


def attempt_delivery(
    sessions: sessionmaker[Session],
    delivery_id: int,
    attempt: int,
    settings: NodeSettings,
    *,
    sender: FileSender = send_file,
) -> DeliveryState | None:
    """Make attempt number ``attempt + 1`` of row ``delivery_id``; None if not ours.

    The attempt is claimed with a conditional update (``attempts == attempt``
    and ``in_progress``), so a duplicated message or one from an expired lease
    sends nothing.
    """
    with sessions() as session:
        claimed = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .where(Delivery.state == DeliveryState.IN_PROGRESS)
            .where(Delivery.attempts == attempt)
            .values(attempts=attempt + 1)
        )
        session.commit()
        if getattr(claimed, "rowcount", 0) != 1:
            logger.info("delivery %d attempt %d: already handled, skipped", delivery_id, attempt)
            return None
        row = session.get(Delivery, delivery_id)
        if row is None:  # deleted with its study meanwhile
            return None
        study_uid = row.study.study_uid
        try:
            sender(Path(row.path), Destination.parse(row.destination), calling_ae=settings.ae_title)
        except DeliveryError as exc:
            _record_failure(row, exc, settings)
        else:
            row.state = DeliveryState.DELIVERED
            row.delivered_at = utcnow()
            row.last_error = None
            logger.info(
                "study %s: SOP Instance %s delivered to %s (attempt %d)",
                study_uid,
                row.sop_instance_uid,
                row.destination,
                row.attempts,
            )
        _update_study(session, row.study)
        session.commit()
        return row.state


def _record_failure(row: Delivery, exc: DeliveryError, settings: NodeSettings) -> None:
    row.last_error = str(exc)
    permanent = isinstance(exc, PermanentDeliveryError) or (
        isinstance(exc, AssociationRejectedPermanently) and row.attempts >= PERMANENT_REJECT_TRIES
    )
    if not permanent and not isinstance(exc, TransientDeliveryError):
        permanent = True
    if permanent or row.attempts >= settings.delivery_max_attempts:
        row.state = DeliveryState.FAILED
        logger.error(
            "study %s: delivery %d to %s FAILED after %d attempt(s): %s",
            row.study.study_uid,
            row.id,
            row.destination,
            row.attempts,
            exc,
        )
        return
    delay = backoff_seconds(
        row.attempts, settings.delivery_backoff_base, settings.delivery_backoff_max
    )
    row.state = DeliveryState.PENDING
    row.next_attempt_at = utcnow() + timedelta(seconds=delay)
    logger.warning(
        "study %s: delivery %d to %s failed (attempt %d), retry in %.1f s: %s",
        row.study.study_uid,
        row.id,
        row.destination,
        row.attempts,
        delay,
        exc,
    )


def _update_study(session: Session, study: Study) -> None:
    """``results_ready`` -> ``delivered`` / ``failed`` once every row has an outcome."""
    session.refresh(study, with_for_update=True)  # a concurrent re-opening wins
    if study.state is not StudyState.RESULTS_READY:
        return
    states: Sequence[DeliveryState] = session.scalars(
        select(Delivery.state).where(Delivery.study_id == study.id)
    ).all()
    if any(s in (DeliveryState.PENDING, DeliveryState.IN_PROGRESS) for s in states):
        return
    if all(s is DeliveryState.DELIVERED for s in states):
        transition(session, study, StudyState.DELIVERED, f"{len(states)} object(s) delivered")
    else:
        failed = sum(1 for s in states if s is DeliveryState.FAILED)
        transition(session, study, StudyState.FAILED, f"{failed} delivery(ies) failed")


class DeliverySweeper(threading.Thread):
    """Background thread running :func:`sweep_due` every ``interval`` seconds."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        send: TaskSender,
        *,
        interval: float = 1.0,
        lease_s: float = 300.0,
    ) -> None:
        super().__init__(name="delivery-sweeper", daemon=True)
        self._sessions = sessions
        self._send = send
        self._interval = interval
        self._lease_s = lease_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                sweep_due(self._sessions, self._send, lease_s=self._lease_s)
            except Exception:
                logger.exception("delivery sweeper: pass failed, retrying")

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)
