"""Outbox policy, C-STORE status classification, and the status / results commands."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.cli import main
from dicom_node.completeness import complete_quiet_studies
from dicom_node.config import AnalysisRules, load_settings
from dicom_node.delivery.outbox import (
    attempt_delivery,
    backoff_seconds,
    enqueue_delivery,
    sweep_due,
)
from dicom_node.delivery.scu import classify_status, proposed_transfer_syntaxes
from dicom_node.dispatch import TaskSender
from dicom_node.errors import PermanentDeliveryError, TransientDeliveryError
from dicom_node.registry import DeliveryState, Study
from dicom_node.registry.models import utcnow
from pipeline.tasks import NOT_INSTALLED_REASON, run_job
from tests.orchestration_support import add_study, get_study, write_mr_file


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff_seconds(n, 2.0, 20.0) for n in range(1, 7)] == [2, 4, 8, 16, 20, 20]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (0x0000, None),
        (0xB000, None),
        (0xA700, TransientDeliveryError),
        (0xA7FF, TransientDeliveryError),
        (0x0122, PermanentDeliveryError),
        (0xA900, PermanentDeliveryError),
        (0xC001, PermanentDeliveryError),
        (0x0110, TransientDeliveryError),
    ],
)
def test_status_classification(status: int, error: type[Exception] | None) -> None:
    if error is None:
        classify_status(status, "x")
    else:
        with pytest.raises(error, match=f"0x{status:04X}"):
            classify_status(status, "x")


def test_exact_transfer_syntaxes_are_proposed() -> None:
    jpeg_ls = "1.2.840.10008.1.2.4.80"
    assert proposed_transfer_syntaxes(jpeg_ls) == [jpeg_ls]
    assert proposed_transfer_syntaxes("1.2.840.10008.1.2.1") == [
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2",
    ]


def _runner_invoke(args: list[str]) -> Any:
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_status_json_and_results(
    sessions: sessionmaker[Session],
    broker: tuple[TaskSender, Any],
    registry_url: str,
    tmp_path: Path,
) -> None:
    send = broker[0]
    settings = load_settings(
        data_dir=tmp_path,
        database=registry_url,
        delivery_max_attempts=2,
        delivery_backoff_base=0.01,
    )
    t0 = utcnow() - timedelta(seconds=60)
    brain = add_study(sessions, last_instance_at=t0)
    knee = add_study(sessions, body_part="KNEE", study_description="MR KNEE", last_instance_at=t0)
    complete_quiet_studies(sessions, quiet_period=5, rules=AnalysisRules(), send=send)
    run_job(sessions, brain, 1, settings, worker="worker-1@host")
    # an outbox row to a destination that refuses connections: fails after 2 attempts
    dicom_file = write_mr_file(tmp_path / "objects", study_uid=brain)
    with sessions() as session:
        study = session.get(Study, get_study(sessions, brain).id)
        assert study is not None
        enqueue_delivery(session, study, dicom_file, ["DOWN@127.0.0.1:9"])
        enqueue_delivery(session, study, dicom_file, ["DOWN@127.0.0.1:9"])  # idempotent
        session.commit()
    sent: list[dict[str, Any]] = []
    for _ in range(2):
        sweep_due(sessions, lambda _n, kw: sent.append(kw) or "id", now=utcnow())
        state = attempt_delivery(sessions, sent[-1]["delivery_id"], sent[-1]["attempt"], settings)
        assert state in (DeliveryState.PENDING, DeliveryState.FAILED)
        # a duplicated message for the same attempt is ignored
        assert (
            attempt_delivery(sessions, sent[-1]["delivery_id"], sent[-1]["attempt"], settings)
            is None
        )
        sweep_due(sessions, lambda _n, kw: sent.append(kw) or "id", now=utcnow() + timedelta(1))
    assert state is DeliveryState.FAILED

    result = _runner_invoke(["status", "--database", registry_url, "--json"])
    doc = json.loads(result.output)
    assert doc["node_version"]
    by_uid = {s["study_uid"]: s for s in doc["studies"]}
    b = by_uid[brain]
    assert b["state"] == "not_analysed"
    assert b["not_analysed_reason"] == NOT_INSTALLED_REASON
    assert (b["series"], b["instances"]) == (2, 4)
    assert b["job"]["state"] == "not_analysed"
    assert b["job"]["worker"] == "worker-1@host"
    assert b["timings_s"]["received_to_complete"] > 0
    assert b["timings_s"]["analysing_to_done"] is not None
    (delivery,) = b["deliveries"]
    assert delivery["state"] == "failed"
    assert delivery["attempts"] == 2
    assert "could not associate" in delivery["last_error"]
    assert b["delivery_summary"] == {"DOWN@127.0.0.1:9": {"failed": 1}}
    k = by_uid[knee]
    assert k["state"] == "not_analysed"
    assert "not a head/brain study" in k["not_analysed_reason"]
    assert k["job"] is None

    text = _runner_invoke(["status", "--database", registry_url]).output
    assert "FAILED" in text and brain in text

    out = _runner_invoke(["results", brain, "--database", registry_url]).output
    assert "no analysis result" in out and NOT_INSTALLED_REASON in out
    res = json.loads(_runner_invoke(["results", knee, "--database", registry_url, "--json"]).output)
    assert res["result"] is None
    assert res["study_state"] == "not_analysed"
    missing = CliRunner().invoke(main, ["results", "1.2.3", "--database", registry_url])
    assert missing.exit_code == 1


def test_serve_bad_setting_exits_2_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path), "--destination", "nohost"]
    )
    assert result.exit_code == 2
    assert "destinations" in result.output


def test_serve_refuses_a_broken_queries_file_before_starting(tmp_path: Path) -> None:
    queries = tmp_path / "queries.json"
    queries.write_text('{"Arachnoid Cyst": "arachnoid cyst"}')
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path), "--queries", str(queries)]
    )
    assert result.exit_code == 2
    assert "Arachnoid Cyst" in result.output and "lower-case" in result.output
