"""End-to-end latency: last instance received -> results stored in the PACS, on this machine.

A 6-sequence synthetic study (T1, T1C, T2, FLAIR, DWI + ADC, SWI, localizer) is sent
with dcmtk ``storescu`` to ``dicom-node serve`` (managed worker, the machine's Redis),
which delivers the SR and heatmaps to an Orthanc started here. From the registry:

* ``latency``: last instance received -> last result object stored in Orthanc
  (C-STORE acknowledged), minus the configured quiet period;
* the breakdown: ``detect`` (completion detection beyond the quiet period),
  ``queue`` (complete -> analysis picked up), the analysis stages recorded by the
  task (``load``, ``preprocess``, ``encode``, ``score``, ``heatmaps``, ``write``),
  ``task_other`` (task time outside the stages: registry, bundle warm-up on first use)
  and ``send`` (analysis done -> last object stored);
* the peak resident memory of the worker processes (sampled every 0.1 s).

Targets: <= 15 s and <= 3 GB per worker on 2 CPU cores. The bundle is ``--bundle``
(default: the demo bundle when present, else a tiny bundle trained here in seconds,
whose encoders are much cheaper than a real model's: say which one you report).

``--analysis-only`` runs the same analysis in-process on the study folder (no
network), e.g. on a GPU: ``--device cuda``.

Usage (from the repository root; the benchmark reuses the tests' helpers)::

    PYTHONPATH=. .venv/bin/python bench/e2e.py [--bundle DIR] [--size full|small] [--seed 7]
        [--quiet-period 2] [--device cpu] [--analysis-only] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pydicom

# The bench reuses the test suite's peers (Orthanc, tiny bundles): run it from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.analysis import DEMO_BUNDLE
from tests.analysis_support import (
    AET,
    SIX_SEQUENCES,
    node_results,
    node_status,
    serve_node,
    train_tiny_bundle,
)
from tests.integration.orthanc import OrthancServer, send_with_storescu
from tests.orchestration_support import wait_until
from training.machine import describe_machine
from training.synth import generate_study, write_study

SEQUENCES = ["T1", "T1C", "T2", "FLAIR", "DWI", "SWI"]


class RssMonitor(threading.Thread):
    """Peak RSS of every worker process under a parent (sampled)."""

    def __init__(self, parent: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.parent = parent
        self.interval = interval
        self.peak: dict[int, tuple[int, str]] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                children = psutil.Process(self.parent).children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for child in children:
                try:
                    cmd = " ".join(child.cmdline())
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                if "worker" not in cmd and "celery" not in cmd:
                    continue
                if rss > self.peak.get(child.pid, (0, ""))[0]:
                    self.peak[child.pid] = (rss, cmd[:80])
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def _t(value: str | None) -> float:
    if value is None:
        raise RuntimeError("a timestamp the benchmark needs is missing")
    return datetime.fromisoformat(value).timestamp()


def make_study(root: Path, seed: int, size: str) -> Path:
    study = generate_study(seed, findings={"haemorrhage": True}, size=size, sequences=SEQUENCES)  # type: ignore[arg-type]
    return write_study(study, root)


def run_e2e(bundle: Path, folder: Path, work: Path, quiet: float) -> dict[str, Any]:
    files = sorted(folder.rglob("*.dcm"))
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    import redis

    broker = "redis://127.0.0.1:6379/15"  # the tests use databases 1-14
    redis.Redis.from_url(broker).flushdb()
    with (
        OrthancServer(work / "orthanc") as pacs,
        serve_node(
            work / "node",
            broker=broker,
            bundle=bundle,
            destination=f"{pacs.aet}@127.0.0.1:{pacs.dicom_port}",
            quiet_period=quiet,
        ) as (process, port),
    ):
        monitor = RssMonitor(process.pid)
        monitor.start()
        log = work / "serve.log"  # serve_node's log, with the managed worker's output

        def warm() -> bool:
            return log.is_file() and "loaded bundle" in log.read_text(errors="replace")

        wait_until(warm, 300, 0.5, "the worker to preload its bundle")
        time.sleep(2)  # the warm-up pass after loading
        send_start = time.time()
        send_with_storescu(files, port, AET, timeout=600)
        sent = time.time()

        def delivered() -> dict[str, Any] | None:
            study = node_status(work / "node").get(study_uid)
            return study if study and study["state"] in ("delivered", "failed") else None

        study = wait_until(delivered, 600, 0.5, "results delivered")
        monitor.stop()
        assert isinstance(study, dict)
        result = node_results(work / "node", study_uid)
        stored = len(pacs.find("Instance", {"StudyInstanceUID": study_uid}))
    if study["state"] != "delivered":
        raise RuntimeError(f"study ended {study['state']}: {study.get('not_analysed_reason')}")
    last = _t(study["last_instance_at"])
    stored_at = max(_t(d["delivered_at"]) for d in study["deliveries"])
    done = _t(study["done_at"])
    stages = result["result"]["stage_timings"]
    analysing = _t(study["analysing_at"])
    breakdown = {
        "detect": _t(study["completed_at"]) - last - quiet,
        "queue": analysing - _t(study["completed_at"]),
        **stages,
        "task_other": (done - analysing) - sum(stages.values()),
        "send": stored_at - done,
    }
    peak = max(monitor.peak.values(), default=(0, ""))
    return {
        "study_uid": study_uid,
        "instances_sent": len(files),
        "send_seconds": round(sent - send_start, 2),
        "objects_delivered": len(study["deliveries"]),
        "instances_in_pacs": stored,
        "latency_s": round(stored_at - last - quiet, 2),
        "breakdown_s": {k: round(v, 3) for k, v in breakdown.items()},
        "worker_peak_rss_mb": round(peak[0] / 2**20, 1),
        "worker_processes": {
            str(pid): round(r / 2**20, 1) for pid, (r, _c) in monitor.peak.items()
        },
        "sequences_used": result["result"]["sequences_used"],
        "model": result["result"]["model"],
    }


def run_analysis_only(bundle: Path, folder: Path, device: str) -> dict[str, Any]:
    from pipeline.analysis import get_bundle
    from pipeline.study_analysis import analyse_folder

    start = time.perf_counter()
    model = get_bundle(bundle, device)
    loaded = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        runs = [analyse_folder(folder, model, Path(out) / str(i)) for i in range(2)]
    warm = runs[-1]
    return {
        "device": device,
        "bundle_load_and_warm_up_s": round(loaded, 2),
        "first_s": round(sum(runs[0].stage_timings.values()), 2),
        "warm_s": round(sum(warm.stage_timings.values()), 2),
        "warm_stages_s": {k: round(v, 3) for k, v in warm.stage_timings.items()},
        "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "sequences_used": list(warm.result.sequences_used),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--size", choices=("full", "small"), default="full")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quiet-period", type=float, default=2.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--analysis-only", action="store_true")
    parser.add_argument(
        "--proxy",
        default="tiny:32",
        help="without --bundle/demo: image config and size of the bundle trained here "
        "(tiny:32, or small:64 = the demo model's plan)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = args.bundle
        note = str(bundle)
        if bundle is None and (DEMO_BUNDLE / "manifest.json").is_file():
            bundle, note = DEMO_BUNDLE, f"demo bundle {DEMO_BUNDLE}"
        if bundle is None:
            config, _, size = args.proxy.partition(":")
            bundle = train_tiny_bundle(
                work / "proxy", SIX_SEQUENCES, size=int(size), image_config=config, studies=9
            )
            note = f"{config} encoders at {size}^3 trained 1 epoch by the benchmark (cost proxy)"
        start = time.perf_counter()
        folder = make_study(work / "study", args.seed, args.size)
        generated = time.perf_counter() - start
        if args.analysis_only:
            report = run_analysis_only(bundle, folder, args.device)
        else:
            report = run_e2e(bundle, folder, work, args.quiet_period)
        report |= {
            "bundle": note,
            "size": args.size,
            "generate_s": round(generated, 1),
            "machine": describe_machine(),
        }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
