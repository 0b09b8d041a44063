"""The managed worker gets the node's effective settings through the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicom_node.config import AnalysisRules, load_settings
from dicom_node.embedded_broker import redis_py_url, socket_url
from dicom_node.node import ManagedWorker, settings_to_env


def test_settings_round_trip_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        ae_title="NODE1",
        allow=["SCANNER@10.0.0.5", "PACS"],
        destinations=["PACS@pacs:104"],
        quiet_period=3.5,
        allow_any=True,
        analysis_rules=AnalysisRules(modalities=["MR", "CT"], description_patterns=[r"\bx\b"]),
    )
    env = settings_to_env(settings)
    assert env["DICOM_NODE_DATABASE"] == settings.database_url
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    again = load_settings()
    assert again.model_dump() == {**settings.model_dump(), "data_dir": tmp_path.resolve()} | {
        "database": settings.database_url
    }


def test_managed_worker_command(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, worker_concurrency=3)
    command = ManagedWorker(settings, "redis://127.0.0.1:6379/3").command()
    assert command[1:3] == ["-m", "dicom_node.cli.worker"]
    assert command[command.index("--broker") + 1] == "redis://127.0.0.1:6379/3"
    assert command[command.index("--concurrency") + 1] == "3"
    assert "--exit-with-parent" in command


def test_socket_urls() -> None:
    url = socket_url("/tmp/x/redis.sock")
    assert url == "redis+socket:///tmp/x/redis.sock?virtual_host=0"
    assert redis_py_url(url) == "unix:///tmp/x/redis.sock?db=0"
    assert redis_py_url("redis://h:1/2") == "redis://h:1/2"
