"""Fixtures of the end-to-end tests: a tiny bundle, synthetic studies, Orthanc and the node."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.analysis_support import serve_node, train_tiny_bundle
from tests.conftest import REDIS_URL, require_tool
from tests.integration.orthanc import ORTHANC, OrthancServer


@dataclass
class Node:
    data_dir: Path
    port: int
    pacs: OrthancServer


@pytest.fixture(scope="module")
def tiny_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_bundle(tmp_path_factory.mktemp("tiny"), ("T2", "FLAIR", "DWI"))


@pytest.fixture(scope="module")
def module_redis_url() -> Iterator[str]:
    """A database of the machine's real Redis for the module's node, flushed before and after
    (``tests/conftest.py``'s ``redis_url`` is per test; the node lives for the module)."""
    import redis

    db = 1 + (os.getpid() + 7) % 14
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


@pytest.fixture(scope="module")
def node(
    module_redis_url: str, tiny_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    """Orthanc (the PACS) and ``dicom-node serve`` (managed worker, machine Redis) sending to it."""
    require_tool("storescu")
    require_tool("dciodvfy")
    if not Path(ORTHANC).exists():
        pytest.fail(f"{ORTHANC} is not installed: run `make sysdeps`")
    root = tmp_path_factory.mktemp("e2e")
    with OrthancServer(root / "orthanc") as pacs:
        destination = f"{pacs.aet}@127.0.0.1:{pacs.dicom_port}"
        with serve_node(
            root / "node",
            broker=module_redis_url,
            bundle=tiny_bundle_dir,
            destination=destination,
            extra_env={"OMP_NUM_THREADS": "1"},
        ) as (_process, port):
            yield Node(root / "node", port, pacs)
