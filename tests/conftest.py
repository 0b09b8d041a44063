"""Shared fixtures: free ports, the real Redis and PostgreSQL of the machine, registries.

Sub-folders add their own fixtures in their own ``conftest.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from dicom_node.registry import create_registry_engine, init_registry

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")

# No test analyses with the demo bundle by accident (deploy/models/demo exists once
# built): nodes and workers started by tests inherit this; tests pass --bundle.
os.environ.setdefault("NEUROTRIAGE_DEMO_BUNDLE", "")
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make sysdeps` (dcmtk, dicom3tools, orthanc)")
    return path


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A database number of the machine's real Redis, flushed before and after."""
    import redis

    db = 1 + (os.getpid() % 14)
    url = f"{REDIS_URL}/{db}"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL}: `make services` starts it")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"nt_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Registry URL for both supported back-ends (tests run on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    from dicom_node.registry import Base

    Base.metadata.drop_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def registry_engine(registry_url: str) -> Iterator[Engine]:
    engine = create_registry_engine(registry_url)
    init_registry(engine)
    yield engine
    engine.dispose()
