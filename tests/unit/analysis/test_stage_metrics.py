"""The analysis stage timings recorded with each job are exposed as a Prometheus summary."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from dicom_node.metrics import RegistryCollector
from dicom_node.registry import (
    AnalysisJob,
    JobState,
    Study,
    StudyState,
    create_registry_engine,
    init_registry,
    session_factory,
)


def test_stage_summary_sums_the_recorded_stages(tmp_path: Path) -> None:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    init_registry(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        study = Study(study_uid="1.2.3", state=StudyState.DELIVERED, version=2)
        session.add(study)
        session.flush()
        for version, timings in ((1, {"load": 1.0, "encode": 0.5}), (2, {"load": 2.0})):
            session.add(
                AnalysisJob(
                    study_id=study.id,
                    version=version,
                    state=JobState.SUCCEEDED,
                    stage_timings=timings,
                )
            )
        session.add(AnalysisJob(study_id=study.id, version=3, state=JobState.QUEUED))
        session.commit()
    registry = CollectorRegistry()
    registry.register(
        RegistryCollector(sessions, broker_url=None, storage_dir=tmp_path, min_free_disk_mb=1)
    )
    text = generate_latest(registry).decode()
    engine.dispose()
    assert 'dicom_node_analysis_stage_seconds_count{stage="load"} 2.0' in text
    assert 'dicom_node_analysis_stage_seconds_sum{stage="load"} 3.0' in text
    assert 'dicom_node_analysis_stage_seconds_count{stage="encode"} 1.0' in text
    assert 'dicom_node_analysis_stage_seconds_sum{stage="encode"} 0.5' in text
