"""Ingest benchmark: dcmtk storescu -> the node, Orthanc and dcmtk storescp.

Builds one 600-instance MR study (4 series x 150 slices, 256 x 256, 16-bit,
explicit VR little endian, fresh UIDs) in a temporary folder, then sends it
with ``storescu`` over 1 association and over 4 associations (4 storescu
processes, each with a quarter of the files) to

(a) the node: :class:`dicom_node.scp.service.ScpService` with its SQLite
    registry; durable (fsync + rename + directory fsync) and registered;
(b) Orthanc, started here on loopback with its own temporary JSON config;
(c) dcmtk ``storescp`` (``--fork``: a process per association; no fsync);
(d) ``pynetdicom``: the floor of the library the node is built on, a
    pynetdicom SCP process with chunked receive and the node's event-driven
    reactors whose handler only renames the received file (no fsync, no
    parsing, no registry). The node cannot be faster than this on one
    association.

Every target starts empty for every run. Prints instances/s (median of
``--repeat`` runs, and the best), the ratios node/Orthanc, node/storescp,
node/pynetdicom, and the receiving side's CPU milliseconds per instance (all
its processes; the storescu senders excluded).

Usage::

    .venv/bin/python bench/ingest.py [--repeat 3] \
        [--targets node,node:4,orthanc,storescp,pynetdicom]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from itertools import product
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from dicom_node.config import NodeSettings
from dicom_node.scp.service import ScpService


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
SERIES, SLICES, SIZE = 4, 150, 256


def build_study(folder: Path) -> list[Path]:
    """600 synthetic 16-bit MR slices in 4 series, written with pydicom."""
    rng = np.random.default_rng(0)
    study_uid = generate_uid()
    frame_of_reference = generate_uid()
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    head = ((yy - SIZE / 2) ** 2 + (xx - SIZE / 2) ** 2 < (SIZE * 0.4) ** 2).astype(np.float32)
    files = []
    for series_number in range(1, SERIES + 1):
        series_uid = generate_uid()
        series_dir = folder / f"series{series_number}"
        series_dir.mkdir(parents=True)
        for index in range(SLICES):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.PatientName = "Bench^Ingest"
            ds.PatientID = "BENCH001"
            ds.StudyDate = "20260101"
            ds.StudyTime = "120000"
            ds.AccessionNumber = "BENCH1"
            ds.Modality = "MR"
            ds.StudyDescription = "MRI BRAIN"
            ds.SeriesDescription = f"AX T2 {series_number}"
            ds.BodyPartExamined = "BRAIN"
            ds.SeriesNumber = series_number
            ds.InstanceNumber = index + 1
            ds.FrameOfReferenceUID = frame_of_reference
            ds.ImagePositionPatient = [-128.0, -128.0, float(index)]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing = [1.0, 1.0]
            ds.SliceThickness = 1.0
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = ds.Columns = SIZE
            ds.BitsAllocated = 16
            ds.BitsStored = 12
            ds.HighBit = 11
            ds.PixelRepresentation = 0
            noise = rng.normal(0, 30, (SIZE, SIZE))
            pixels = np.clip(head * (800 + 10 * index) + noise, 0, 4095).astype(np.uint16)
            ds.PixelData = pixels.tobytes()
            path = series_dir / f"{index + 1:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return files


# Targets: each is a context manager yielding (called AE title, port, count()).
Target = Callable[
    [Path, int], contextlib.AbstractContextManager[tuple[str, int, Callable[[], int]]]
]


@contextlib.contextmanager
def node_target(work: Path, processes: int) -> Iterator[tuple[str, int, Callable[[], int]]]:
    settings = NodeSettings(
        port=free_port(),
        bind="127.0.0.1",
        data_dir=work,
        allow=["BENCH"],
        scp_processes=processes,
        min_free_disk_mb=100,
    )
    service = ScpService(settings)
    service.start()
    try:
        yield (
            settings.ae_title,
            service.port,
            lambda: len(list(settings.storage_dir.glob("*/*/*.dcm"))),
        )
    finally:
        service.stop()


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def orthanc_target(work: Path, _processes: int) -> Iterator[tuple[str, int, Callable[[], int]]]:
    dicom_port, http_port = free_port(), free_port()
    config = {
        "Name": "bench",
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "StorageDirectory": str(work / "storage"),
        "IndexDirectory": str(work / "index"),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "StorageCompression": False,
        "Plugins": [],
        "DicomServerEnabled": True,
    }
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / "orthanc.json"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        ["Orthanc", str(config_path)],
        env=DCMTK_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait_http(f"{base}/system")

        def count() -> int:
            with urllib.request.urlopen(f"{base}/statistics", timeout=10) as response:
                return int(json.load(response)["CountInstances"])

        yield "ORTHANC", dicom_port, count
    finally:
        process.terminate()
        process.wait(30)


def wait_for_echo(aet: str, port: int, what: str, timeout: float = 30) -> None:
    """Wait until ``aet`` on loopback ``port`` answers dcmtk's echoscu."""
    deadline = time.monotonic() + timeout
    while subprocess.run(
        ["echoscu", "-aec", aet, "127.0.0.1", str(port)], env=DCMTK_ENV, capture_output=True
    ).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


