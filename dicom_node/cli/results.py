"""``dicom-node results STUDY_UID``: what the node concluded for a study."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dicom_node.cli.status import _iso, open_registry
from dicom_node.registry import Study


def study_results(session: Session, study_uid: str) -> dict[str, Any] | None:
    """The latest analysis job's outcome for ``study_uid`` (None: unknown study)."""
    study = session.scalars(
        select(Study).where(Study.study_uid == study_uid).options(selectinload(Study.jobs))
    ).one_or_none()
    if study is None:
        return None
    job = study.jobs[-1] if study.jobs else None
    return {
        "study_uid": study.study_uid,
        "study_state": study.state.value,
        "version": study.version,
        "not_analysed_reason": study.not_analysed_reason,
        "job_state": job.state.value if job else None,
        "job_version": job.version if job else None,
        "finished_at": _iso(job.finished_at) if job else None,
        "model_name": job.model_name if job else None,
        "model_version": job.model_version if job else None,
        "sr_sop_instance_uid": job.sr_sop_instance_uid if job else None,
        "result": job.result if job else None,
        "error": job.error if job else None,
    }


def render_text(doc: dict[str, Any]) -> str:
    lines = [f"study {doc['study_uid']}: {doc['study_state']} (version {doc['version']})"]
    if doc["job_state"]:
        lines.append(f"analysis job v{doc['job_version']}: {doc['job_state']}")
    if doc["result"] is None:
        reason = doc["not_analysed_reason"] or doc["error"]
        lines.append("no analysis result" + (f": {reason}" if reason else ""))
    elif isinstance(doc["result"], dict) and {"status", "model", "findings"} <= set(doc["result"]):
        from pipeline.cli_analyze import render  # the analysis result's own layout

        lines.append(render(doc["result"]))
    else:
        lines.append(json.dumps(doc["result"], indent=2))
    return "\n".join(lines)


@click.command()
@click.argument("study_uid")
@click.option("--config", type=click.Path(path_type=Path), help="TOML settings file.")
@click.option("--database", help="Registry URL (default: SQLite in the data dir).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Node data dir.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def results(
    study_uid: str,
    config: Path | None,
    database: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Show the node's conclusion for STUDY_UID (latest analysis version)."""
    _settings, session = open_registry(config, database, data_dir)
    with session:
        doc = study_results(session, study_uid)
    if doc is None:
        click.echo(f"error: study {study_uid} is not in the registry", err=True)
        sys.exit(1)
    click.echo(json.dumps(doc, indent=2) if as_json else render_text(doc))
