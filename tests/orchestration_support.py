"""Helpers shared by the orchestration tests (registry rows, DICOM files, peer processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.registry import Instance, Series, Study, StudyState
from dicom_node.registry.models import utcnow
from dicom_node.registry.transitions import transition


def add_study(
    sessions: sessionmaker[Session],
    *,
    modality: str = "MR",
    body_part: str | None = "HEAD",
    study_description: str | None = "MRI BRAIN",
    series: tuple[tuple[str, int], ...] = (("T1 AX", 2), ("FLAIR AX", 2)),
    last_instance_at: datetime | None = None,
) -> str:
    """Insert a ``receiving`` study with its series and instances (as the SCP would)."""
    when = last_instance_at or utcnow()
    study_uid = generate_uid()
    with sessions() as session:
        study = Study(
            study_uid=study_uid,
            modality=modality,
            body_part=body_part,
            study_description=study_description,
            state=StudyState.RECEIVING,
            version=0,
            instance_count=0,
            created_at=when - timedelta(seconds=1),
            last_instance_at=when,
        )
        session.add(study)
        for number, (description, count) in enumerate(series, start=1):
            row = Series(
                study=study,
                series_uid=generate_uid(),
                modality=modality,
                series_number=number,
                series_description=description,
                body_part=body_part,
                instance_count=count,
            )
            session.add(row)
            for _ in range(count):
                row.instances.append(
                    Instance(
                        sop_instance_uid=generate_uid(),
                        sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
                        transfer_syntax_uid="1.2.840.10008.1.2.1",
                        path="/nonexistent.dcm",
                        size_bytes=1,
                        received_at=when,
                    )
                )
            study.instance_count += count
        session.commit()
    return study_uid


def late_instance(sessions: sessionmaker[Session], study_uid: str, when: datetime) -> None:
    """Register one more instance for ``study_uid`` the way the SCP does (re-opens it)."""
    with sessions() as session:
        study = session.scalars(select(Study).where(Study.study_uid == study_uid)).one()
        series = study.series[0]
        session.add(
            Instance(
                series=series,
                sop_instance_uid=generate_uid(),
                sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
                transfer_syntax_uid="1.2.840.10008.1.2.1",
                path="/nonexistent.dcm",
                size_bytes=1,
                received_at=when,
            )
        )
        study.instance_count += 1
        study.last_instance_at = when
        if study.state is not StudyState.RECEIVING:
            transition(session, study, StudyState.RECEIVING, "new instance", at=when)
        session.commit()


def get_study(sessions: sessionmaker[Session], study_uid: str) -> Study:
    with sessions() as session:
        study = session.scalars(select(Study).where(Study.study_uid == study_uid)).one()
        _ = study.jobs, study.deliveries, study.transitions, study.series
        return study


def write_mr_file(directory: Path, study_uid: str | None = None) -> Path:
    """pydicom's bundled MR test file with fresh UIDs, written to ``directory``."""
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def wait_until(
    condition: Callable[[], object], timeout: float, interval: float = 0.2, what: str = ""
) -> object:
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL: a process the test started."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextmanager
def celery_worker(
    broker: str, database: str, data_dir: Path, log: Path, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``dicom-node worker`` subprocess consuming the gpu and io queues."""
    env = {**os.environ, **(extra_env or {})}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dicom_node.cli.worker",
                "--broker",
                broker,
                "--database",
                database,
                "--data-dir",
                str(data_dir),
                "--concurrency",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield process
    finally:
        stop_process(process)


@contextmanager
def storescp(port: int, out_dir: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """dcmtk ``storescp`` writing every received object to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            ["storescp", "-aet", "PACS", "-od", str(out_dir), "+B", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
    try:
        wait_for_port(port, 10)
        yield process
    finally:
        stop_process(process)


def wait_for_port(port: int, timeout: float) -> None:
    import socket

    def _open() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(_open, timeout, 0.1, f"port {port}")


@contextmanager
def serve_subprocess(
    data_dir: Path,
    port: int,
    ae_title: str,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``dicom-node -v serve`` as a subprocess on loopback, one SCP process, caller
    ``STORESCU`` allowed; ``args`` adds flags. Yields (process, log path) once the port
    accepts connections; prints the log's tail if the test fails; stops it after."""
    log = data_dir.parent / "serve.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-c",
        "from dicom_node.cli import main; main()",
        "-v",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--ae-title",
        ae_title,
        "--allow",
        "STORESCU",
        "--scp-processes",
        "1",
        "--min-free-disk-mb",
        "1",
        *args,
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=dict(env) if env else None
        )
    try:
        wait_for_port(port, 60)
        yield process, log
    except BaseException:
        sys.stderr.write(log.read_text(errors="replace")[-6000:])
        raise
    finally:
        stop_process(process, 30)
