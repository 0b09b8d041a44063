"""The durable outbox delivers to a real dcmtk ``storescp`` through a real worker and Redis.

With the PACS down, deliveries retry with backoff; the sweeper and the worker
are restarted while it is down (rows are durable); once it is up the object
arrives exactly once. A destination that refuses the SOP class ends ``failed``
and shows in ``dicom-node status --json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage, Verification  # type: ignore[attr-defined]
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.cli import main
from dicom_node.completeness import complete_quiet_studies
from dicom_node.config import AnalysisRules, load_settings
from dicom_node.delivery.outbox import (
    PERMANENT_REJECT_TRIES,
    DeliverySweeper,
    attempt_delivery,
    enqueue_delivery,
    sweep_due,
)
from dicom_node.dispatch import celery_sender
from dicom_node.registry import (
    Delivery,
    DeliveryState,
    Study,
    create_registry_engine,
    init_registry,
    session_factory,
)
from dicom_node.registry.models import utcnow
from pipeline.tasks import run_job
from tests.conftest import free_port, require_tool
from tests.orchestration_support import (
    add_study,
    celery_worker,
    get_study,
    storescp,
    wait_until,
    write_mr_file,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER_ENV = {
    "DICOM_NODE_DELIVERY_BACKOFF_BASE": "0.3",
    "DICOM_NODE_DELIVERY_BACKOFF_MAX": "1.0",
    "DICOM_NODE_DELIVERY_MAX_ATTEMPTS": "100",
}


@contextmanager
def sweeper(sessions: sessionmaker[Session], broker: str) -> Iterator[DeliverySweeper]:
    thread = DeliverySweeper(sessions, celery_sender(broker), interval=0.2)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@contextmanager
def verification_only_scp(port: int) -> Iterator[None]:
    """A peer that accepts associations but no storage SOP class (permanent failure)."""
    ae = AE(ae_title="NOSTORE")
    ae.add_supported_context(Verification)
    server = ae.start_server(("127.0.0.1", port), block=False)
    try:
        yield
    finally:
        server.shutdown()


def _rows(sessions: sessionmaker[Session], study_uid: str) -> dict[str, Delivery]:
    return {d.destination: d for d in get_study(sessions, study_uid).deliveries}


def test_outbox_retries_survives_restart_and_delivers_once(redis_url: str, tmp_path: Path) -> None:
    require_tool("storescp")
    database = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    engine = create_registry_engine(database)
    init_registry(engine)
    sessions = session_factory(engine)
    study_uid = add_study(sessions)
    dicom_file = write_mr_file(tmp_path / "results", study_uid=study_uid)
    pacs_port, refusing_port = free_port(), free_port()
    pacs, refusing = f"PACS@127.0.0.1:{pacs_port}", f"NOSTORE@127.0.0.1:{refusing_port}"
    with sessions() as session:
        study = session.get(Study, get_study(sessions, study_uid).id)
        assert study is not None
        enqueue_delivery(session, study, dicom_file, [pacs, refusing])
        session.commit()

    log = tmp_path / "worker.log"
    with (
        verification_only_scp(refusing_port),
        sweeper(sessions, redis_url),
        celery_worker(redis_url, database, tmp_path, log, WORKER_ENV),
    ):
        # the PACS is down: attempts accumulate with backoff, the row stays pending
        wait_until(
            lambda: _rows(sessions, study_uid)[pacs].attempts >= 3,
            60,
            what="three failed delivery attempts",
        )
        wait_until(
            lambda: _rows(sessions, study_uid)[refusing].state is DeliveryState.FAILED,
            30,
            what="the refusing destination to fail permanently",
        )
    down = _rows(sessions, study_uid)[pacs]
    assert down.state in (DeliveryState.PENDING, DeliveryState.IN_PROGRESS)
    assert "could not associate" in (down.last_error or "")
    failed = _rows(sessions, study_uid)[refusing]
    assert failed.attempts == 1
    assert "no presentation context" in (failed.last_error or "")

    # sweeper and worker were stopped; the PACS comes up; new ones take over
    received = tmp_path / "pacs"
    with (
        storescp(pacs_port, received, tmp_path / "storescp.log"),
        sweeper(sessions, redis_url),
        celery_worker(redis_url, database, tmp_path, log, WORKER_ENV),
    ):
        wait_until(
            lambda: _rows(sessions, study_uid)[pacs].state is DeliveryState.DELIVERED,
            60,
            what="the delivery to the PACS",
        )
        time.sleep(2.0)  # give a duplicate the chance to arrive
        files = sorted(p for p in received.rglob("*") if p.is_file())
    assert len(files) == 1, files
    sent, got = dcmread(dicom_file), dcmread(files[0])
    assert got.SOPInstanceUID == sent.SOPInstanceUID
    assert got.PixelData == sent.PixelData
    delivered = _rows(sessions, study_uid)[pacs]
    assert delivered.delivered_at is not None and delivered.attempts >= 4

    result = CliRunner().invoke(main, ["status", "--database", database, "--json"])
    assert result.exit_code == 0, result.output
    (doc,) = json.loads(result.output)["studies"]
    states = {d["destination"]: d for d in doc["deliveries"]}
    assert states[pacs]["state"] == "delivered"
    assert states[refusing]["state"] == "failed"
    assert "no presentation context" in states[refusing]["last_error"]
    assert doc["delivery_summary"][refusing] == {"failed": 1}
    engine.dispose()


def test_permanent_association_reject_fails_after_retries(tmp_path: Path) -> None:
    """A PACS rejecting the node's AE title (rejected-permanent) fails after 3 tries."""
    database = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    engine = create_registry_engine(database)
    init_registry(engine)
    sessions = session_factory(engine)
    settings = load_settings(data_dir=tmp_path, ae_title="UNKNOWNNODE", delivery_max_attempts=10)
    study_uid = add_study(sessions)
    dicom_file = write_mr_file(tmp_path / "results", study_uid=study_uid)
    port = free_port()
    destination = f"STRICT@127.0.0.1:{port}"
    with sessions() as session:
        study = session.get(Study, get_study(sessions, study_uid).id)
        assert study is not None
        enqueue_delivery(session, study, dicom_file, [destination])
        session.commit()

    ae = AE(ae_title="STRICT")
    ae.require_calling_aet = ["KNOWNNODE"]
    ae.add_supported_context(MRImageStorage)
    server = ae.start_server(("127.0.0.1", port), block=False)
    states = []
    messages: list[dict[str, int]] = []
    try:
        for _ in range(PERMANENT_REJECT_TRIES):
            messages.clear()
            sweep_due(
                sessions,
                lambda _name, kwargs: messages.append(kwargs) or "id",
                now=utcnow() + timedelta(hours=1),
            )
            (message,) = messages
            states.append(
                attempt_delivery(sessions, message["delivery_id"], message["attempt"], settings)
            )
    finally:
        server.shutdown()
        engine.dispose()
    assert states == [DeliveryState.PENDING] * (PERMANENT_REJECT_TRIES - 1) + [DeliveryState.FAILED]
    (row,) = get_study(sessions, study_uid).deliveries
    assert "association rejected" in (row.last_error or "")
    assert "Rejected Permanent" in (row.last_error or "")


