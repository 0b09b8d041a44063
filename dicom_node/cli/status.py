"""``dicom-node status``: recent studies with state, counts, timings, jobs and deliveries."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from dicom_node.config import NodeSettings, load_settings
from dicom_node.errors import ConfigError
from dicom_node.registry import (
    AnalysisJob,
    Instance,
    Series,
    Study,
    create_registry_engine,
    init_registry,
    session_factory,
)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat() if value is not None else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    start, end = _utc(start), _utc(end)
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def node_version() -> str:
    try:
        return version("neurotriage-node")
    except PackageNotFoundError:
        return "unknown"


def _job_dict(job: AnalysisJob | None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {
        "version": job.version,
        "state": job.state.value,
        "worker": job.worker,
        "celery_task_id": job.celery_task_id,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "duration_s": job.duration_s,
        "error": job.error,
        "model_name": job.model_name,
        "model_version": job.model_version,
    }


def study_status(session: Session, study: Study) -> dict[str, Any]:
    """Status of one study (no patient data)."""
    counts = session.execute(
        select(func.count(func.distinct(Series.id)), func.count(Instance.id))
        .select_from(Series)
        .outerjoin(Instance, Instance.series_id == Series.id)
        .where(Series.study_id == study.id)
    ).one()
    job = study.jobs[-1] if study.jobs else None
    queued_at = next(
        (t.at for t in reversed(study.transitions) if t.to_state.value == "queued"), None
    )
    started = job.started_at if job is not None else None
    done = job.finished_at if job is not None else None
    if done is None and study.state.value == "not_analysed" and study.transitions:
        done = study.transitions[-1].at
    deliveries = [
        {
            "id": d.id,
            "destination": d.destination,
            "sop_instance_uid": d.sop_instance_uid,
            "state": d.state.value,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "next_attempt_at": _iso(d.next_attempt_at),
            "delivered_at": _iso(d.delivered_at),
        }
        for d in study.deliveries
    ]
    per_destination: dict[str, dict[str, int]] = {}
    for d in deliveries:
        summary = per_destination.setdefault(str(d["destination"]), {})
        summary[str(d["state"])] = summary.get(str(d["state"]), 0) + 1
    return {
        "study_uid": study.study_uid,
        "state": study.state.value,
        "version": study.version,
        "modality": study.modality,
        "study_description": study.study_description,
        "series": int(counts[0]),
        "instances": int(counts[1]),
        "not_analysed_reason": study.not_analysed_reason,
        "received_at": _iso(study.created_at),
        "last_instance_at": _iso(study.last_instance_at),
        "completed_at": _iso(study.completed_at),
        "queued_at": _iso(queued_at),
        "analysing_at": _iso(started),
        "done_at": _iso(done),
        "timings_s": {
            "received_to_complete": _seconds(study.created_at, study.completed_at),
            "complete_to_queued": _seconds(study.completed_at, queued_at),
            "queued_to_analysing": _seconds(queued_at, started),
            "analysing_to_done": _seconds(started, done),
            "total": _seconds(study.created_at, done),
        },
        "job": _job_dict(job),
        "jobs": [{"version": j.version, "state": j.state.value} for j in study.jobs],
        "deliveries": deliveries,
        "delivery_summary": per_destination,
        "transitions": [
            {
                "from": t.from_state.value if t.from_state else None,
                "to": t.to_state.value,
                "at": _iso(t.at),
                "detail": t.detail,
            }
            for t in study.transitions
        ],
    }


def collect_status(session: Session, limit: int = 20) -> dict[str, Any]:
    """The ``status --json`` document: node version and the ``limit`` latest studies."""
    studies = session.scalars(
        select(Study)
        .options(
            selectinload(Study.jobs),
            selectinload(Study.deliveries),
            selectinload(Study.transitions),
        )
        .order_by(Study.updated_at.desc(), Study.id.desc())
        .limit(limit)
    ).all()
    return {
        "node_version": node_version(),
        "generated_at": datetime.now(UTC).isoformat(),
        "studies": [study_status(session, s) for s in studies],
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def render_text(doc: dict[str, Any]) -> str:
    lines = [f"dicom-node {doc['node_version']}: {len(doc['studies'])} recent studies"]
    for s in doc["studies"]:
        t = s["timings_s"]
        job = s["job"] or {}
        lines.append(
            f"{s['study_uid']}  {s['state']:<13} v{s['version']}  "
            f"{s['series']} series / {s['instances']} instances  "
            f"complete {_fmt(t['received_to_complete'])} queued {_fmt(t['complete_to_queued'])} "
            f"start {_fmt(t['queued_to_analysing'])} done {_fmt(t['analysing_to_done'])}"
        )
        if job:
            lines.append(f"    job v{job['version']} {job['state']} on {job['worker'] or '-'}")
        if s["not_analysed_reason"]:
            lines.append(f"    not analysed: {s['not_analysed_reason']}")
        for destination, summary in s["delivery_summary"].items():
            parts = ", ".join(f"{k} {v}" for k, v in sorted(summary.items()))
            lines.append(f"    delivery {destination}: {parts}")
        for d in s["deliveries"]:
            if d["state"] == "failed":
                lines.append(
                    f"    FAILED {d['sop_instance_uid']} -> {d['destination']} after "
                    f"{d['attempts']} attempt(s): {d['last_error']}"
                )
    return "\n".join(lines)


def open_registry(
    config: Path | None, database: str | None, data_dir: Path | None
) -> tuple[NodeSettings, Session]:
    try:
        settings = load_settings(config, database=database, data_dir=data_dir)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    engine = create_registry_engine(settings.database_url)
    init_registry(engine)
    return settings, session_factory(engine)()


@click.command()
@click.option("--config", type=click.Path(path_type=Path), help="TOML settings file.")
@click.option("--database", help="Registry URL (default: SQLite in the data dir).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Node data dir.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", type=int, default=20, show_default=True, help="Studies to show.")
def status(
    config: Path | None, database: str | None, data_dir: Path | None, as_json: bool, limit: int
) -> None:
    """Recent studies: state, counts, timings, analysis job and deliveries."""
    _settings, session = open_registry(config, database, data_dir)
    with session:
        doc = collect_status(session, limit)
    click.echo(json.dumps(doc, indent=2) if as_json else render_text(doc))
