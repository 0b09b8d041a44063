"""Study completeness: a study is complete after a quiet period without new instances.

DICOM has no "end of study" message, so the node waits ``quiet_period``
seconds after the last received instance. The :class:`CompletenessWatcher`
thread (in the ``serve`` process) polls the registry about twice a second; a
complete study either gets a new analysis version (:mod:`dicom_node.dispatch`)
or is marked ``not_analysed`` with the reason from :mod:`dicom_node.rules`.
An instance arriving later re-opens the study (the SCP moves it back to
``receiving``) and the next completion creates the next version.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from dicom_node.config import AnalysisRules
from dicom_node.dispatch import TaskSender, create_job, enqueue_job, requeue_pending
from dicom_node.registry import AnalysisJob, Study, StudyState
from dicom_node.registry.models import utcnow
from dicom_node.registry.transitions import transition
from dicom_node.rules import evaluate_study

logger = logging.getLogger(__name__)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def complete_quiet_studies(
    sessions: sessionmaker[Session],
    *,
    quiet_period: float,
    rules: AnalysisRules,
    send: TaskSender,
    now: datetime | None = None,
) -> list[str]:
    """Complete every ``receiving`` study quiet for ``quiet_period`` seconds.

    Each study is handled in its own transaction, with the row locked on
    PostgreSQL (``FOR UPDATE SKIP LOCKED``) and its quietness re-checked, so an
    instance committed meanwhile by the SCP keeps it open. Returns the UIDs of
    the studies completed.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=quiet_period)
    with sessions() as session:
        candidates = session.scalars(
            select(Study.id)
            .where(Study.state == StudyState.RECEIVING)
            .where(Study.last_instance_at <= cutoff)
            .order_by(Study.last_instance_at)
        ).all()
    completed: list[str] = []
    for study_id in candidates:
        with sessions() as session:
            study = session.scalars(
                select(Study)
                .where(Study.id == study_id)
                .options(selectinload(Study.series), selectinload(Study.jobs))
                .with_for_update(skip_locked=True, of=Study)
            ).one_or_none()
            if (
                study is None
                or study.state is not StudyState.RECEIVING
                or _aware(study.last_instance_at) > cutoff
            ):
                session.rollback()
                continue
            job = _complete(session, study, quiet_period, rules, now)
            session.commit()
            completed.append(study.study_uid)
            if job is not None:
                try:
                    enqueue_job(session, job, send)
                except Exception:
                    # Committed without a task id: requeue_pending sends it later.
                    logger.exception(
                        "study %s: could not enqueue analysis version %d, will retry",
                        study.study_uid,
                        job.version,
                    )
    return completed


def _complete(
    session: Session,
    study: Study,
    quiet_period: float,
    rules: AnalysisRules,
    now: datetime,
) -> AnalysisJob | None:
    transition(
        session,
        study,
        StudyState.COMPLETE,
        f"no new instance for {quiet_period:g} s ({study.instance_count} instances)",
        at=now,
    )
    decision = evaluate_study(study, rules)
    if not decision.analyse:
        study.not_analysed_reason = decision.reason
        transition(session, study, StudyState.NOT_ANALYSED, decision.reason)
        return None
    study.not_analysed_reason = None
    logger.info("study %s: analysed (%s)", study.study_uid, decision.reason)
    return create_job(session, study)


class CompletenessWatcher(threading.Thread):
    """Background thread completing quiet studies every ``interval`` seconds.

    It also re-sends, every ``requeue_interval`` seconds, jobs that were
    committed but never got a task id.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        quiet_period: float,
        rules: AnalysisRules,
        send: TaskSender,
        interval: float = 0.5,
        requeue_interval: float = 30.0,
    ) -> None:
        super().__init__(name="completeness-watcher", daemon=True)
        self._sessions = sessions
        self._quiet_period = quiet_period
        self._rules = rules
        self._send = send
        self._interval = interval
        self._requeue_interval = requeue_interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        logger.info("completeness watcher: quiet period %g s", self._quiet_period)
        last_requeue = 0.0
        elapsed = 0.0
        while not self._stop_event.wait(self._interval):
            elapsed += self._interval
            try:
                complete_quiet_studies(
                    self._sessions,
                    quiet_period=self._quiet_period,
                    rules=self._rules,
                    send=self._send,
                )
                if elapsed - last_requeue >= self._requeue_interval:
                    last_requeue = elapsed
                    requeue_pending(self._sessions, self._send)
            except Exception:
                # The registry or the broker may be briefly unavailable; keep watching.
                logger.exception("completeness watcher: pass failed, retrying")

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)