def test_results_ready_study_becomes_delivered(tmp_path: Path) -> None:
    """Analysis outputs go through the outbox; the study ends ``delivered``."""
    from pynetdicom import evt

    database = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    engine = create_registry_engine(database)
    init_registry(engine)
    sessions = session_factory(engine)
    port = free_port()
    settings = load_settings(data_dir=tmp_path, destinations=[f"PACS@127.0.0.1:{port}"])
    study_uid = add_study(sessions)
    output = write_mr_file(tmp_path / "results", study_uid=study_uid)
    complete_quiet_studies(
        sessions,
        quiet_period=0.001,
        rules=AnalysisRules(),
        send=lambda _n, _k: "id",
        now=utcnow() + timedelta(seconds=5),
    )
    outcome = run_job(
        sessions,
        study_uid,
        1,
        settings,
        worker="w",
        analysis=lambda uid, version, s: {"result": {"n": 1}, "outputs": [str(output)]},
    )
    assert outcome["outcome"] == "succeeded"

    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    ae = AE(ae_title="PACS")
    ae.add_supported_context(MRImageStorage)
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    messages: list[dict[str, int]] = []
    try:
        sweep_due(sessions, lambda _name, kwargs: messages.append(kwargs) or "id")
        (message,) = messages
        state = attempt_delivery(sessions, message["delivery_id"], message["attempt"], settings)
    finally:
        server.shutdown()
        engine.dispose()
    assert state is DeliveryState.DELIVERED
    assert received == [str(dcmread(output).SOPInstanceUID)]
    study = get_study(sessions, study_uid)
    assert [t.to_state.value for t in study.transitions][-2:] == ["results_ready", "delivered"]
