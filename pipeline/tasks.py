"""Celery tasks of the node: ``analyse_study`` (queue ``gpu``) and ``deliver_object`` (``io``).

Both take identifiers only (JSON), are ``acks_late`` and idempotent:

* ``analyse_study(study_uid, version)`` claims its :class:`AnalysisJob` with a
  conditional update (``queued`` -> ``running``); a re-delivered message for a
  version that is finished, superseded or running elsewhere does nothing (a
  ``running`` job older than the hard time limit is taken over: its worker died).
* ``deliver_object(delivery_id, attempt)`` is one attempt of one outbox row,
  see :func:`dicom_node.delivery.outbox.attempt_delivery`.

Registry outages (``sqlalchemy.exc.OperationalError``) and
:class:`~dicom_node.errors.TransientError` are retried by Celery with a capped
exponential backoff.

The analysis hook
-----------------
The analysis itself lives in ``pipeline.analysis`` (a later part of the
project), which must provide::

    run_analysis(study_uid: str, version: int, settings: NodeSettings) -> Mapping[str, Any]

returning any of these keys: ``result`` (JSON-able dict stored in
``AnalysisJob.result``), ``outputs`` (paths of DICOM files to deliver to every
configured destination through the outbox), ``not_analysed_reason`` (the study
could not be analysed, e.g. no usable series), ``model_name``,
``model_version``, ``stage_timings`` (seconds per stage) and
``sr_sop_instance_uid``. While that module is absent the task records the
pick-up and marks the study ``not_analysed`` with :data:`NOT_INSTALLED_REASON`;
it never fabricates results.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery.signals import worker_process_init
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.config import NodeSettings, load_settings
from dicom_node.delivery.outbox import attempt_delivery, enqueue_delivery
from dicom_node.errors import TransientError
from dicom_node.registry import (
    AnalysisJob,
    Delivery,
    JobState,
    Study,
    StudyState,
    create_registry_engine,
    init_registry,
    session_factory,
)
from dicom_node.registry.models import utcnow
from dicom_node.registry.transitions import transition
from pipeline.celery_app import app

logger = logging.getLogger(__name__)

#: Environment variable naming the TOML file the worker reads (set by ``dicom-node worker``).
CONFIG_ENV = "DICOM_NODE_CONFIG_FILE"
NOT_INSTALLED_REASON = "analysis pipeline not installed in this build"
ANALYSIS_MODULE = "pipeline.analysis"

#: A job ``running`` for longer than Celery's hard time limit lost its worker.
STALE_RUNNING_S = 720.0

RETRYABLE = (TransientError, OperationalError)

AnalysisFn = Callable[[str, int, NodeSettings], Mapping[str, Any]]

_context: dict[int, tuple[NodeSettings, sessionmaker[Session]]] = {}


def worker_context() -> tuple[NodeSettings, sessionmaker[Session]]:
    """Settings and registry sessions of this worker process (created once per process)."""
    pid = os.getpid()
    if pid not in _context:
        config = os.environ.get(CONFIG_ENV)
        settings = load_settings(Path(config) if config else None)
        engine = create_registry_engine(settings.database_url)
        init_registry(engine)
        _context[pid] = (settings, session_factory(engine))
    return _context[pid]


def load_analysis() -> AnalysisFn | None:
    """``pipeline.analysis.run_analysis`` when installed, else None."""
    try:
        module = importlib.import_module(ANALYSIS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == ANALYSIS_MODULE:
            return None
        raise
    fn = getattr(module, "run_analysis", None)
    return fn if callable(fn) else None


def _claim(session: Session, job: AnalysisJob, worker: str, task_id: str | None) -> bool:
    """Take ``job`` for this execution; False when another execution owns or ended it.

    A ``queued`` job is claimed with a conditional update (the executing task id
    is stored). A ``running`` job is taken over when this is a re-delivery of the
    very message that started it (its worker died: ``acks_late`` +
    ``task_reject_on_worker_lost``), or when it has run longer than the hard
    time limit.
    """
    now = utcnow()
    claimed = session.execute(
        update(AnalysisJob)
        .where(AnalysisJob.id == job.id)
        .where(AnalysisJob.state == JobState.QUEUED)
        .values(
            state=JobState.RUNNING,
            worker=worker,
            started_at=now,
            error=None,
            celery_task_id=task_id or job.celery_task_id,
        )
    )
    if getattr(claimed, "rowcount", 0) == 1:
        return True
    session.refresh(job)
    if job.state is not JobState.RUNNING or job.started_at is None:
        return False
    started = job.started_at
    if started.tzinfo is None:
        started = started.replace(tzinfo=now.tzinfo)
    redelivered = task_id is not None and task_id == job.celery_task_id
    if not redelivered and now - started <= timedelta(seconds=STALE_RUNNING_S):
        return False
    logger.warning(
        "study %s: analysis version %d was left running by %s (%s), taken over",
        job.study.study_uid,
        job.version,
        job.worker,
        "message re-delivered" if redelivered else "stale",
    )
    taken = session.execute(
        update(AnalysisJob)
        .where(AnalysisJob.id == job.id)
        .where(AnalysisJob.state == JobState.RUNNING)
        .where(AnalysisJob.started_at == job.started_at)
        .values(worker=worker, started_at=now, celery_task_id=task_id or job.celery_task_id)
    )
    return getattr(taken, "rowcount", 0) == 1


def _lock(session: Session, study: Study) -> None:
    """Re-read the study row locked (PostgreSQL ``FOR UPDATE``) so that a concurrent
    re-opening by the SCP is either seen here or applied after this commit."""
    session.refresh(study, with_for_update=True)


def _still_current(session: Session, study: Study, job: AnalysisJob) -> bool:
    """True when ``job`` may conclude: still running, and its study still analysing it.

    When the study was re-opened meanwhile the job is marked superseded (the
    next completion creates the next version) and False is returned.
    """
    session.refresh(job)
    _lock(session, study)
    if (
        job.state is JobState.RUNNING
        and study.version == job.version
        and study.state is StudyState.ANALYSING
    ):
        return True
    if job.state is JobState.RUNNING:
        _finish(job, JobState.SUPERSEDED, "study re-opened by new instances during analysis")
    session.commit()
    logger.info("study %s: version %d superseded, result dropped", study.study_uid, job.version)
    return False


def _fail(
    session: Session,
    study: Study,
    job: AnalysisJob,
    exc: BaseException,
    *,
    job_error: str,
    study_reason: str,
) -> dict[str, Any]:
    """Roll back, and fail the job and the study unless a newer version superseded them."""
    session.rollback()
    if _still_current(session, study, job):
        _finish(job, JobState.FAILED, job_error)
        transition(session, study, StudyState.FAILED, study_reason)
        session.commit()
    return {"outcome": JobState.FAILED.value, "error": str(exc)}


def _finish(job: AnalysisJob, state: JobState, error: str | None = None) -> None:
    job.state = state
    job.finished_at = utcnow()
    if job.started_at is not None:
        started = job.started_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=job.finished_at.tzinfo)
        job.duration_s = (job.finished_at - started).total_seconds()
    if error is not None:
        job.error = error


def run_job(
    sessions: sessionmaker[Session],
    study_uid: str,
    version: int,
    settings: NodeSettings,
    *,
    worker: str,
    task_id: str | None = None,
    analysis: AnalysisFn | None = None,
    last_attempt: bool = False,
) -> dict[str, Any]:
    """Body of ``analyse_study`` (callable without Celery); returns a short outcome.

    A transient error (a lost database connection, a busy GPU) re-queues the job
    and is raised again for Celery to retry, unless this is ``last_attempt``: then
    the job and the study are marked failed with the error, so the study does not
    sit in "queued" for ever after the retries run out.
    """
    with sessions() as session:
        study = session.scalars(select(Study).where(Study.study_uid == study_uid)).one_or_none()
        job = None
        if study is not None:
            job = session.scalars(
                select(AnalysisJob)
                .where(AnalysisJob.study_id == study.id)
                .where(AnalysisJob.version == version)
            ).one_or_none()
        if study is None or job is None:
            logger.warning("study %s: no analysis version %d in the registry", study_uid, version)
            return {"outcome": "unknown", "study_uid": study_uid, "version": version}
        if not _claim(session, job, worker, task_id):
            session.rollback()
            logger.info(
                "study %s: analysis version %d is %s, message ignored",
                study_uid,
                version,
                job.state.value,
            )
            return {"outcome": "skipped", "state": job.state.value}
        session.commit()
        session.refresh(job)
        _lock(session, study)
        if study.version != version or study.state not in (
            StudyState.QUEUED,
            StudyState.ANALYSING,
        ):
            _finish(job, JobState.SUPERSEDED, "study re-opened by new instances before analysis")
            session.commit()
            logger.info("study %s: version %d superseded before start", study_uid, version)
            return {"outcome": "superseded"}
        if study.state is StudyState.QUEUED:
            transition(session, study, StudyState.ANALYSING, f"version {version} on {worker}")
        session.commit()
        logger.info("study %s: analysis version %d picked up by %s", study_uid, version, worker)

        analysis = analysis or load_analysis()
        if analysis is None:
            if not _still_current(session, study, job):
                return {"outcome": "superseded"}
            _finish(job, JobState.NOT_ANALYSED, NOT_INSTALLED_REASON)
            study.not_analysed_reason = NOT_INSTALLED_REASON
            transition(session, study, StudyState.NOT_ANALYSED, NOT_INSTALLED_REASON)
            session.commit()
            logger.warning("study %s: %s", study_uid, NOT_INSTALLED_REASON)
            return {"outcome": JobState.NOT_ANALYSED.value, "reason": NOT_INSTALLED_REASON}
        return _run_analysis(session, study, job, analysis, settings, last_attempt)


def _run_analysis(
    session: Session,
    study: Study,
    job: AnalysisJob,
    analysis: AnalysisFn,
    settings: NodeSettings,
    last_attempt: bool = False,
) -> dict[str, Any]:
    started = time.monotonic()
    try:
        outcome = analysis(study.study_uid, job.version, settings)
    except RETRYABLE as exc:
        if not last_attempt:
            job.state = JobState.QUEUED  # the retried message claims it again
            session.commit()
            raise
        logger.error(
            "study %s: analysis version %d gave up after its last retry: %s",
            study.study_uid,
            job.version,
            exc,
        )
        return _fail(
            session,
            study,
            job,
            exc,
            job_error=f"gave up after retries: {type(exc).__name__}: {exc}",
            study_reason=f"analysis gave up after retries: {exc}",
        )
    except Exception as exc:
        logger.exception("study %s: analysis version %d failed", study.study_uid, job.version)
        return _fail(
            session,
            study,
            job,
            exc,
            job_error=f"{type(exc).__name__}: {exc}",
            study_reason=f"analysis error: {exc}",
        )
    if not _still_current(session, study, job):
        return {"outcome": "superseded"}
    job.model_name = outcome.get("model_name")
    job.model_version = outcome.get("model_version")
    job.stage_timings = outcome.get("stage_timings")
    job.sr_sop_instance_uid = outcome.get("sr_sop_instance_uid")
    job.result = outcome.get("result")
    reason = outcome.get("not_analysed_reason")
    if reason:
        _finish(job, JobState.NOT_ANALYSED, str(reason))
        study.not_analysed_reason = str(reason)
        transition(session, study, StudyState.NOT_ANALYSED, str(reason))
        # a "not analysed" SR tells the radiologist why: delivered like a result
        for path in outcome.get("outputs", []):
            enqueue_delivery(session, study, Path(path), settings.destinations, job=job)
        session.commit()
        return {"outcome": JobState.NOT_ANALYSED.value, "reason": str(reason)}
    _finish(job, JobState.SUCCEEDED)
    transition(
        session,
        study,
        StudyState.RESULTS_READY,
        f"version {job.version} in {time.monotonic() - started:.1f} s",
    )
    outputs = [Path(p) for p in outcome.get("outputs", [])]
    for path in outputs:
        enqueue_delivery(session, study, path, settings.destinations, job=job)
    if outputs and not settings.destinations:
        logger.warning("study %s: results produced but no destination configured", study.study_uid)
    session.commit()
    return {"outcome": JobState.SUCCEEDED.value, "outputs": len(outputs)}


@worker_process_init.connect  # type: ignore[untyped-decorator, unused-ignore]
def _preload_analysis(**_: Any) -> None:
    """In each new worker process, start loading the analysis bundle in the background
    (``pipeline.analysis.preload``) so that the first study does not wait for it."""
    analysis = load_analysis()
    if analysis is None:
        return
    preload = getattr(importlib.import_module(ANALYSIS_MODULE), "preload", None)
    if callable(preload):
        preload(worker_context()[0])


@app.task(  # type: ignore[untyped-decorator]
    bind=True,
    name="pipeline.tasks.analyse_study",
    acks_late=True,
    autoretry_for=RETRYABLE,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def analyse_study(self: Any, study_uid: str, version: int) -> dict[str, Any]:
    """Analyse version ``version`` of study ``study_uid`` (identifiers only)."""
    settings, sessions = worker_context()
    worker = str(getattr(self.request, "hostname", None) or socket.gethostname())
    task_id = getattr(self.request, "id", None)
    retries = int(getattr(self.request, "retries", 0) or 0)
    return run_job(
        sessions,
        study_uid,
        int(version),
        settings,
        worker=worker,
        task_id=task_id,
        last_attempt=retries >= int(self.max_retries or 0),
    )


@app.task(  # type: ignore[untyped-decorator]
    bind=True,
    name="pipeline.tasks.deliver_object",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def deliver_object(self: Any, delivery_id: int, attempt: int | None = None) -> str | None:
    """One delivery attempt of outbox row ``delivery_id`` (see the outbox module)."""
    settings, sessions = worker_context()
    if attempt is None:
        with sessions() as session:
            row = session.get(Delivery, int(delivery_id))
            if row is None:
                return None
            attempt = row.attempts
    state = attempt_delivery(sessions, int(delivery_id), int(attempt), settings)
    return state.value if state is not None else None
