"""Dispatch: turn a complete study into a versioned analysis job on the ``gpu`` queue.

The task message carries identifiers only (Study Instance UID + version, JSON);
the worker reads everything else from the registry and the storage tree.

Dispatch happens in two commits so that no message can refer to a job the
registry does not have: (1) the job row is created, earlier queued/running jobs
are marked superseded and the study moves to ``queued``; (2) the message is sent
and its Celery task id stored. If the process dies between the two, the job is
``queued`` without a task id and :func:`requeue_pending` sends it again at the
next start. Duplicated messages are harmless: the task claims its job atomically
(see :mod:`pipeline.tasks`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.registry import AnalysisJob, JobState, Study, StudyState
from dicom_node.registry.models import utcnow
from dicom_node.registry.transitions import transition

logger = logging.getLogger(__name__)

ANALYSE_TASK = "pipeline.tasks.analyse_study"
DELIVER_TASK = "pipeline.tasks.deliver_object"

#: send(task_name, kwargs) -> Celery task id
TaskSender = Callable[[str, dict[str, Any]], str]

_ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)


def celery_sender(broker_url: str | None = None) -> TaskSender:
    """A :data:`TaskSender` publishing to ``broker_url`` (routes pick the queue).

    The sender owns its broker connection (safe to use from one thread at a
    time; a lock serialises callers), so two senders for different brokers can
    live in one process.
    """
    from pipeline.celery_app import app

    connection = app.connection_for_write(broker_url or app.conf.broker_url)
    producer = app.amqp.Producer(connection)
    lock = threading.Lock()

    def send(task_name: str, kwargs: dict[str, Any]) -> str:
        with lock:
            result = app.send_task(task_name, kwargs=kwargs, producer=producer)
        return str(result.id)

    return send


def create_job(session: Session, study: Study) -> AnalysisJob:
    """Create the next analysis version of a ``complete`` study; the caller commits.

    Earlier jobs still queued or running are marked ``superseded``; the study
    moves to ``queued`` and its ``version`` becomes the new job's version.
    """
    version = study.version + 1
    now = utcnow()
    for earlier in study.jobs:
        if earlier.state in _ACTIVE_JOB_STATES:
            earlier.state = JobState.SUPERSEDED
            earlier.finished_at = now
            earlier.error = f"superseded by analysis version {version}"
            logger.info(
                "study %s: analysis version %d superseded by %d",
                study.study_uid,
                earlier.version,
                version,
            )
    job = AnalysisJob(study=study, version=version, state=JobState.QUEUED, created_at=now)
    session.add(job)
    study.version = version
    transition(session, study, StudyState.QUEUED, f"analysis version {version}")
    return job


def enqueue_job(session: Session, job: AnalysisJob, send: TaskSender) -> str:
    """Send the task message of ``job`` and store its task id (commits)."""
    study_uid = job.study.study_uid
    task_id = send(ANALYSE_TASK, {"study_uid": study_uid, "version": job.version})
    job.celery_task_id = task_id
    session.commit()
    logger.info("study %s: analysis version %d enqueued (task %s)", study_uid, job.version, task_id)
    return task_id


def requeue_pending(
    sessions: sessionmaker[Session], send: TaskSender, *, include_sent: bool = False
) -> int:
    """Send again the current, still-queued jobs (all of them when ``include_sent``).

    Without ``include_sent`` only jobs that never got a task id are sent (the
    node died between the two commits); at node start every queued job is
    re-sent, since the broker may have lost its messages. Returns the count.
    """
    count = 0
    with sessions() as session:
        query = (
            select(AnalysisJob)
            .join(Study)
            .where(AnalysisJob.state == JobState.QUEUED)
            .where(AnalysisJob.version == Study.version)
            .order_by(AnalysisJob.id)
        )
        if not include_sent:
            query = query.where(AnalysisJob.celery_task_id.is_(None))
        for job in session.scalars(query).all():
            enqueue_job(session, job, send)
            count += 1
    if count:
        logger.info("re-enqueued %d queued analysis job(s)", count)
    return count
