"""Fixtures of the orchestration unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.dispatch import TaskSender, celery_sender
from dicom_node.registry import session_factory


@pytest.fixture
def sessions(registry_engine: Engine) -> sessionmaker[Session]:
    return session_factory(registry_engine)


@pytest.fixture
def broker(redis_url: str) -> Iterator[tuple[TaskSender, Any]]:
    """A sender publishing to the real Redis, and a client to look at its queues."""
    client = redis.Redis.from_url(redis_url)
    yield celery_sender(redis_url), client
    client.close()


@pytest.fixture(autouse=True)
def _analysis_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the task without the analysis pipeline (``pipeline.analysis``
    has its own tests in ``tests/unit/analysis``); a test passing ``analysis=`` is unaffected."""
    monkeypatch.setattr("pipeline.tasks.load_analysis", lambda: None)