@contextlib.contextmanager
def storescp_target(work: Path, _processes: int) -> Iterator[tuple[str, int, Callable[[], int]]]:
    port = free_port()
    out = work / "out"
    out.mkdir(parents=True)
    process = subprocess.Popen(
        ["storescp", "--fork", "-aet", "STORESCP", "-od", str(out), str(port)],
        env=DCMTK_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_echo("STORESCP", port, "storescp")
        yield "STORESCP", port, lambda: sum(1 for path in out.iterdir() if path.is_file())
    finally:
        process.terminate()
        process.wait(30)


def serve_floor(port: int, out: Path) -> None:
    """Run the ``pynetdicom`` reference SCP until killed (``--serve-floor``)."""
    from pynetdicom import AE, _config, evt
    from pynetdicom.sop_class import MRImageStorage as MRStorage
    from pynetdicom.sop_class import Verification

    from dicom_node.scp import reactors

    _config.LOG_HANDLER_LEVEL = "none"
    _config.STORE_RECV_CHUNKED_DATASET = True
    tempfile.tempdir = str(out)

    def store(event: evt.Event) -> int:
        path = Path(event.dataset_path)
        path.rename(path.with_suffix(".stored"))
        return 0x0000

    def opened(event: evt.Event) -> None:
        if reactors.supported():
            reactors.install(event.assoc)

    ae = AE(ae_title="FLOOR")
    ae.add_supported_context(MRStorage, ExplicitVRLittleEndian)
    ae.add_supported_context(Verification)
    ae.maximum_pdu_size = 1024 * 1024
    handlers = [(evt.EVT_C_STORE, store), (evt.EVT_CONN_OPEN, opened)]
    ae.start_server(("127.0.0.1", port), evt_handlers=handlers)


@contextlib.contextmanager
def floor_target(work: Path, _processes: int) -> Iterator[tuple[str, int, Callable[[], int]]]:
    port = free_port()
    out = work / "out"
    out.mkdir(parents=True)
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-floor", str(port), str(out)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_echo("FLOOR", port, "the pynetdicom reference SCP")
        yield "FLOOR", port, lambda: len(list(out.glob("*.stored")))
    finally:
        process.terminate()
        process.wait(30)


TARGETS: dict[str, Target] = {
    "node": node_target,
    "orthanc": orthanc_target,
    "storescp": storescp_target,
    "pynetdicom": floor_target,
}


def send(files: list[Path], aet: str, port: int, associations: int) -> float:
    """Send ``files`` over ``associations`` concurrent storescu processes; return seconds."""
    chunks = [files[i::associations] for i in range(associations)]
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            ["storescu", "-aet", "BENCH", "-aec", aet, "-R", "-xe", "127.0.0.1", str(port)]
            + [str(path) for path in chunk],
            env=DCMTK_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for chunk in chunks
    ]
    errors = [process.communicate()[1] for process in processes]
    elapsed = time.perf_counter() - start
    for process, error in zip(processes, errors, strict=True):
        if process.returncode:
            raise RuntimeError(f"storescu to {aet} failed: {error.decode()[-500:]}")
    return elapsed


