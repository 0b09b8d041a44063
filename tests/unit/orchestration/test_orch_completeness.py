"""Completeness and dispatch on SQLite and PostgreSQL, publishing to the real Redis."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dicom_node.completeness import complete_quiet_studies
from dicom_node.config import AnalysisRules
from dicom_node.dispatch import TaskSender, requeue_pending
from dicom_node.registry import JobState, StudyState
from dicom_node.registry.models import utcnow
from tests.orchestration_support import add_study, get_study, late_instance

QUIET = 10.0
RULES = AnalysisRules()


def _gpu_messages(client: Any) -> list[dict[str, Any]]:
    bodies = []
    for raw in client.lrange("gpu", 0, -1):
        message = json.loads(raw)
        bodies.append(message["headers"] | {"body": message["body"]})
    return bodies


def test_quiet_period_is_honoured(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any]
) -> None:
    send, client = broker
    t0 = utcnow()
    uid = add_study(sessions, last_instance_at=t0)
    early = complete_quiet_studies(
        sessions, quiet_period=QUIET, rules=RULES, send=send, now=t0 + timedelta(seconds=9.5)
    )
    assert early == []
    assert get_study(sessions, uid).state is StudyState.RECEIVING
    assert client.llen("gpu") == 0

    done = complete_quiet_studies(
        sessions, quiet_period=QUIET, rules=RULES, send=send, now=t0 + timedelta(seconds=10.5)
    )
    assert done == [uid]
    study = get_study(sessions, uid)
    assert study.state is StudyState.QUEUED
    assert study.version == 1
    assert [t.to_state for t in study.transitions] == [StudyState.COMPLETE, StudyState.QUEUED]
    (job,) = study.jobs
    assert (job.version, job.state) == (1, JobState.QUEUED)
    (message,) = _gpu_messages(client)
    assert message["task"] == "pipeline.tasks.analyse_study"
    assert message["id"] == job.celery_task_id
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([], {"study_uid": uid, "version": 1})  # identifiers only
    # a second pass finds nothing new
    assert (
        complete_quiet_studies(
            sessions, quiet_period=QUIET, rules=RULES, send=send, now=t0 + timedelta(seconds=30)
        )
        == []
    )


def test_late_instance_reopens_and_creates_version_2(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any]
) -> None:
    send, client = broker
    t0 = utcnow()
    uid = add_study(sessions, last_instance_at=t0)
    complete_quiet_studies(
        sessions, quiet_period=QUIET, rules=RULES, send=send, now=t0 + timedelta(seconds=11)
    )
    t1 = t0 + timedelta(seconds=12)
    late_instance(sessions, uid, t1)
    study = get_study(sessions, uid)
    assert study.state is StudyState.RECEIVING
    assert study.instance_count == 5
    # not complete before the new quiet period...
    complete_quiet_studies(
        sessions, quiet_period=QUIET, rules=RULES, send=send, now=t1 + timedelta(seconds=5)
    )
    assert get_study(sessions, uid).state is StudyState.RECEIVING
    # ...complete after it, as version 2, version 1 superseded
    complete_quiet_studies(
        sessions, quiet_period=QUIET, rules=RULES, send=send, now=t1 + timedelta(seconds=11)
    )
    study = get_study(sessions, uid)
    assert study.state is StudyState.QUEUED
    assert study.version == 2
    assert [(j.version, j.state) for j in study.jobs] == [
        (1, JobState.SUPERSEDED),
        (2, JobState.QUEUED),
    ]
    assert "superseded by analysis version 2" in (study.jobs[0].error or "")
    assert client.llen("gpu") == 2
    assert [t.to_state for t in study.transitions] == [
        StudyState.COMPLETE,
        StudyState.QUEUED,
        StudyState.RECEIVING,
        StudyState.COMPLETE,
        StudyState.QUEUED,
    ]


def test_non_matching_study_is_stored_but_not_analysed(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any]
) -> None:
    send, client = broker
    t0 = utcnow()
    ct = add_study(sessions, modality="CT", body_part="HEAD", last_instance_at=t0)
    knee = add_study(
        sessions,
        body_part="KNEE",
        study_description="MR KNEE",
        series=(("PD SAG", 1),),
        last_instance_at=t0,
    )
    done = complete_quiet_studies(
        sessions, quiet_period=QUIET, rules=RULES, send=send, now=t0 + timedelta(seconds=11)
    )
    assert sorted(done) == sorted([ct, knee])
    for uid, reason in ((ct, "modality CT"), (knee, "not a head/brain study")):
        study = get_study(sessions, uid)
        assert study.state is StudyState.NOT_ANALYSED
        assert reason in (study.not_analysed_reason or "")
        assert study.jobs == []
        assert study.instance_count > 0  # still stored
    assert client.llen("gpu") == 0


def test_job_committed_without_task_id_is_requeued(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any]
) -> None:
    send, client = broker

    def broker_down(_name: str, _kwargs: dict[str, Any]) -> str:
        raise ConnectionError("broker down")

    t0 = utcnow()
    uid = add_study(sessions, last_instance_at=t0)
    complete_quiet_studies(
        sessions, quiet_period=QUIET, rules=RULES, send=broker_down, now=t0 + timedelta(seconds=11)
    )
    study = get_study(sessions, uid)
    assert study.state is StudyState.QUEUED
    assert study.jobs[0].celery_task_id is None
    assert requeue_pending(sessions, send) == 1
    assert get_study(sessions, uid).jobs[0].celery_task_id is not None
    assert client.llen("gpu") == 1
    assert requeue_pending(sessions, send) == 0  # already sent
    assert requeue_pending(sessions, send, include_sent=True) == 1  # at node start
