"""Prometheus ``/metrics`` and ``/healthz`` computed from the registry and broker at scrape time.

The SCP runs in several processes and the tasks in Celery workers, so the
figures are read from the shared registry (and Redis) on each scrape rather
than counted in one process:

* ``dicom_node_instances_received_total``: instances in the registry;
* ``dicom_node_studies{state=...}``: studies per state;
* ``dicom_node_studies_completed_total``: studies that reached ``complete`` at least once;
* ``dicom_node_queue_depth{queue="gpu"|"io"}``: messages waiting in Redis (``LLEN``);
* ``dicom_node_task_duration_seconds``: summary of finished analysis jobs' durations;
* ``dicom_node_analysis_stage_seconds{stage=...}``: summary of the analysis stages
  (load, preprocess, encode, score, heatmaps, write) over the last
  :data:`STAGE_WINDOW` jobs that recorded them;
* ``dicom_node_analysis_jobs{state=...}``;
* ``dicom_node_deliveries{state=...}`` and ``dicom_node_delivery_failures_total``
  (permanently failed rows);
* ``dicom_node_disk_free_mb`` / ``dicom_node_disk_min_free_mb``: headroom of the storage dir.

``/healthz`` answers 200 with a JSON body when the registry and the broker
answer and the free disk is above the watermark, 503 (same body) otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.embedded_broker import redis_py_url
from dicom_node.registry import (
    AnalysisJob,
    Delivery,
    DeliveryState,
    Instance,
    JobState,
    Study,
    StudyState,
    StudyTransition,
)
from dicom_node.storage import free_disk_mb

logger = logging.getLogger(__name__)

QUEUES = ("gpu", "io")
_PRIORITY_SEP = "\x06\x16"  # kombu's Redis transport: "<queue>\x06\x16<priority>"
_PRIORITY_STEPS = (3, 6, 9)


def queue_depths(broker_url: str | None) -> dict[str, int]:
    """Messages waiting in each queue of a Redis broker (``LLEN`` of kombu's lists)."""
    import redis

    if not broker_url or not broker_url.startswith(("redis", "unix", "rediss")):
        return {}
    client = redis.Redis.from_url(redis_py_url(broker_url), socket_timeout=2)
    try:
        depths = {}
        for queue in QUEUES:
            keys = [queue, *(f"{queue}{_PRIORITY_SEP}{p}" for p in _PRIORITY_STEPS)]
            depths[queue] = sum(int(client.llen(key)) for key in keys)
        return depths
    finally:
        client.close()


def _counts(session: Session, key: Any, ident: Any) -> dict[Any, int]:
    """``{value of key: row count}`` (one GROUP BY query)."""
    rows = session.execute(select(key, func.count(ident)).group_by(key)).all()
    return {row[0]: int(row[1]) for row in rows}


STAGE_WINDOW = 1000
"""How many recent jobs' stage timings the stage summary covers."""


def _stage_summary(session: Session) -> SummaryMetricFamily:
    """Count and sum of each analysis stage's seconds over the recent jobs."""
    rows = session.scalars(
        select(AnalysisJob.stage_timings)
        .where(AnalysisJob.stage_timings.is_not(None))
        .order_by(AnalysisJob.id.desc())
        .limit(STAGE_WINDOW)
    ).all()
    totals: dict[str, tuple[int, float]] = {}
    for timings in rows:
        for stage, seconds in (timings or {}).items():
            if isinstance(seconds, int | float):
                count, total = totals.get(str(stage), (0, 0.0))
                totals[str(stage)] = (count + 1, total + float(seconds))
    summary = SummaryMetricFamily(
        "dicom_node_analysis_stage_seconds",
        f"Analysis stage durations (last {STAGE_WINDOW} jobs)",
        labels=["stage"],
    )
    for stage, (count, total) in sorted(totals.items()):
        summary.add_metric([stage], count_value=count, sum_value=total)
    return summary


class RegistryCollector:
    """A prometheus collector reading the registry and broker on each scrape."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        broker_url: str | None,
        storage_dir: Path,
        min_free_disk_mb: float,
    ) -> None:
        self._sessions = sessions
        self._broker_url = broker_url
        self._storage_dir = storage_dir
        self._min_free = min_free_disk_mb

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            instances = session.scalar(select(func.count(Instance.id))) or 0
            yield CounterMetricFamily(
                "dicom_node_instances_received", "Instances stored and registered", instances
            )
            by_state = _counts(session, Study.state, Study.id)
            studies = GaugeMetricFamily("dicom_node_studies", "Studies by state", labels=["state"])
            for state in StudyState:
                studies.add_metric([state.value], by_state.get(state, 0))
            yield studies
            completed = (
                session.scalar(
                    select(func.count(func.distinct(StudyTransition.study_id))).where(
                        StudyTransition.to_state == StudyState.COMPLETE
                    )
                )
                or 0
            )
            yield CounterMetricFamily(
                "dicom_node_studies_completed", "Studies that became complete", completed
            )
            jobs_by_state = _counts(session, AnalysisJob.state, AnalysisJob.id)
            jobs = GaugeMetricFamily(
                "dicom_node_analysis_jobs", "Analysis jobs by state", labels=["state"]
            )
            for job_state in JobState:
                jobs.add_metric([job_state.value], jobs_by_state.get(job_state, 0))
            yield jobs
            count, total = session.execute(
                select(func.count(AnalysisJob.duration_s), func.sum(AnalysisJob.duration_s)).where(
                    AnalysisJob.duration_s.is_not(None)
                )
            ).one()
            yield SummaryMetricFamily(
                "dicom_node_task_duration_seconds",
                "Duration of finished analysis jobs",
                count_value=int(count or 0),
                sum_value=float(total or 0.0),
            )
            yield _stage_summary(session)
            deliveries_by_state = _counts(session, Delivery.state, Delivery.id)
            deliveries = GaugeMetricFamily(
                "dicom_node_deliveries", "Outbox rows by state", labels=["state"]
            )
            for delivery_state in DeliveryState:
                deliveries.add_metric(
                    [delivery_state.value], deliveries_by_state.get(delivery_state, 0)
                )
            yield deliveries
            yield CounterMetricFamily(
                "dicom_node_delivery_failures",
                "Deliveries that failed permanently",
                deliveries_by_state.get(DeliveryState.FAILED, 0),
            )
        depth = GaugeMetricFamily(
            "dicom_node_queue_depth", "Messages waiting in the broker", labels=["queue"]
        )
        try:
            for queue, value in queue_depths(self._broker_url).items():
                depth.add_metric([queue], value)
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail on a broker hiccup
            logger.warning("metrics: broker not answering: %s", exc)
        yield depth
        yield GaugeMetricFamily(
            "dicom_node_disk_free_mb",
            "Free disk of the storage dir",
            free_disk_mb(self._storage_dir),
        )
        yield GaugeMetricFamily(
            "dicom_node_disk_min_free_mb", "Disk watermark (C-STORE refused below)", self._min_free
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the node is healthy, and the details."""
        body: dict[str, Any] = {}
        try:
            with self._sessions() as session:
                session.execute(select(1))
            body["registry"] = "ok"
        except Exception as exc:  # noqa: BLE001 - report, do not raise
            body["registry"] = f"error: {exc}"
        try:
            body["queues"] = queue_depths(self._broker_url)
            body["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001 - report, do not raise
            body["broker"] = f"error: {exc}"
        free = free_disk_mb(self._storage_dir)
        body["disk_free_mb"] = round(free, 1)
        body["disk_min_free_mb"] = self._min_free
        body["disk"] = "ok" if free > self._min_free else "below watermark"
        healthy = body["registry"] == "ok" and body["broker"] == "ok" and body["disk"] == "ok"
        body["status"] = "ok" if healthy else "unhealthy"
        return healthy, body


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics http: " + format, *args)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_app(collector: RegistryCollector) -> WsgiApp:
    """WSGI app: ``/healthz`` here, everything else prometheus_client's exposition."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == "/healthz":
            healthy, body = collector.health()
            payload = json.dumps(body).encode()
            start_response(
                "200 OK" if healthy else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    return app


class MetricsServer:
    """The HTTP server of ``/metrics`` and ``/healthz`` in a daemon thread."""

    def __init__(self, collector: RegistryCollector, host: str, port: int) -> None:
        self._server = make_server(
            host,
            port,
            make_app(collector),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()
        logger.info("metrics on http://%s:%d/metrics", self._server.server_name, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