def server_cpu_seconds() -> float:
    """CPU seconds so far of this process and its descendants, the storescu senders excluded.

    The targets run here (the node's dispatcher thread) or as child processes
    (the node's SCP workers, Orthanc, storescp and the children it forks, the
    pynetdicom floor). Reaped children of this process (the storescu senders)
    are not counted. storescp's per-association children count only once
    storescp has reaped them, so its figure can come out low.
    """
    table: dict[int, tuple[str, int, list[str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        table[int(stat.parent.name)] = (name, int(fields[1]), fields)
    me = os.getpid()

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == me:
                return True
            pid = table[pid][1] if pid in table else 0
        return False

    ticks = 0
    for pid, (name, _ppid, fields) in table.items():
        if name == "storescu" or not descends(pid):
            continue
        utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
        ticks += utime + stime + (0 if pid == me else cutime + cstime)
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_once(
    target: str, files: list[Path], associations: int, run: int, scratch: Path
) -> tuple[float, float]:
    """One run against a fresh, empty target; ``node:N`` is the node with N SCP processes.

    Returns instances/s and the receiving side's CPU milliseconds per instance.
    """
    name, _, processes = target.partition(":")
    work = scratch / f"{name}-{processes}-{associations}-{run}"
    with TARGETS[name](work, int(processes or 2)) as (aet, port, count):
        cpu_before = server_cpu_seconds()
        elapsed = send(files, aet, port, associations)
        cpu_ms = 1000 * (server_cpu_seconds() - cpu_before) / len(files)
        stored = count()
    shutil.rmtree(work, ignore_errors=True)
    if stored != len(files):
        raise RuntimeError(f"{target}: {stored} of {len(files)} instances stored")
    rate = len(files) / elapsed
    print(
        f"  run {run + 1} {target:10s} {associations} assoc: {rate:7.1f} inst/s, "
        f"receiver CPU {cpu_ms:5.2f} ms/instance",
        flush=True,
    )
    return rate, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--targets",
        default="node,orthanc,storescp,pynetdicom",
        help="comma-separated; node:N runs the node with N SCP processes (default 2)",
    )
    parser.add_argument("--associations", default="1,4")
    parser.add_argument("--serve-floor", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(int(args.serve_floor[0]), Path(args.serve_floor[1]))
        return
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    targets = args.targets.split(",")
    counts = [int(value) for value in args.associations.split(",")]
    results: dict[tuple[str, int], list[float]] = {key: [] for key in product(targets, counts)}
    cpu: dict[tuple[str, int], list[float]] = {key: [] for key in product(targets, counts)}
    with tempfile.TemporaryDirectory(prefix="nt-bench-") as tmp:
        scratch = Path(tmp)
        files = build_study(scratch / "study")
        size_mb = sum(path.stat().st_size for path in files) / 1e6
        print(f"study: {len(files)} instances, {size_mb:.0f} MB; cores: {os.cpu_count()}")
        # Runs interleave the targets, so a busy moment on the machine hits all of them.
        for run in range(args.repeat):
            for associations in counts:
                for target in targets:
                    rate, cpu_ms = measure_once(target, files, associations, run, scratch)
                    results[target, associations].append(rate)
                    cpu[target, associations].append(cpu_ms)
    print()
    print(f"{'instances/s':12s}" + "".join(f"{f'{n} assoc: median (best)':>26s}" for n in counts))
    for target in targets:
        cells = [
            f"{statistics.median(results[target, n]):7.1f} ({max(results[target, n]):6.1f})"
            for n in counts
        ]
        print(f"{target:12s}" + "".join(f"{cell:>26s}" for cell in cells))
    for node in (target for target in targets if target.startswith("node")):
        for other in ("orthanc", "storescp", "pynetdicom"):
            if other in targets:
                ratios = [
                    statistics.median(results[node, n]) / statistics.median(results[other, n])
                    for n in counts
                ]
                label = f"{node}/{other}"
                print(f"{label:12s}" + "".join(f"{ratio:>25.2f}x" for ratio in ratios))
    print()
    print(f"{'receiver CPU':12s}" + "".join(f"{f'{n} assoc: ms/instance':>26s}" for n in counts))
    for target in targets:
        cells = [f"{statistics.median(cpu[target, n]):7.2f}" for n in counts]
        print(f"{target:12s}" + "".join(f"{cell:>26s}" for cell in cells))


if __name__ == "__main__":
    main()
