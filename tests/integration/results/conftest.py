"""Fixtures of the results integration tests: a real Orthanc PACS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.orthanc import ORTHANC, OrthancServer


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    """An Orthanc started for the test on loopback, stopped after it."""
    require_tool("storescu")
    if not Path(ORTHANC).exists():
        pytest.fail(f"{ORTHANC} is not installed: run `make sysdeps`")
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server
