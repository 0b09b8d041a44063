"""The analysis task body (``pipeline.tasks.run_job``) against the registry, both back-ends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.completeness import complete_quiet_studies
from dicom_node.config import AnalysisRules, NodeSettings, load_settings
from dicom_node.dispatch import TaskSender
from dicom_node.registry import AnalysisJob, DeliveryState, JobState, Study, StudyState
from dicom_node.registry.models import utcnow
from pipeline.tasks import NOT_INSTALLED_REASON, run_job
from tests.orchestration_support import add_study, get_study, late_instance, write_mr_file


def _queued_study(sessions: sessionmaker[Session], send: TaskSender) -> str:
    t0 = utcnow() - timedelta(seconds=60)
    uid = add_study(sessions, last_instance_at=t0)
    complete_quiet_studies(sessions, quiet_period=1.0, rules=AnalysisRules(), send=send)
    assert get_study(sessions, uid).state is StudyState.QUEUED
    return uid


@pytest.fixture
def settings(tmp_path: Path) -> NodeSettings:
    return load_settings(data_dir=tmp_path, destinations=["PACS@127.0.0.1:1"])


def test_without_pipeline_the_pickup_is_recorded_honestly(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any], settings: NodeSettings
) -> None:
    import pipeline.tasks

    assert pipeline.tasks.load_analysis() is None  # conftest: analysis not installed
    uid = _queued_study(sessions, broker[0])
    outcome = run_job(sessions, uid, 1, settings, worker="w1@host")
    assert outcome == {"outcome": "not_analysed", "reason": NOT_INSTALLED_REASON}
    study = get_study(sessions, uid)
    assert study.state is StudyState.NOT_ANALYSED
    assert study.not_analysed_reason == NOT_INSTALLED_REASON
    (job,) = study.jobs
    assert job.state is JobState.NOT_ANALYSED
    assert job.worker == "w1@host"
    assert job.started_at is not None and job.finished_at is not None
    assert job.result is None  # no fabricated result
    assert [t.to_state for t in study.transitions][-2:] == [
        StudyState.ANALYSING,
        StudyState.NOT_ANALYSED,
    ]
    # a re-delivered message does nothing
    assert run_job(sessions, uid, 1, settings, worker="w2@host")["outcome"] == "skipped"
    assert get_study(sessions, uid).jobs[0].worker == "w1@host"


def test_message_for_superseded_version_does_nothing(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any], settings: NodeSettings
) -> None:
    uid = _queued_study(sessions, broker[0])
    late_instance(sessions, uid, utcnow() - timedelta(seconds=30))
    complete_quiet_studies(sessions, quiet_period=1.0, rules=AnalysisRules(), send=broker[0])
    assert run_job(sessions, uid, 1, settings, worker="w")["outcome"] == "skipped"
    study = get_study(sessions, uid)
    assert [(j.version, j.state) for j in study.jobs] == [
        (1, JobState.SUPERSEDED),
        (2, JobState.QUEUED),
    ]


def test_reopened_before_start_supersedes_the_job(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any], settings: NodeSettings
) -> None:
    uid = _queued_study(sessions, broker[0])
    late_instance(sessions, uid, utcnow())
    assert run_job(sessions, uid, 1, settings, worker="w")["outcome"] == "superseded"
    study = get_study(sessions, uid)
    assert study.state is StudyState.RECEIVING
    assert study.jobs[0].state is JobState.SUPERSEDED


def test_installed_analysis_hook_records_result_and_queues_delivery(
    sessions: sessionmaker[Session],
    broker: tuple[TaskSender, Any],
    settings: NodeSettings,
    tmp_path: Path,
) -> None:
    uid = _queued_study(sessions, broker[0])
    sr = write_mr_file(tmp_path / "out", study_uid=uid)
    calls = []

    def analysis(study_uid: str, version: int, s: NodeSettings) -> dict[str, Any]:
        calls.append((study_uid, version))
        return {"result": {"triage": "x"}, "outputs": [str(sr)], "model_name": "m"}

    outcome = run_job(sessions, uid, 1, settings, worker="w", analysis=analysis)
    assert outcome == {"outcome": "succeeded", "outputs": 1}
    assert calls == [(uid, 1)]
    study = get_study(sessions, uid)
    assert study.state is StudyState.RESULTS_READY
    assert study.jobs[0].result == {"triage": "x"}
    (delivery,) = study.deliveries
    assert delivery.destination == "PACS@127.0.0.1:1"
    assert delivery.state is DeliveryState.PENDING


def test_unknown_study_is_ignored(sessions: sessionmaker[Session], settings: NodeSettings) -> None:
    assert run_job(sessions, "1.2.3", 1, settings, worker="w")["outcome"] == "unknown"


def test_redelivered_message_takes_over_a_job_left_running(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any], settings: NodeSettings
) -> None:
    uid = _queued_study(sessions, broker[0])
    with sessions() as session:
        job = session.get(AnalysisJob, get_study(sessions, uid).jobs[0].id)
        assert job is not None
        job.state, job.worker, job.started_at = JobState.RUNNING, "dead@host", utcnow()
        job.celery_task_id = "task-A"
        study = session.get(Study, job.study_id)
        assert study is not None
        study.state = StudyState.ANALYSING
        session.commit()
    # another message (e.g. re-sent at node start) leaves the running job alone
    assert run_job(sessions, uid, 1, settings, worker="w2", task_id="task-B")["outcome"] == (
        "skipped"
    )
    # the re-delivery of the message whose worker died takes it over
    outcome = run_job(sessions, uid, 1, settings, worker="w3", task_id="task-A")
    assert outcome["outcome"] == "not_analysed"
    job_after = get_study(sessions, uid).jobs[0]
    assert (job_after.worker, job_after.celery_task_id) == ("w3", "task-A")


def test_instance_arriving_during_analysis_drops_the_result(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any], settings: NodeSettings
) -> None:
    uid = _queued_study(sessions, broker[0])

    def analysis(study_uid: str, version: int, s: NodeSettings) -> dict[str, Any]:
        late_instance(sessions, study_uid, utcnow())  # the SCP re-opens the study meanwhile
        return {"result": {"triage": "stale"}}

    outcome = run_job(sessions, uid, 1, settings, worker="w", analysis=analysis)
    assert outcome == {"outcome": "superseded"}
    study = get_study(sessions, uid)
    assert study.state is StudyState.RECEIVING
    assert study.jobs[0].state is JobState.SUPERSEDED
    assert study.jobs[0].result is None


def test_analysis_error_fails_the_job_and_study(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any], settings: NodeSettings
) -> None:
    uid = _queued_study(sessions, broker[0])

    def analysis(study_uid: str, version: int, s: NodeSettings) -> dict[str, Any]:
        raise ValueError("no usable T1 series")

    outcome = run_job(sessions, uid, 1, settings, worker="w", analysis=analysis)
    assert outcome["outcome"] == "failed"
    study = get_study(sessions, uid)
    assert study.state is StudyState.FAILED
    assert "no usable T1 series" in (study.jobs[0].error or "")


def test_transient_error_requeues_then_fails_on_the_last_attempt(
    sessions: sessionmaker[Session], broker: tuple[TaskSender, Any], settings: NodeSettings
) -> None:
    """A transient error is retried (job back to queued); after the last retry the study
    is failed with the reason instead of staying queued until the node restarts."""
    from dicom_node.errors import TransientError

    uid = _queued_study(sessions, broker[0])

    def analysis(study_uid: str, version: int, s: NodeSettings) -> dict[str, Any]:
        raise TransientError("CUDA out of memory")

    with pytest.raises(TransientError):
        run_job(sessions, uid, 1, settings, worker="w", analysis=analysis)
    study = get_study(sessions, uid)
    assert study.jobs[0].state is JobState.QUEUED
    outcome = run_job(sessions, uid, 1, settings, worker="w", analysis=analysis, last_attempt=True)
    assert outcome["outcome"] == "failed"
    study = get_study(sessions, uid)
    assert study.state is StudyState.FAILED
    assert "gave up after retries" in (study.jobs[0].error or "")
    assert "CUDA out of memory" in (study.jobs[0].error or "")
