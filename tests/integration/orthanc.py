"""A real Orthanc PACS for integration tests: started as a subprocess, stopped after.

Usage::

    with OrthancServer(tmp_path) as pacs:
        send_with_storescu(paths, pacs.dicom_port, pacs.aet)
        pacs.series()          # GET /series?expand

Orthanc listens for HTTP on loopback only (``RemoteAccessAllowed: false``), with
authentication off, and gets ``TCP_NODELAY=1`` like the dcmtk tools (Debian's
build leaves Nagle on otherwise: ~40 ms per instance).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.conftest import free_port

ORTHANC = "/usr/sbin/Orthanc"


class OrthancServer:
    """One Orthanc process with its own storage, index and ports."""

    def __init__(self, workdir: Path, aet: str = "ORTHANC", startup_timeout: float = 30.0):
        self.workdir = workdir
        self.aet = aet
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log = workdir / "orthanc.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _write_config(self) -> Path:
        config = {
            "Name": "neurotriage-test-pacs",
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "Plugins": [],
            "StableAge": 1,
        }
        path = self.workdir / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self) -> OrthancServer:
        if not Path(ORTHANC).exists():
            raise RuntimeError(f"{ORTHANC} is not installed: run `make sysdeps`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        env = {**os.environ, "TCP_NODELAY": "1"}
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [ORTHANC, str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start: {self.log_tail()}")
            try:
                self.get("/system")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {self.startup_timeout} s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        self._process = None

    def log_tail(self, lines: int = 20) -> str:
        if not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> OrthancServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- REST helpers ---------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            payload: bytes = response.read()
            return payload

    def get(self, path: str) -> Any:
        return json.loads(self._request("GET", path))

    def post(self, path: str, body: Any) -> Any:
        return json.loads(self._request("POST", path, body))

    def studies(self) -> list[dict[str, Any]]:
        """``GET /studies?expand``."""
        result: list[dict[str, Any]] = self.get("/studies?expand")
        return result

    def series(self) -> list[dict[str, Any]]:
        """``GET /series?expand``: every series with its MainDicomTags and ParentStudy."""
        result: list[dict[str, Any]] = self.get("/series?expand")
        return result

    def find(self, level: str, query: dict[str, str]) -> list[dict[str, Any]]:
        """``POST /tools/find`` with ``Expand`` (level: Patient/Study/Series/Instance)."""
        result: list[dict[str, Any]] = self.post(
            "/tools/find", {"Level": level, "Query": query, "Expand": True}
        )
        return result

    def instance_file(self, orthanc_id: str) -> bytes:
        """``GET /instances/<id>/file``: the stored DICOM file."""
        return self._request("GET", f"/instances/{orthanc_id}/file")


def send_with_storescu(
    paths: Sequence[Path], port: int, aet: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Send files with dcmtk ``storescu -R`` (propose only the SOP classes the files need;
    without it Comprehensive 3D SR has no presentation context)."""
    storescu = shutil.which("storescu")
    if storescu is None:
        raise RuntimeError("storescu (dcmtk) is not installed: run `make sysdeps`")
    env = {**os.environ, "TCP_NODELAY": "1"}
    return subprocess.run(
        [storescu, "-R", "-aec", aet, "127.0.0.1", str(port), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=True,
    )
