"""dcmtk storescu -> the node's SCP: every instance stored bit-exact and registered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import DeflatedExplicitVRLittleEndian
from sqlalchemy import select

from dicom_node.registry import Instance, Series, Study, StudyState, create_registry_engine
from dicom_node.scp.service import ScpService
from dicom_node.storage import instance_path
from tests.integration.scp.conftest import build_mr_study, dataset_bytes, storescu

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_storescu_study_is_stored_bit_exact_and_registered(
    tmp_path: Path, registry_url: str, scp_factory: Callable[..., ScpService]
) -> None:
    files = build_mr_study(tmp_path / "study", copies=2)
    service = scp_factory(database=registry_url, scp_processes=2)

    results = storescu(files, service.port)
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Received Store Response (Success)" in result.stderr

    storage = service.settings.storage_dir
    engine = create_registry_engine(registry_url)
    try:
        with engine.connect() as conn:
            rows = {row.sop_instance_uid: row for row in conn.execute(select(Instance))}
            studies = conn.execute(select(Study)).all()
            series = conn.execute(select(Series)).all()
    finally:
        engine.dispose()

    assert len(studies) == 1
    assert studies[0].instance_count == len(files)
    assert studies[0].state is StudyState.RECEIVING
    assert sorted(s.instance_count for s in series) == [2, 6, 8]
    assert len(rows) == len(files)
    syntaxes = set()
    for sent in files:
        ds = dcmread(sent, stop_before_pixels=True)
        stored = instance_path(
            storage, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        assert stored.is_file(), stored
        row = rows[ds.SOPInstanceUID]
        assert Path(row.path) == stored
        assert row.size_bytes == stored.stat().st_size
        assert row.calling_ae == "STORESCU"
        syntax = str(ds.file_meta.TransferSyntaxUID)
        assert row.transfer_syntax_uid == syntax
        syntaxes.add(syntax)
        stored_ds = dcmread(stored)
        assert stored_ds.file_meta.TransferSyntaxUID == syntax
        assert stored_ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        if syntax == DeflatedExplicitVRLittleEndian:
            # storescu inflates and re-deflates: the zlib stream may differ, the data not.
            assert stored_ds == dcmread(sent)
        else:
            # Compressed pixel data and every other byte exactly as sent.
            assert dataset_bytes(stored) == dataset_bytes(sent), sent.name
    assert len(syntaxes) == 8
    assert not any(service.settings.storage_dir.joinpath(".incoming").iterdir())


def test_resent_instances_are_idempotent(
    tmp_path: Path, scp_factory: Callable[..., ScpService]
) -> None:
    files = build_mr_study(tmp_path / "study", copies=1)[:3]
    service = scp_factory()
    for _ in range(2):
        for result in storescu(files, service.port):
            assert result.returncode == 0, result.stderr
    engine = create_registry_engine(service.settings.database_url)
    try:
        with engine.connect() as conn:
            count = len(conn.execute(select(Instance.id)).all())
            study = conn.execute(select(Study)).one()
    finally:
        engine.dispose()
    assert count == 3
    assert study.instance_count == 3
    stored = list(service.settings.storage_dir.glob("*/*/*.dcm"))
    assert len(stored) == 3
